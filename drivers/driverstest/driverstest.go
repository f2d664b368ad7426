package driverstest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/vactor-io/vactor/drivers"
	"github.com/vactor-io/vactor/valkeytest"
)

// Options configures Run. The zero value is ready to use.
type Options struct {
	// Name is the driver's name in messages. Default "driver".
	Name string
	// Timeout bounds each wait of the suite: a call that must return, a
	// server event. Default 10s.
	Timeout time.Duration
}

// Run runs the conformance suite against d as subtests of t. It starts
// and stops its own servers. The capabilities it checks beyond the
// required interface are those d reports (drivers.CapabilitiesOf).
func Run(t *testing.T, d drivers.Driver, opts Options) {
	if opts.Name == "" {
		opts.Name = "driver"
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	s := &suite{d: d, o: opts, caps: drivers.CapabilitiesOf(d)}
	t.Logf("%s: capabilities %v", opts.Name, s.caps)
	t.Run("Handshake", s.handshake)
	t.Run("Dial", s.dialFailures)
	for _, l := range levels {
		t.Run(l.name, func(t *testing.T) {
			srv := valkeytest.Start(t)
			c := s.dial(t, s.options(srv))
			x := l.bind(t, c)
			t.Run("Pipeline", func(t *testing.T) { s.pipeline(t, x) })
			t.Run("ErrorReplies", func(t *testing.T) { s.errorReplies(t, x) })
			t.Run("Nil", func(t *testing.T) { s.nilReplies(t, x) })
			t.Run("Binary", func(t *testing.T) { s.binary(t, x) })
			t.Run("BigPipeline", func(t *testing.T) { s.bigPipeline(t, x) })
			t.Run("CloseInFlight", func(t *testing.T) { s.closeInFlight(t, srv, l) })
			if s.caps.Blocking {
				t.Run("Blocking", func(t *testing.T) { s.blocking(t, srv, l) })
			} else {
				t.Logf("%s does not support blocking commands: not checked", opts.Name)
			}
		})
	}
	t.Run("ServerKilled", s.serverKilled)
	t.Run("PubSub", s.pubsub)
}

// suite is one Run.
type suite struct {
	d    drivers.Driver
	o    Options
	caps drivers.Capabilities
}

// options returns the Options the suite dials srv with: the engine's
// defaults for timeouts, a pipeline size the big pipelines fit in.
func (s *suite) options(srv *valkeytest.Server) drivers.Options {
	return drivers.Options{
		Addr:         srv.Addr(),
		Username:     srv.Username(),
		Password:     srv.Password(),
		DialTimeout:  5 * time.Second,
		ReadTimeout:  3 * time.Second,
		WriteTimeout: 3 * time.Second,
		MaxPipeline:  bigPipeline,
	}
}

// dial dials with o, failing the test if it cannot; the Conn is closed at
// cleanup.
func (s *suite) dial(t *testing.T, o drivers.Options) drivers.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), s.o.Timeout)
	defer cancel()
	c, err := s.d.Dial(ctx, o)
	if err != nil {
		t.Fatalf("%s: Dial(%s): %v", s.o.Name, o.Addr, err)
	}
	if c == nil {
		t.Fatalf("%s: Dial(%s) returned a nil Conn and no error", s.o.Name, o.Addr)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// within runs f and fails the test if it has not returned after d.
func within(t *testing.T, d time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s did not return within %s", what, d)
	}
}

// ctx returns a context bounded by the suite's timeout, cancelled at
// cleanup.
func (s *suite) ctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), s.o.Timeout)
	t.Cleanup(cancel)
	return ctx
}

// awaitTrue polls cond until it holds, failing the test after the suite's
// timeout: for server-side state that has no event to wait on.
func (s *suite) awaitTrue(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(s.o.Timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %s", what, s.o.Timeout)
		}
		time.Sleep(5 * time.Millisecond) // polling a server, not synchronisation between goroutines
	}
}

// args is shorthand for a command's arguments.
func args(a ...string) []string { return a }

// describe formats a result for messages.
func describe(r drivers.Result) string {
	if r.Err != nil {
		return fmt.Sprintf("error %v", r.Err)
	}
	return r.Value.String()
}
