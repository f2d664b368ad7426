package valkeytest

import "testing"

// setup is a set of processes a test starts (a cluster, a sentinel
// setup).
type setup interface {
	Stop() error
	logTails(lines int) string
}

// startT starts a setup for the test with start and the given options (at
// most one; none means the zero options), and fails the test with
// tb.Fatal when it cannot. When the test ends, the end of every process's
// log is printed with tb.Logf if the test failed, and the setup is
// stopped. what names the setup in messages.
func startT[O any, S setup](tb testing.TB, what string, opts []O, start func(O) (S, error)) S {
	tb.Helper()
	var o O
	switch len(opts) {
	case 0:
	case 1:
		o = opts[0]
	default:
		tb.Fatalf("valkeytest: starting a %s: at most one options value, got %d", what, len(opts))
	}
	s, err := start(o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("valkeytest: %s:%s", what, s.logTails(logTailLines))
		}
		if err := s.Stop(); err != nil {
			tb.Errorf("valkeytest: %s stop: %v", what, err)
		}
	})
	return s
}
