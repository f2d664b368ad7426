package valkeytest

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Host is the only address servers listen on.
const Host = "127.0.0.1"

const (
	readyTimeout       = 10 * time.Second      // start to first answer
	readyPoll          = 10 * time.Millisecond // readiness poll interval
	stopTimeout        = 5 * time.Second       // SIGTERM to SIGKILL
	startAttempts      = 5                     // free ports tried by StartServer
	restartBindTimeout = 5 * time.Second       // Restart retries binding its port this long
	restartBindPoll    = 50 * time.Millisecond // between those retries
	logTailLines       = 30                    // log lines quoted in start errors
	readyLogLine       = "Ready to accept connections"
)

// errBind marks a start that failed because the port was taken.
var errBind = errors.New("port in use")

// Server is a running server process started by [StartServer] or [Start].
// Its address, port and directory stay the same for its whole life,
// across [Server.Kill] and [Server.Restart]. Safe for concurrent use.
type Server struct {
	opts    Options
	mode    serverMode
	bin     string
	port    int
	dir     string
	ownDir  bool // created by StartServer, removed by Stop
	logPath string
	conf    string // mode.conf written here, or ""

	credMu   sync.Mutex // guards password and users; never held across I/O
	password string     // of Options.Username, or the default user
	users    []aclUser  // added by AddUser, created again at every launch

	mu      sync.Mutex
	proc    *process // nil when killed or stopped
	stopped bool
}

// serverMode is how a server is run beyond Options: sentinels are started
// with a configuration file that they rewrite.
type serverMode struct {
	conf     string // contents of the configuration file passed first, or ""
	sentinel bool   // run with --sentinel
}

// StartServer starts a server and waits until it answers. The server
// listens on 127.0.0.1 at opts.Port, or at a free port when opts.Port is
// 0 (picked again, up to 5 times, when another process takes it first).
// It runs until [Server.Stop] is called, or until the process that
// started it ends: the caller owns it. When the
// server does not start within 10 seconds, or exits before it answers,
// the error quotes the end of its log.
func StartServer(opts Options) (*Server, error) {
	return startServer(opts, serverMode{})
}

func startServer(opts Options, mode serverMode) (*Server, error) {
	opts.Args = append([]string(nil), opts.Args...)
	if opts.Username != "" && opts.Password == "" {
		return nil, errors.New("valkeytest: Options.Username needs Options.Password")
	}
	if opts.TLS != nil {
		if err := opts.TLS.validate(); err != nil {
			return nil, err
		}
		t := *opts.TLS
		opts.TLS = &t
	}
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	s := &Server{opts: opts, mode: mode, bin: bin, dir: opts.Dir, password: opts.Password}
	if s.dir == "" {
		if s.dir, err = os.MkdirTemp("", "valkeytest-"); err != nil {
			return nil, fmt.Errorf("valkeytest: %w", err)
		}
		s.ownDir = true
	} else if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return nil, fmt.Errorf("valkeytest: %w", err)
	}
	if s.dir, err = filepath.Abs(s.dir); err != nil {
		s.removeDir()
		return nil, fmt.Errorf("valkeytest: %w", err)
	}
	s.logPath = filepath.Join(s.dir, "server.log")
	if mode.conf != "" {
		s.conf = filepath.Join(s.dir, "server.conf")
		if err := os.WriteFile(s.conf, []byte(mode.conf), 0o644); err != nil {
			s.removeDir()
			return nil, fmt.Errorf("valkeytest: %w", err)
		}
	}

	attempts := 1
	if opts.Port == 0 {
		attempts = startAttempts
	}
	for range attempts {
		s.port = opts.Port
		if s.port == 0 {
			if s.port, err = freePort(); err != nil {
				break
			}
		}
		var p *process
		if p, err = s.launch(); err == nil {
			s.proc = p
			return s, nil
		}
		if !errors.Is(err, errBind) {
			break
		}
	}
	s.removeDir()
	return nil, err
}

// freePort returns a port that was free on 127.0.0.1 a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(Host, "0"))
	if err != nil {
		return 0, fmt.Errorf("valkeytest: picking a free port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return 0, fmt.Errorf("valkeytest: picking a free port: %w", err)
	}
	return port, nil
}

func (s *Server) args() []string {
	appendOnly := "no"
	if s.opts.AppendOnly {
		appendOnly = "yes"
	}
	var args []string
	if s.conf != "" {
		args = append(args, s.conf)
	}
	if s.mode.sentinel {
		args = append(args, "--sentinel")
	}
	if s.opts.TLS != nil {
		args = append(args, s.opts.TLS.args(s.port)...)
	} else {
		args = append(args, "--port", strconv.Itoa(s.port))
	}
	args = append(args,
		"--bind", Host,
		"--dir", s.dir,
		"--save", "",
		"--appendonly", appendOnly,
		"--logfile", s.logPath,
		"--daemonize", "no",
		"--protected-mode", "no",
	)
	if s.opts.AppendOnly {
		args = append(args, "--appendfsync", "always")
	}
	s.credMu.Lock()
	defer s.credMu.Unlock()
	switch {
	case s.opts.Username != "":
		args = append(args,
			"--user", "default", "off",
			"--user", s.opts.Username, "reset", "on", ">"+s.password, "~*", "&*", "+@all")
	case s.password != "":
		args = append(args, "--requirepass", s.password)
	}
	for _, u := range s.users {
		args = append(append(args, "--user", u.name), u.rules...)
	}
	return append(args, s.opts.Args...)
}

// authCommand returns the AUTH command of valkeytest's own connections,
// or nil when the server has no password.
func (s *Server) authCommand() []string {
	s.credMu.Lock()
	defer s.credMu.Unlock()
	switch {
	case s.opts.Username != "":
		return []string{"AUTH", s.opts.Username, s.password}
	case s.password != "":
		return []string{"AUTH", s.password}
	}
	return nil
}

// launch starts the binary on s.port and waits until it is ready. On
// failure the process is gone and the error wraps errBind when the port
// was taken.
func (s *Server) launch() (*process, error) {
	var offset int64
	if fi, err := os.Stat(s.logPath); err == nil {
		offset = fi.Size() // earlier runs stay in the log; judge this one
	}
	p, err := startProcess(s.bin, s.args(), s.dir, s.logPath)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.label(), err)
	}
	if err := s.awaitReady(p, offset); err != nil {
		_ = p.kill()
		return nil, err
	}
	return p, nil
}

func (s *Server) awaitReady(p *process, offset int64) error {
	deadline := time.NewTimer(readyTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(readyPoll)
	defer tick.Stop()
	for {
		switch s.probe(p.pid()) {
		case probeReady:
			return nil
		case probeNoAuth:
			// A password set through Args: the log line is then the
			// only sign that the server answering is ours.
			if !p.done() && strings.Contains(s.logSince(offset), readyLogLine) {
				return nil
			}
		}
		select {
		case <-p.exited:
			log := s.logSince(offset)
			err := fmt.Errorf("%s exited before answering (%v); end of %s:\n%s",
				s.label(), p.err, s.logPath, tail(log, logTailLines))
			if portTaken(log) {
				err = fmt.Errorf("%w: %w", errBind, err)
			}
			return err
		case <-deadline.C:
			return fmt.Errorf("%s did not answer PING within %v; end of %s:\n%s",
				s.label(), readyTimeout, s.logPath, tail(s.logSince(offset), logTailLines))
		case <-tick.C:
		}
	}
}

// portTaken reports whether a server log says it could not bind its port.
func portTaken(log string) bool {
	log = strings.ToLower(log)
	return strings.Contains(log, "address already in use") ||
		strings.Contains(log, "could not create server tcp listening socket")
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (s *Server) logSince(offset int64) string {
	b, err := os.ReadFile(s.logPath)
	if err != nil || int64(len(b)) < offset {
		return ""
	}
	return string(b[offset:])
}

func (s *Server) label() string {
	name := filepath.Base(s.bin)
	if s.opts.Name != "" {
		name = s.opts.Name + " (" + name + ")"
	}
	return "valkeytest: " + name + " on " + s.Addr()
}

func (s *Server) removeDir() error {
	if !s.ownDir {
		return nil
	}
	return os.RemoveAll(s.dir)
}

// Addr returns the server address, "127.0.0.1:PORT".
func (s *Server) Addr() string { return net.JoinHostPort(Host, strconv.Itoa(s.port)) }

// Host returns the host the server listens on: always "127.0.0.1".
func (s *Server) Host() string { return Host }

// Port returns the TCP port the server listens on.
func (s *Server) Port() int { return s.port }

// Name returns Options.Name.
func (s *Server) Name() string { return s.opts.Name }

// Password returns the password valkeytest's own connections use:
// Options.Password, or the one set since by [Server.SetUserPassword].
func (s *Server) Password() string {
	s.credMu.Lock()
	defer s.credMu.Unlock()
	return s.password
}

// Username returns Options.Username.
func (s *Server) Username() string { return s.opts.Username }

// TLS returns Options.TLS, or nil for a plain TCP server.
func (s *Server) TLS() *TLSOptions { return s.opts.TLS }

// ClientTLS returns a new client TLS configuration for the server:
// Options.TLS.Certs.TLSConfig() (the CA as RootCAs, the client
// certificate), or nil for a plain TCP server.
func (s *Server) ClientTLS() *tls.Config {
	if s.opts.TLS == nil {
		return nil
	}
	return s.opts.TLS.Certs.TLSConfig()
}

// Binary returns the path of the server binary that runs.
func (s *Server) Binary() string { return s.bin }

// Dir returns the server's working directory.
func (s *Server) Dir() string { return s.dir }

// LogPath returns the path of the server log, in Dir. It holds the output
// of every run of the server: the first start and each Restart.
func (s *Server) LogPath() string { return s.logPath }

// Log returns the contents of the server log, or "" when it cannot be read
// (after Stop removed the directory).
func (s *Server) Log() string { return s.logSince(0) }

// Pid returns the process id of the running server, or 0 when it is not
// running (killed, stopped, or exited on its own).
func (s *Server) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil || s.proc.done() {
		return 0
	}
	return s.proc.pid()
}

// Stop stops the server: SIGTERM, then SIGKILL when it has not exited
// within 5 seconds. It returns once the process is reaped, and removes the
// directory when StartServer created it. Calling Stop again does nothing
// and returns nil. After Stop, Restart, Pause and Resume return
// [ErrStopped].
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return nil
	}
	s.stopped = true
	err := s.shutdownLocked()
	if rerr := s.removeDir(); rerr != nil {
		err = errors.Join(err, fmt.Errorf("valkeytest: %w", rerr))
	}
	return err
}

func (s *Server) shutdownLocked() error {
	p := s.proc
	s.proc = nil
	if p == nil {
		return nil
	}
	return p.terminate(stopTimeout)
}

// Kill kills the server with SIGKILL, as a crash would, and returns once
// the process is reaped. The directory and its data stay, for Restart.
// Killing a server that is not running does nothing and returns nil.
func (s *Server) Kill() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.proc
	s.proc = nil
	if p == nil {
		return nil
	}
	return p.kill()
}

// Restart stops the server if it runs (SIGTERM, like Stop), then starts
// it again with the same options, port and directory, and waits until it
// answers. While the port is still taken it keeps trying for up to 5
// seconds. With AppendOnly set, acknowledged writes survive a Restart,
// also one after Kill.
func (s *Server) Restart() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return ErrStopped
	}
	if err := s.shutdownLocked(); err != nil {
		return err
	}
	deadline := time.Now().Add(restartBindTimeout)
	for {
		p, err := s.launch()
		if err == nil {
			s.proc = p
			return nil
		}
		if !errors.Is(err, errBind) || time.Now().After(deadline) {
			return err
		}
		t := time.NewTimer(restartBindPoll)
		<-t.C
	}
}

// Pause stops the server process with SIGSTOP, so that it keeps its
// connections open but answers nothing, and returns once the process is
// stopped. Resume undoes it; Stop and Kill work on a paused server.
func (s *Server) Pause() error { return s.sendStopCont(syscall.SIGSTOP, true) }

// Resume continues a paused server with SIGCONT and returns once the
// process runs again.
func (s *Server) Resume() error { return s.sendStopCont(syscall.SIGCONT, false) }

func (s *Server) sendStopCont(sig syscall.Signal, stopped bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return ErrStopped
	}
	p := s.proc
	if p == nil || p.done() {
		return ErrNotRunning
	}
	if err := p.signal(sig); err != nil {
		return fmt.Errorf("%s: %w", s.label(), err)
	}
	p.awaitState(stopped)
	return nil
}
