package actors

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"

	"github.com/valkey-io/valkey-go"

	"github.com/vactor-io/vactor/drivers"
)

// Slots is the number of hash slots of a Valkey cluster.
const Slots = 16384

// ErrNoTopology is returned when a node's answer to CLUSTER SHARDS (and
// CLUSTER SLOTS) holds no usable shard. Retryable: the cluster may be
// forming or failing over.
var ErrNoTopology = errors.New("actors: no cluster topology in the reply")

// Shard is one primary with its replicas and the slot ranges it serves.
type Shard struct {
	Primary  string      // "host:port"
	Replicas []string    // "host:port", online replicas only
	Ranges   [][2]uint16 // inclusive slot ranges
}

// Topology is a cluster's slot map at one moment. It is a value: the
// topology actor builds a new one on every refresh and swaps it in.
type Topology struct {
	Shards []Shard
	// Orphaned are the slot ranges of shards the node asked listed
	// without an online primary (a primary failed and no replica is
	// promoted yet): they are in no Shard, no node serves them.
	Orphaned [][2]uint16
	// owner maps a slot to its shard's index in Shards, or -1.
	owner [Slots]int16
}

// Owner returns the shard serving slot, or false when no shard covers it.
func (t *Topology) Owner(slot uint16) (*Shard, bool) {
	i := t.owner[slot%Slots]
	if i < 0 {
		return nil, false
	}
	return &t.Shards[i], true
}

// Covered returns the number of slots some shard serves.
func (t *Topology) Covered() int {
	n := 0
	for _, i := range t.owner {
		if i >= 0 {
			n++
		}
	}
	return n
}

func newTopology(shards []Shard) (*Topology, error) {
	if len(shards) == 0 {
		return nil, ErrNoTopology
	}
	t := &Topology{Shards: shards}
	for i := range t.owner {
		t.owner[i] = -1
	}
	for si, s := range shards {
		for _, r := range s.Ranges {
			for slot := int(r[0]); slot <= int(r[1]) && slot < Slots; slot++ {
				t.owner[slot] = int16(si)
			}
		}
	}
	return t, nil
}

// FetchTopology asks the node behind conn (reached at addr) for the slot
// map: CLUSTER SHARDS, or CLUSTER SLOTS on servers without it. addr fills
// in endpoints the node does not know ("" or "?"). tls says the client
// connects with TLS: the nodes' TLS ports are used then (CLUSTER SHARDS
// lists both; a node with TLS only lists no plain "port"; CLUSTER SLOTS
// and redirects already name the port of the asking connection's kind).
func FetchTopology(ctx context.Context, conn drivers.ValkeyConn, addr string, tls bool) (*Topology, error) {
	return FetchTopologyWith(ctx, conn.B(), conn.Do, addr, tls)
}

// FetchTopologyWith is FetchTopology over do, which sends one command to
// the node reached at addr and returns its reply (through a connection
// actor, say, rather than a connection of its own).
func FetchTopologyWith(ctx context.Context, b valkey.Builder, do func(context.Context, valkey.Completed) valkey.ValkeyResult, addr string, tls bool) (*Topology, error) {
	msg, err := do(ctx, b.Arbitrary("CLUSTER", "SHARDS").Build()).ToMessage()
	if err == nil {
		shards, orphaned := parseShards(msg, addr, tls)
		t, err := topologyFrom(shards, addr)
		if err == nil {
			t.Orphaned = orphaned
		}
		return t, err
	}
	var ve *valkey.ValkeyError
	if !errors.As(err, &ve) {
		return nil, fmt.Errorf("actors: CLUSTER SHARDS on %s: %w", addr, err)
	}
	msg, err = do(ctx, b.Arbitrary("CLUSTER", "SLOTS").Build()).ToMessage()
	if err != nil {
		return nil, fmt.Errorf("actors: CLUSTER SLOTS on %s: %w", addr, err)
	}
	return topologyFrom(parseSlots(msg, addr), addr)
}

// topologyFrom builds the map of shards read from the node at addr; the
// error names addr (ErrNoTopology alone does not say which seed or node
// serves no slot).
func topologyFrom(shards []Shard, addr string) (*Topology, error) {
	t, err := newTopology(shards)
	if err != nil {
		return nil, fmt.Errorf("actors: %s: %w", addr, err)
	}
	return t, nil
}

// endpoint joins a node's reported endpoint and port, falling back to the
// queried address's host when the node does not know its own; "" when the
// port is not one (0 for a node without a plain port, or out of range).
func endpoint(host string, port int64, queried string) string {
	if host == "" || host == "?" {
		h, _, err := net.SplitHostPort(queried)
		if err != nil {
			return ""
		}
		host = h
	}
	if port <= 0 || port > 65535 { // a broken reply's: no node to dial there
		return ""
	}
	return net.JoinHostPort(host, strconv.FormatInt(port, 10))
}

// parseShards reads CLUSTER SHARDS: a list of maps with "slots" (a flat
// list of range bounds) and "nodes" (maps with endpoint/ip, port,
// tls-port, role, health). With tls the node's tls-port is used when it
// has one. orphaned are the slot ranges of the shards listed without an
// online primary, which are left out.
func parseShards(msg valkey.ValkeyMessage, queried string, tls bool) (shards []Shard, orphaned [][2]uint16) {
	list, _ := msg.ToArray()
	var out []Shard
	for _, v := range list {
		m, err := v.AsMap()
		if err != nil {
			continue
		}
		var s Shard
		if sm, ok := m["slots"]; ok {
			bounds, _ := sm.ToArray()
			for i := 0; i+1 < len(bounds); i += 2 {
				lo, err1 := bounds[i].AsInt64()
				hi, err2 := bounds[i+1].AsInt64()
				if err1 == nil && err2 == nil && lo >= 0 && hi < Slots && lo <= hi {
					s.Ranges = append(s.Ranges, [2]uint16{uint16(lo), uint16(hi)})
				}
			}
		}
		nm, ok := m["nodes"]
		if !ok {
			continue
		}
		nodes, _ := nm.ToArray()
		for _, n := range nodes {
			d, err := n.AsMap()
			if err != nil {
				continue
			}
			if field(d, "health") != "online" {
				continue
			}
			host := field(d, "endpoint")
			if host == "" {
				host = field(d, "ip")
			}
			p := d["port"]
			port, _ := p.AsInt64()
			if tp, ok := d["tls-port"]; tls && ok {
				if n, err := tp.AsInt64(); err == nil && n > 0 {
					port = n
				}
			}
			addr := endpoint(host, port, queried)
			if addr == "" {
				continue
			}
			if field(d, "role") == "master" {
				s.Primary = addr
			} else {
				s.Replicas = append(s.Replicas, addr)
			}
		}
		switch {
		case s.Primary != "" && len(s.Ranges) > 0:
			out = append(out, s)
		case len(s.Ranges) > 0:
			orphaned = append(orphaned, s.Ranges...)
		}
	}
	return out, orphaned
}

// parseSlots reads CLUSTER SLOTS: a list of [start, end, primary,
// replicas...], each node as [host, port, id, ...].
func parseSlots(msg valkey.ValkeyMessage, queried string) []Shard {
	list, _ := msg.ToArray()
	byPrimary := map[string]int{}
	var out []Shard
	for _, v := range list {
		e, _ := v.ToArray()
		if len(e) < 3 {
			continue
		}
		lo, err1 := e[0].AsInt64()
		hi, err2 := e[1].AsInt64()
		if err1 != nil || err2 != nil || lo < 0 || hi >= Slots || lo > hi {
			continue
		}
		var addrs []string
		for _, n := range e[2:] {
			f, _ := n.ToArray()
			if len(f) < 2 {
				continue
			}
			host, _ := f[0].ToString()
			port, _ := f[1].AsInt64()
			if a := endpoint(host, port, queried); a != "" {
				addrs = append(addrs, a)
			}
		}
		if len(addrs) == 0 {
			continue
		}
		i, ok := byPrimary[addrs[0]]
		if !ok {
			i = len(out)
			byPrimary[addrs[0]] = i
			out = append(out, Shard{Primary: addrs[0], Replicas: addrs[1:]})
		}
		out[i].Ranges = append(out[i].Ranges, [2]uint16{uint16(lo), uint16(hi)})
	}
	return out
}

// field returns a string field of a map reply, or "".
func field(m map[string]valkey.ValkeyMessage, k string) string {
	v, ok := m[k]
	if !ok {
		return ""
	}
	s, _ := v.ToString()
	return s
}
