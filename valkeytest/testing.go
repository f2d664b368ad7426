package valkeytest

import "testing"

// Start starts a server for the test with [StartServer] and the given
// options (at most one; none means the zero Options), and fails the test
// with tb.Fatal when it cannot. When the test ends, the server log is
// printed with tb.Logf if the test failed, and the server is stopped.
func Start(tb testing.TB, opts ...Options) *Server {
	tb.Helper()
	var o Options
	switch len(opts) {
	case 0:
	case 1:
		o = opts[0]
	default:
		tb.Fatalf("valkeytest.Start: at most one Options, got %d", len(opts))
	}
	srv, err := StartServer(o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("%s: log %s:\n%s", srv.label(), srv.LogPath(), srv.Log())
		}
		if err := srv.Stop(); err != nil {
			tb.Errorf("%s: stop: %v", srv.label(), err)
		}
	})
	return srv
}
