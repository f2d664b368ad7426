package valkeygo

import (
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// modeFor tells valkey-go's default deadline from the caller's and from
// its own shorter ones.
func TestIdleModeFor(t *testing.T) {
	const timeout = 3 * time.Second
	now := time.Now()
	callerEarly := now.Add(time.Second)
	callerLate := now.Add(time.Minute)
	for _, tc := range []struct {
		name string
		t    time.Time
		call time.Time // zero: no call in progress, or one without deadline
		want int64
	}{
		{"zero deadline (blocking command, background mode)", time.Time{}, time.Time{}, modeFixed},
		{"valkey-go's default", now.Add(timeout), time.Time{}, modeIdle},
		{"valkey-go's default, a moment late", now.Add(timeout - 100*time.Millisecond), time.Time{}, modeIdle},
		{"the caller's deadline, passed on", callerEarly, callerEarly, modeFixed},
		{"the caller's deadline near the default", now.Add(timeout - time.Millisecond), now.Add(timeout - time.Millisecond), modeFixed},
		{"default under a later caller deadline", now.Add(timeout), callerLate, callerLate.UnixNano()},
		{"a shorter deadline of valkey-go's own (handshake)", now.Add(time.Second), time.Time{}, modeFixed},
		{"default while another call's earlier deadline is recorded", now.Add(timeout), callerEarly, modeIdle},
	} {
		t.Run(tc.name, func(t *testing.T) {
			call := new(atomic.Int64)
			if !tc.call.IsZero() {
				call.Store(tc.call.UnixNano())
			}
			c := &idleConn{timeout: timeout, call: call}
			if got := c.modeFor(tc.t); got != tc.want {
				t.Fatalf("modeFor = %d, want %d", got, tc.want)
			}
		})
	}
	if got := (&idleConn{call: new(atomic.Int64)}).modeFor(now.Add(timeout)); got != modeFixed {
		t.Fatalf("modeFor without a timeout = %d, want modeFixed", got)
	}
}

// A round trip in idle mode allocates nothing more than on the bare
// connection.
func TestIdleConnNoAllocs(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	echoed := make(chan error, 1)
	go func() {
		s, err := ln.Accept()
		if err != nil {
			echoed <- err
			return
		}
		defer s.Close()
		_, err = io.Copy(s, s)
		echoed <- err
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := &idleConn{Conn: raw, timeout: time.Second, call: new(atomic.Int64)}
	msg := make([]byte, 512)
	buf := make([]byte, len(msg))
	roundTrip := func() {
		if err := c.SetDeadline(time.Now().Add(c.timeout)); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatal(err)
		}
	}
	roundTrip()
	if m := c.mode.Load(); m != modeIdle {
		t.Fatalf("mode after valkey-go's default deadline = %d, want modeIdle", m)
	}
	if a := testing.AllocsPerRun(200, roundTrip); a != 0 {
		t.Fatalf("a round trip in idle mode allocates %.1f times, want 0", a)
	}
	raw.Close()
	<-echoed
}
