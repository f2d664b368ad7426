package main

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
)

// A clusterNode is one node of a cluster as CLUSTER NODES lists it.
type clusterNode struct {
	ID        string
	Addr      string // host:port
	Flags     []string
	Primary   bool
	PrimaryID string   // a replica's primary
	Slots     [][2]int // a primary's slot ranges, inclusive
}

// clusterTopology reads the cluster's nodes through eng (in cluster mode)
// with CLUSTER NODES: primaries first (by their first slot), then
// replicas. (CLUSTER SLOTS leaves out replicas that have not received
// data yet.)
func clusterTopology(ctx context.Context, eng *engine.Engine) ([]clusterNode, error) {
	r, err := eng.Do(ctx, "CLUSTER", "NODES").Await(ctx)
	if err != nil {
		return nil, fmt.Errorf("CLUSTER NODES: %w", err)
	}
	text, err := r.String()
	if err != nil {
		return nil, fmt.Errorf("CLUSTER NODES: %w", err)
	}
	return parseClusterNodes(text)
}

// parseClusterNodes parses the reply of CLUSTER NODES.
func parseClusterNodes(text string) ([]clusterNode, error) {
	var nodes []clusterNode
	for line := range strings.Lines(text) {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) < 8 {
			return nil, fmt.Errorf("CLUSTER NODES: unexpected line %q", strings.TrimSpace(line))
		}
		addr, _, _ := strings.Cut(f[1], "@")
		if host, port, err := net.SplitHostPort(addr); err != nil || port == "0" {
			continue // a node without an address (noaddr, handshake)
		} else if host == "" {
			addr = net.JoinHostPort("127.0.0.1", port)
		}
		n := clusterNode{ID: f[0], Addr: addr, Flags: strings.Split(f[2], ",")}
		n.Primary = slices.Contains(n.Flags, "master")
		if f[3] != "-" {
			n.PrimaryID = f[3]
		}
		for _, sl := range f[8:] {
			if strings.HasPrefix(sl, "[") {
				continue // a slot being migrated or imported
			}
			a, b, isRange := strings.Cut(sl, "-")
			from, err1 := strconv.Atoi(a)
			to, err2 := from, error(nil)
			if isRange {
				to, err2 = strconv.Atoi(b)
			}
			if err1 != nil || err2 != nil {
				return nil, fmt.Errorf("CLUSTER NODES: bad slot %q", sl)
			}
			n.Slots = append(n.Slots, [2]int{from, to})
		}
		nodes = append(nodes, n)
	}
	first := func(n clusterNode) int {
		if !n.Primary {
			return 1 << 20
		}
		if len(n.Slots) == 0 {
			return 1 << 19
		}
		return n.Slots[0][0]
	}
	slices.SortStableFunc(nodes, func(a, b clusterNode) int { return first(a) - first(b) })
	return nodes, nil
}

// failing reports whether the node is marked as failed or possibly so.
func (n clusterNode) failing() bool {
	return slices.Contains(n.Flags, "fail") || slices.Contains(n.Flags, "fail?")
}

// primaries returns the primaries that serve slots.
func primaries(nodes []clusterNode) []clusterNode {
	var out []clusterNode
	for _, n := range nodes {
		if n.Primary && len(n.Slots) > 0 {
			out = append(out, n)
		}
	}
	return out
}

// replicasOf returns the addresses of the replicas of primary id.
func replicasOf(nodes []clusterNode, id string) []string {
	var out []string
	for _, n := range nodes {
		if n.PrimaryID == id {
			out = append(out, n.Addr)
		}
	}
	return out
}

// nodeConfig is cfg pointed at one node, in standalone mode.
func nodeConfig(cfg config.Config, addr string) config.Config {
	if cfg.SentinelMode {
		// The node itself, not through the sentinels.
		cfg = cfg.WithSentinelMode(false).WithSentinelMasterName("").WithSentinelAddrs().
			WithSentinelUsername("").WithSentinelPassword("").WithSentinelCredentialsProvider(nil)
	}
	return cfg.WithAddrs(addr).WithClusterMode(false)
}

// serverInfo runs INFO with the given sections and returns its fields.
func serverInfo(ctx context.Context, eng *engine.Engine, sections ...string) (map[string]string, error) {
	args := sections
	if len(args) == 0 {
		args = []string{"default"}
	}
	r, err := eng.Do(ctx, "INFO", args...).Await(ctx)
	if err != nil {
		return nil, fmt.Errorf("INFO: %w", err)
	}
	text, err := r.String()
	if err != nil {
		return nil, fmt.Errorf("INFO: %w", err)
	}
	return parseInfo(text), nil
}

// parseInfo reads the "field:value" lines of an INFO reply.
func parseInfo(text string) map[string]string {
	m := map[string]string{}
	for line := range strings.Lines(text) {
		line = strings.TrimRight(line, "\r\n")
		if line == "" || line[0] == '#' {
			continue
		}
		if k, v, ok := strings.Cut(line, ":"); ok {
			m[k] = v
		}
	}
	return m
}

// serverVersion names the server software and version from INFO server.
func serverVersion(info map[string]string) string {
	if v := info["valkey_version"]; v != "" {
		return "valkey " + v
	}
	if v := info["redis_version"]; v != "" {
		return "redis " + v
	}
	return "unknown"
}
