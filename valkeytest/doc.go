// Package valkeytest starts real Valkey servers for tests.
//
// It runs a valkey-server binary found on PATH, or the wire-compatible
// redis-server when valkey-server is absent (see [Binary]). Every server
// listens on 127.0.0.1 only, on a free port picked at start, keeps its
// data and log in its own directory, and is stopped by process id, never
// by name. Nothing of a server outlives [Server.Stop]: the process is
// reaped and the goroutine waiting on it has returned.
//
// In a test, [Start] starts a server and registers its cleanup; the
// server log is printed through the test's log when the test failed:
//
//	func TestSomething(t *testing.T) {
//		srv := valkeytest.Start(t)
//		conn, err := net.Dial("tcp", srv.Addr())
//		...
//	}
//
// Outside tests (a demo tool, a benchmark harness), [StartServer] does the
// same and leaves stopping the server to the caller:
//
//	srv, err := valkeytest.StartServer(valkeytest.Options{AppendOnly: true})
//	if err != nil {
//		return err
//	}
//	defer srv.Stop()
//
// A [Server] can also be killed, restarted on the same port and directory,
// and paused and resumed (SIGSTOP and SIGCONT), to test how a client
// behaves when its server crashes, comes back, or hangs.
//
// When neither binary is installed, scripts/install-server.sh installs one.
package valkeytest
