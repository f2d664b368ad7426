package valkeytest

import (
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"time"
)

// Event types the sentinels publish during a failover, in the order they
// come, and when one ends without a switch. Each is the pub/sub channel
// the sentinel publishes the event on; see [SentinelEvent].
const (
	EventSDown           = "+sdown"        // a sentinel thinks an instance is down
	EventODown           = "+odown"        // the quorum agrees the primary is down
	EventTryFailover     = "+try-failover" // a failover starts (a vote, unless forced)
	EventSelectedReplica = "+selected-slave"
	EventSendReplicaOfNo = "+failover-state-send-slaveof-noone" // REPLICAOF NO ONE goes to the replica
	EventPromoted        = "+promoted-slave"
	EventSwitchMaster    = "+switch-master" // "<name> <old ip> <old port> <new ip> <new port>"
	EventFailoverEnd     = "+failover-end"
	EventAbortPrefix     = "-failover-abort-" // -failover-abort-not-elected, -failover-abort-no-good-slave, ...
)

// SentinelEvent is one event a sentinel published, as a [SentinelTap]
// received it.
type SentinelEvent struct {
	// Time is when the tap read the event, from the local clock (with its
	// monotonic reading): on loopback, within a millisecond or so of when
	// the sentinel published it.
	Time time.Time
	// Sentinel is the address of the sentinel that published it. Some
	// events come from one sentinel only (the failover leader publishes
	// +selected-slave, +promoted-slave, ...); every sentinel publishes
	// +switch-master, each when it learns of the switch: the others as soon
	// as they hear of the promotion (about 1 second after SENTINEL
	// FAILOVER), the leader last, at +failover-end, once it reconfigured
	// the other replicas (about a second later).
	Sentinel string
	// Type is the event, the channel it was published on:
	// "+switch-master", "-failover-abort-no-good-slave", ...
	Type string
	// Payload is the event's text, e.g. "mymaster 127.0.0.1 41000
	// 127.0.0.1 41002" for +switch-master.
	Payload string
}

// SwitchAddrs returns the old and the new primary address of a
// +switch-master event.
func (e SentinelEvent) SwitchAddrs() (old, new string, ok bool) {
	f := strings.Fields(e.Payload)
	if e.Type != EventSwitchMaster || len(f) != 5 {
		return "", "", false
	}
	return net.JoinHostPort(f[1], f[2]), net.JoinHostPort(f[3], f[4]), true
}

// IsAbort reports whether the event is a failover abort
// (-failover-abort-*).
func (e SentinelEvent) IsAbort() bool { return strings.HasPrefix(e.Type, EventAbortPrefix) }

// SentinelTap records the events of every sentinel with the time it
// received them, so that a test can observe a failover as the sentinels
// report it. It holds one subscription (PSUBSCRIBE *) per sentinel that
// ran when it was made; a sentinel killed or restarted later is not
// followed. Its methods are safe for concurrent use. Close it (or stop the
// Sentinel) to release its connections and goroutines.
type SentinelTap struct {
	s     *Sentinel
	conns []*toolConn
	wg    sync.WaitGroup

	mu      sync.Mutex
	events  []SentinelEvent
	live    map[string]bool // sentinels whose subscription is up
	changed chan struct{}   // closed and replaced on every change
	closed  bool
}

// Tap subscribes to every running sentinel's events and returns once
// every subscription is confirmed: every event published after Tap
// returns is recorded.
func (s *Sentinel) Tap() (*SentinelTap, error) {
	t := &SentinelTap{s: s, live: make(map[string]bool), changed: make(chan struct{})}
	var addrs []string
	for _, sn := range s.sentinels {
		if sn.Pid() == 0 {
			continue
		}
		cc, err := sn.dial()
		if err == nil {
			err = cc.psubscribeAll()
		}
		if err != nil {
			if cc != nil {
				cc.Close()
			}
			t.Close()
			return nil, err
		}
		t.conns = append(t.conns, cc)
		addrs = append(addrs, sn.Addr())
		t.live[sn.Addr()] = true
	}
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		t.Close()
		return nil, ErrStopped
	}
	s.taps[t] = true
	s.mu.Unlock()
	for i, cc := range t.conns {
		t.wg.Go(func() { t.read(cc, addrs[i]) })
	}
	return t, nil
}

// psubscribeAll sends PSUBSCRIBE * and reads the confirmation.
func (cc *toolConn) psubscribeAll() error {
	replies, err := cc.pipeline([][]string{{"PSUBSCRIBE", "*"}}, toolIOTimeout)
	if err != nil {
		return err
	}
	arr, _ := replies[0].([]any)
	if len(arr) != 3 || arr[0] != "psubscribe" {
		return fmt.Errorf("%s: PSUBSCRIBE * = %v: %w", cc.label, replies[0], errProtocol)
	}
	return cc.SetDeadline(time.Time{})
}

// read records the events from one sentinel until its connection ends.
func (t *SentinelTap) read(cc *toolConn, addr string) {
	defer func() {
		t.mu.Lock()
		t.live[addr] = false
		t.notifyLocked()
		t.mu.Unlock()
	}()
	for {
		r, err := readValue(cc.r, 0)
		if err != nil {
			return
		}
		now := time.Now()
		arr, _ := r.([]any)
		if len(arr) != 4 || arr[0] != "pmessage" {
			continue
		}
		typ, _ := arr[2].(string)
		payload, _ := arr[3].(string)
		t.mu.Lock()
		t.events = append(t.events, SentinelEvent{Time: now, Sentinel: addr, Type: typ, Payload: payload})
		t.notifyLocked()
		t.mu.Unlock()
	}
}

func (t *SentinelTap) notifyLocked() {
	close(t.changed)
	t.changed = make(chan struct{})
}

// Events returns every event recorded so far, in the order received.
func (t *SentinelTap) Events() []SentinelEvent {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.events)
}

// Wait returns the first recorded event (since the tap was made) for
// which match returns true, waiting up to timeout for one to come.
func (t *SentinelTap) Wait(timeout time.Duration, match func(SentinelEvent) bool) (SentinelEvent, error) {
	var found SentinelEvent
	err := t.await(timeout, func(events []SentinelEvent, _ map[string]bool) bool {
		for _, e := range events {
			if match(e) {
				found = e
				return true
			}
		}
		return false
	})
	return found, err
}

// WaitType returns the first recorded event of type typ received after
// the time after (the zero time: any), waiting up to timeout. typ may be
// a prefix ending in '-', such as EventAbortPrefix.
func (t *SentinelTap) WaitType(timeout time.Duration, typ string, after time.Time) (SentinelEvent, error) {
	e, err := t.Wait(timeout, func(e SentinelEvent) bool { return typeIs(e.Type, typ) && e.Time.After(after) })
	if err != nil {
		err = fmt.Errorf("valkeytest: no %s event: %w", typ, err)
	}
	return e, err
}

func typeIs(got, want string) bool {
	if strings.HasSuffix(want, "-") {
		return strings.HasPrefix(got, want)
	}
	return got == want
}

// WaitAll waits up to timeout until every sentinel whose subscription is
// still up has published an event of type typ after the time after, and
// returns the first such event of each, in the order received. With
// EventSwitchMaster it tells when the last sentinel switched.
func (t *SentinelTap) WaitAll(timeout time.Duration, typ string, after time.Time) ([]SentinelEvent, error) {
	var out []SentinelEvent
	err := t.await(timeout, func(events []SentinelEvent, live map[string]bool) bool {
		out = out[:0]
		seen := make(map[string]bool)
		for _, e := range events {
			if typeIs(e.Type, typ) && e.Time.After(after) && !seen[e.Sentinel] {
				seen[e.Sentinel] = true
				out = append(out, e)
			}
		}
		n := 0
		for addr, up := range live {
			if up && !seen[addr] {
				return false
			}
			if up {
				n++
			}
		}
		return n > 0
	})
	if err != nil {
		err = fmt.Errorf("valkeytest: %s not from every sentinel (%d so far): %w", typ, len(out), err)
	}
	return out, err
}

// await calls done with the events and the live subscriptions on every
// change until it returns true, the timeout passes, or the tap closes.
func (t *SentinelTap) await(timeout time.Duration, done func([]SentinelEvent, map[string]bool) bool) error {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		t.mu.Lock()
		ok := done(t.events, t.live)
		closed, changed := t.closed, t.changed
		t.mu.Unlock()
		switch {
		case ok:
			return nil
		case closed:
			return ErrTapClosed
		}
		select {
		case <-changed:
		case <-timer.C:
			return fmt.Errorf("timed out after %v", timeout)
		}
	}
}

// Close ends every subscription and returns once the tap's goroutines
// have returned. Events stays readable. Calling Close again does nothing.
func (t *SentinelTap) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	t.notifyLocked()
	t.mu.Unlock()
	for _, cc := range t.conns {
		cc.Close()
	}
	t.wg.Wait()
	t.s.mu.Lock()
	delete(t.s.taps, t)
	t.s.mu.Unlock()
	return nil
}
