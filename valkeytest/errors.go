package valkeytest

import "errors"

var (
	// ErrNoBinary is returned by [Binary], [StartServer] and [Start] when
	// neither valkey-server nor redis-server can be found.
	ErrNoBinary = errors.New("valkeytest: neither valkey-server nor redis-server found on PATH " +
		"(install one with scripts/install-server.sh, or set VALKEY_SERVER_BIN)")

	// ErrStopped is returned by the methods of a [Server] that need a
	// server after [Server.Stop] was called.
	ErrStopped = errors.New("valkeytest: server stopped")

	// ErrNotRunning is returned by [Server.Pause] and [Server.Resume] when
	// the server process is not running (killed, or exited on its own).
	ErrNotRunning = errors.New("valkeytest: server not running")

	// ErrSlotUnserved is wrapped in the error of a [Cluster] wait for
	// health ([Cluster.WaitHealthy], [Cluster.RestartNode], ...) that
	// gave up while some running node saw a slot served by no node: a
	// state the cluster may not leave by itself, which [Cluster.FixSlots]
	// repairs.
	ErrSlotUnserved = errors.New("valkeytest: cluster: a slot is served by no node")

	// ErrTapClosed is returned by the waits of a [SentinelTap] once it is
	// closed.
	ErrTapClosed = errors.New("valkeytest: sentinel tap closed")
)
