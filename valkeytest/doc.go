// Package valkeytest starts real Valkey servers for tests.
//
// It runs a valkey-server binary found on PATH, or the wire-compatible
// redis-server when valkey-server is absent (see [Binary]). Every server
// listens on 127.0.0.1 only, on a free port picked at start, keeps its
// data and log in its own directory, and is stopped by process id, never
// by name. Nothing of a server outlives [Server.Stop]: the process is
// reaped and the goroutine waiting on it has returned. Nor does a server
// outlive the process that started it: when a test binary or tool ends
// without stopping its servers (a log.Fatal, a -timeout panic, a
// SIGKILL), the kernel kills them (SIGKILL, through Pdeathsig).
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
// [StartCluster] and [StartClusterT] start a cluster (3 primaries with a
// replica each by default), with helpers for failovers, crashes and slot
// moves.
//
// [StartSentinel] and [StartSentinelT] start a primary, 2 replicas and 3
// sentinels (down-after-milliseconds 1000, failover-timeout 5000, quorum
// 2) that know each other from the start, with helpers for SENTINEL
// FAILOVER ([Sentinel.Failover], [Sentinel.StartFailover]), crashing the
// primary ([Sentinel.KillPrimary]) or a sentinel, and waiting for the
// switch ([Sentinel.WaitSwitch]); a [SentinelTap] records the events the
// sentinels publish (+switch-master, +selected-slave, ...) with the time
// they arrived:
//
//	s := valkeytest.StartSentinelT(t)
//	tap, err := s.Tap()
//	...
//	old, err := s.KillPrimary()
//	switched, err := tap.WaitType(10*time.Second, valkeytest.EventSwitchMaster, time.Time{})
//	// writes must resume on the new primary within 1s of switched.Time
//
// # TLS and ACL
//
// [NewCerts] makes a test PKI with crypto/x509 (a CA, a server certificate
// for 127.0.0.1 and localhost, a client certificate, and on demand
// expired, wrong-name and unknown-CA ones), written as PEM files in a
// directory of the test. With [Options.TLS] (and the TLS field of
// [ClusterOptions] and [SentinelOptions]) servers listen with TLS only,
// with tls-auth-clients as asked; [Certs.TLSConfig] is the matching client
// configuration, and the file paths serve configurations that name files.
// [Options.Username] and [Options.Password] protect a server;
// [Server.AddUser], [Server.SetUserPassword] and [Server.AddUserPassword]
// manage ACL users and rotate passwords, kept across restarts.
//
// valkeytest's own connections (readiness checks, [Server.Do], the
// cluster and sentinel helpers) speak TLS and authenticate as the server
// requires; over TLS they do not verify the server's certificate, so that
// a server with a bad one can still be started and observed.
//
// When neither binary is installed, scripts/install-server.sh installs one.
package valkeytest
