package actors

import (
	"context"
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/vactor-io/vactor/drivers"
	"github.com/vactor-io/vactor/policies"
)

// ErrNoMaster is returned when no sentinel names a usable primary for the
// master name: none answered, none monitors that name, or the primary
// they name could not be connected to or is not one (the error joins what
// each sentinel came to). Retryable: the sentinels may be starting, or
// failing over.
var ErrNoMaster = policies.NewRetryable("vactor: no sentinel names a usable primary")

// Channels of the sentinel events the sentinel actor follows. A sentinel
// publishes each event on the channel of its name; the payload names the
// instance ("master <name> <ip> <port>", or "slave <ip>:<port> <ip> <port>
// @ <name> <master ip> <master port>"), except +switch-master ("<name>
// <old ip> <old port> <new ip> <new port>").
const (
	evTryFailover     = "+try-failover"                      // a failover starts (the leader, once elected, goes on)
	evSelectedReplica = "+selected-slave"                    // the leader chose the replica to promote
	evSendReplicaOfNo = "+failover-state-send-slaveof-noone" // REPLICAOF NO ONE goes to it next
	evPromoted        = "+promoted-slave"                    // the replica says it is a primary
	evSwitchMaster    = "+switch-master"                     // a sentinel switched to the new primary
	evFailoverEnd     = "+failover-end"
	evAbortPrefix     = "-failover-abort-" // -failover-abort-not-elected, ...-no-good-slave, ...-slave-timeout
)

// sentinelChannels are subscribed with SUBSCRIBE; abort events with
// PSUBSCRIBE evAbortPrefix*. The last ones only make the actor ask the
// sentinels again (the replicas may have changed).
var sentinelChannels = []string{
	evTryFailover, evSelectedReplica, evSendReplicaOfNo, evPromoted, evSwitchMaster, evFailoverEnd,
	"+failover-end-for-timeout", "+sdown", "-sdown", "+odown", "-odown", "+slave", "+convert-to-slave",
	"+reboot", "+slave-reconf-done",
}

// sentinelEvent is one event a sentinel published.
type sentinelEvent struct {
	from    string // the sentinel's address
	channel string
	payload string
	at      time.Time
}

// instance is the instance an event is about.
type instance struct {
	name   string // the master name
	addr   string // the instance: the primary, or a replica
	master string // the primary the instance belongs to (addr itself for a primary)
}

// parseInstance reads an event payload naming an instance; false when it
// names none (a port that is not one included).
func parseInstance(payload string) (instance, bool) {
	f := strings.Fields(payload)
	if len(f) < 4 {
		return instance{}, false
	}
	switch f[0] {
	case "master":
		a, ok := hostPort(f[2], f[3])
		return instance{name: f[1], addr: a, master: a}, ok
	case "slave":
		// slave <ip>:<port> <ip> <port> @ <name> <master ip> <master port>
		if len(f) < 8 || f[4] != "@" {
			return instance{}, false
		}
		a, ok1 := hostPort(f[2], f[3])
		m, ok2 := hostPort(f[6], f[7])
		return instance{name: f[5], addr: a, master: m}, ok1 && ok2
	}
	return instance{}, false
}

// parseSwitch reads a +switch-master payload; false when its addresses
// are not ones.
func parseSwitch(payload string) (name, from, to string, ok bool) {
	f := strings.Fields(payload)
	if len(f) != 5 {
		return "", "", "", false
	}
	from, ok1 := hostPort(f[1], f[2])
	to, ok2 := hostPort(f[3], f[4])
	if !ok1 || !ok2 {
		return "", "", "", false
	}
	return f[0], from, to, true
}

// sentinelAnswer is what one sentinel says about the master name.
type sentinelAnswer struct {
	from   string
	master string // "" when it does not know the name
	// epoch is the primary's config epoch (SENTINEL MASTER), -1 when the
	// sentinel did not say (an ACL user allowed GET-MASTER-ADDR-BY-NAME
	// only, say).
	epoch int64
	// inFailover: the sentinel leads a failover of the primary that has
	// not promoted its replica yet; until then, the address it gives is
	// the old primary's.
	inFailover      bool
	failoverTimeout time.Duration // 0 when unknown
	replicas        []string      // healthy replicas (not down, link up)
	sentinels       []string      // the other sentinels it knows
}

// querySentinel asks the sentinel behind conn, in one pipeline, for the
// primary of name (SENTINEL GET-MASTER-ADDR-BY-NAME), its state (SENTINEL
// MASTER), its replicas and the other sentinels. Only the first is
// required; the others may be refused.
func querySentinel(ctx context.Context, conn drivers.ValkeyConn, from, name string) (sentinelAnswer, error) {
	b := conn.B()
	rs := conn.DoMulti(ctx,
		b.Arbitrary("SENTINEL", "GET-MASTER-ADDR-BY-NAME").Args(name).Build(),
		b.Arbitrary("SENTINEL", "MASTER").Args(name).Build(),
		b.Arbitrary("SENTINEL", "REPLICAS").Args(name).Build(),
		b.Arbitrary("SENTINEL", "SENTINELS").Args(name).Build(),
	)
	a := sentinelAnswer{from: from, epoch: -1}
	if len(rs) != 4 {
		return a, fmt.Errorf("sentinel %s: %w", from, ErrShortReply)
	}
	for _, r := range rs {
		if err := r.NonValkeyError(); err != nil {
			return a, fmt.Errorf("sentinel %s: %w", from, err)
		}
	}
	addr, err := rs[0].AsStrSlice()
	switch {
	case valkey.IsValkeyNil(rs[0].Error()):
		return a, nil // does not monitor name
	case err != nil:
		return a, fmt.Errorf("sentinel %s: SENTINEL GET-MASTER-ADDR-BY-NAME %s: %w", from, name, err)
	case len(addr) != 2:
		return a, fmt.Errorf("sentinel %s: SENTINEL GET-MASTER-ADDR-BY-NAME %s: %d fields", from, name, len(addr))
	}
	master, ok := hostPort(addr[0], addr[1])
	if !ok {
		return a, fmt.Errorf("sentinel %s: SENTINEL GET-MASTER-ADDR-BY-NAME %s: no address in %q", from, name, addr)
	}
	a.master = master
	if m, err := rs[1].AsStrMap(); err == nil {
		if e, err := strconv.ParseInt(m["config-epoch"], 10, 64); err == nil {
			a.epoch = e
		}
		a.inFailover = hasFlag(m["flags"], "failover_in_progress") && !promoted(m["failover-state"])
		if ms, err := strconv.ParseInt(m["failover-timeout"], 10, 64); err == nil && ms > 0 {
			// Saturated: SENTINEL SET takes any positive long long, and
			// one beyond what a Duration holds wrapped around (2⁵⁸+1 ms
			// to 1 ms).
			a.failoverTimeout = time.Duration(math.MaxInt64)
			if ms <= math.MaxInt64/int64(time.Millisecond) {
				a.failoverTimeout = time.Duration(ms) * time.Millisecond
			}
		}
	}
	if list, err := rs[2].ToArray(); err == nil {
		for _, r := range list {
			m, err := r.AsStrMap()
			if err != nil || !healthyReplica(m) {
				continue
			}
			if addr, ok := hostPort(m["ip"], m["port"]); ok {
				a.replicas = append(a.replicas, addr)
			}
		}
	}
	if list, err := rs[3].ToArray(); err == nil {
		for _, r := range list {
			m, err := r.AsStrMap()
			if err != nil {
				continue
			}
			if addr, ok := hostPort(m["ip"], m["port"]); ok {
				a.sentinels = append(a.sentinels, addr)
			}
		}
	}
	return a, nil
}

// hostPort joins a host and a port a sentinel sent; false when they are
// no address to dial (an empty host would dial this machine, a port out of
// range no one): a broken sentinel's or a proxy's answer.
func hostPort(host, port string) (string, bool) {
	n, err := strconv.Atoi(port)
	if host == "" || err != nil || n <= 0 || n > 65535 {
		return "", false
	}
	return net.JoinHostPort(host, port), true
}

// healthyReplica reports whether a SENTINEL REPLICAS entry can serve
// reads: not down nor disconnected, replicating with its link up.
func healthyReplica(m map[string]string) bool {
	f := m["flags"]
	if m["ip"] == "" || m["port"] == "" || !hasFlag(f, "slave") {
		return false
	}
	for _, bad := range []string{"s_down", "o_down", "disconnected", "promoted"} {
		if hasFlag(f, bad) {
			return false
		}
	}
	return m["master-link-status"] == "" || m["master-link-status"] == "ok"
}

// promoted reports whether a failover in the state given (SENTINEL
// MASTER's failover-state) has promoted its replica: from reconf_slaves
// on, the leader names the promoted replica as the primary
// (GET-MASTER-ADDR-BY-NAME), so its answer is the new primary, not the
// old one a failover in progress otherwise leaves it naming. (Taken as a
// failover to hold for, an engine made in that window, about a second per
// failover, held every command until the hold limit, 6 s, although it had
// found the new primary: QA-Z 2.)
func promoted(state string) bool {
	return state == "reconf_slaves" || state == "update_config"
}

func hasFlag(flags, flag string) bool {
	for f := range strings.SplitSeq(flags, ",") {
		if f == flag {
			return true
		}
	}
	return false
}

// acceptable reports whether the answer a may replace (or confirm) the
// view v: a sentinel leading a failover of the primary is not asked (it
// names the old primary until the failover ends); an answer naming another
// primary than v's wins only with a newer config epoch (a sentinel that
// has not heard of the last switch yet names the old one with an older
// epoch). v's epoch may be a lower bound (after a switch the actor learned
// from an event, which carries no epoch): then an equal one wins.
func acceptable(a sentinelAnswer, v *SentinelView) bool {
	switch {
	case a.master == "" || a.inFailover:
		return false
	case v == nil || v.Master == "" || a.master == v.Master:
		return true
	case a.epoch < 0 || v.Epoch < 0:
		return !v.floor
	case v.floor:
		return a.epoch >= v.Epoch
	default:
		return a.epoch > v.Epoch
	}
}
