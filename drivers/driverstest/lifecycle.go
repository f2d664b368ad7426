package driverstest

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vactor-io/vactor/drivers"
	"github.com/vactor-io/vactor/valkeytest"
)

// running reports whether a client of srv runs a command named cmd (as
// CLIENT LIST shows it).
func running(srv *valkeytest.Server, cmd string) bool {
	v, err := srv.Do("CLIENT", "LIST")
	if err != nil {
		return false
	}
	s, _ := v.(string)
	return strings.Contains(s, " cmd="+cmd+" ")
}

// waitFor is how long the WAIT of busyPipeline holds its connection.
const waitFor = 5 * time.Second

// busyPipeline is WAIT 1 5000 (on a server without replicas, it holds its
// connection for 5 s, while the server serves others) followed by PINGs:
// their replies cannot arrive before the WAIT's end.
func busyPipeline() []drivers.Command {
	cmds := plain(args("WAIT", "1", strconv.Itoa(int(waitFor/time.Millisecond))))
	for range 10 {
		cmds = append(cmds, plain(args("PING"))...)
	}
	return cmds
}

// closeInFlight: Close while a pipeline is in flight makes Exec return and
// fails what is owed (ErrClosed); later calls fail at once.
func (s *suite) closeInFlight(t *testing.T, srv *valkeytest.Server, l level) {
	c := s.dial(t, s.options(srv))
	x := l.bind(t, c)
	var rs []drivers.Result
	done := make(chan struct{})
	go func() {
		defer close(done)
		rs = x.exec(context.Background(), busyPipeline())
	}()
	s.awaitTrue(t, "the WAIT in flight", func() bool { return running(srv, "wait") })
	start := time.Now()
	within(t, s.o.Timeout, "Close", func() { _ = c.Close() })
	select {
	case <-done:
	case <-time.After(s.o.Timeout):
		t.Fatalf("Exec still in flight %s after Close", s.o.Timeout)
	}
	took := time.Since(start)
	t.Logf("Exec returned %s after Close", took.Round(time.Millisecond))
	if took >= waitFor-time.Second {
		t.Errorf("Exec returned %s after Close: it waited for the WAIT's reply", took)
	}
	if len(rs) != 11 {
		t.Fatalf("%d results for 11 commands", len(rs))
	}
	owed := 0
	for i, r := range rs[1:] {
		if r.Err == nil && r.Value.Str != "PONG" {
			t.Errorf("PING %d after Close: %v", i, describe(r))
		}
		if r.Err != nil {
			owed++
			transportError(t, x, "a PING owed at Close", r, drivers.ErrClosed)
		}
	}
	if owed == 0 {
		t.Error("every PING got its reply although Close came during the WAIT")
	}
	transportError(t, x, "the WAIT in flight at Close", rs[0], drivers.ErrClosed)
	// Closed: later calls fail at once; Close again is harmless.
	var after []drivers.Result
	within(t, s.o.Timeout, "Exec after Close", func() { after = x.exec(context.Background(), plain(args("PING"))) })
	transportError(t, x, "PING after Close", after[0], drivers.ErrClosed)
	if err := c.Close(); err != nil {
		t.Logf("second Close: %v", err)
	}
}

// serverKilled: a server that dies under a pipeline fails what is owed
// with transport errors, within the timeouts; after a restart a new Dial
// works, and the old Conn does not hang.
func (s *suite) serverKilled(t *testing.T) {
	for _, l := range levels {
		t.Run(l.name, func(t *testing.T) {
			srv := valkeytest.Start(t)
			c := s.dial(t, s.options(srv))
			x := l.bind(t, c)
			var rs []drivers.Result
			done := make(chan struct{})
			go func() {
				defer close(done)
				rs = x.exec(context.Background(), busyPipeline())
			}()
			s.awaitTrue(t, "the WAIT in flight", func() bool { return running(srv, "wait") })
			if err := srv.Kill(); err != nil {
				t.Fatal(err)
			}
			select {
			case <-done:
			case <-time.After(s.o.Timeout):
				t.Fatalf("Exec still in flight %s after the server was killed", s.o.Timeout)
			}
			for _, r := range rs {
				transportError(t, x, "a command in flight when the server died", r, nil)
			}
			// Down: a call fails (a transport error), within the timeouts.
			var down []drivers.Result
			within(t, s.o.Timeout, "Exec against a dead server", func() {
				down = x.exec(context.Background(), plain(args("PING")))
			})
			transportError(t, x, "PING against a dead server", down[0], nil)
			if err := srv.Restart(); err != nil {
				t.Fatal(err)
			}
			fresh := l.bind(t, s.dial(t, s.options(srv)))
			if rs := do(t, s.ctx(t), fresh, args("PING")); rs[0].Value.Str != "PONG" {
				t.Fatalf("PING on a new Conn after the restart: %v", describe(rs[0]))
			}
			// The old Conn answers or fails, but returns.
			within(t, s.o.Timeout, "Exec on the old Conn after the restart", func() {
				r := x.exec(context.Background(), plain(args("PING")))[0]
				t.Logf("old Conn after the restart: %s", describe(r))
			})
		})
	}
}
