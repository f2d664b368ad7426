package valkeytest

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// A sentinel setup is one primary, its replicas and the sentinels that
// monitor them, each a Server. The sentinels are started knowing each
// other and the replicas (sentinel myid, known-sentinel, known-replica in
// their configuration files), so that they need not wait for hello
// messages (every 2 seconds) before they can fail over.

const (
	sentinelWaitTimeout = 15 * time.Second      // start, failover, health
	sentinelPoll        = 20 * time.Millisecond // between health polls
	sentinelLogTail     = 15                    // log lines per process in StartSentinel errors
	sentinelInfoFresh   = 30 * time.Second      // a replica's INFO older than this is not selectable
	startPingPeriod     = 50                    // ms, SENTINEL DEBUG ping-period while starting
	defaultPingPeriod   = 1000                  // ms, the server's own ping-period
)

// SentinelOptions configures a sentinel setup started by [StartSentinel]
// or [StartSentinelT]. The zero value is a primary with 2 replicas
// monitored by 3 sentinels under the name "mymaster", quorum 2,
// down-after-milliseconds 1000 and failover-timeout 5000, without
// passwords or TLS.
type SentinelOptions struct {
	// MasterName is the name the sentinels monitor the primary under
	// (master_set, VALKEY_SENTINEL_MASTER). Default "mymaster".
	MasterName string

	// Replicas is the number of replicas of the primary. Default 2; a
	// negative value means none (then no failover is possible).
	Replicas int

	// Sentinels is the number of sentinels. Default 3.
	Sentinels int

	// Quorum is the number of sentinels that must agree the primary is
	// down before a failover starts. Default: a majority of Sentinels.
	Quorum int

	// DownAfter is down-after-milliseconds: how long the primary may not
	// answer before a sentinel considers it down. Rounded down to whole
	// milliseconds. Default 1 second.
	DownAfter time.Duration

	// FailoverTimeout is failover-timeout: how long a failover may take
	// (promotion, then reconfiguring the other replicas) before it is
	// aborted, and half the time before a sentinel tries another one.
	// Rounded down to whole milliseconds. Default 5 seconds.
	FailoverTimeout time.Duration

	// Username and Password protect the primary and the replicas
	// (Options.Username and Options.Password of each); the replicas
	// (masteruser, masterauth) and the sentinels (auth-user, auth-pass)
	// use them. Default: none.
	Username, Password string

	// SentinelUsername and SentinelPassword protect the sentinels
	// (Options.Username and Options.Password of each), which use them
	// with each other (sentinel-user, sentinel-pass). Default: none.
	SentinelUsername, SentinelPassword string

	// TLS makes every data node and every sentinel accept TLS only, and
	// every connection among them use TLS (tls-replication yes).
	// Default: nil (plain TCP).
	TLS *TLSOptions

	// AppendOnly sets Options.AppendOnly on the data nodes.
	AppendOnly bool

	// InfoPeriod is how often a sentinel sends INFO to each data node
	// (SENTINEL DEBUG info-period), outside failovers (during one it is 1
	// second). It bounds how soon the sentinels notice a role they did not
	// set, such as a killed primary restarted as a primary; they turn such
	// a node into a replica when it has said so for 4 PublishPeriods.
	// Default 0: the server's own, 10 seconds. Keep the default when the
	// test is about how clients fare with real sentinels.
	InfoPeriod time.Duration

	// PublishPeriod is how often a sentinel publishes its hello message
	// (SENTINEL DEBUG publish-period), through which the other sentinels
	// learn of a switch. Default 0: the server's own, 2 seconds.
	PublishPeriod time.Duration
}

func (o SentinelOptions) withDefaults() (SentinelOptions, error) {
	if o.MasterName == "" {
		o.MasterName = "mymaster"
	}
	for _, r := range o.MasterName {
		if r <= ' ' || r == '"' || r == '\\' || r > '~' {
			return o, fmt.Errorf("valkeytest: SentinelOptions.MasterName = %q: printable ASCII without spaces, quotes or backslashes", o.MasterName)
		}
	}
	switch {
	case o.Replicas == 0:
		o.Replicas = 2
	case o.Replicas < 0:
		o.Replicas = 0
	}
	switch {
	case o.Sentinels == 0:
		o.Sentinels = 3
	case o.Sentinels < 0:
		return o, fmt.Errorf("valkeytest: SentinelOptions.Sentinels = %d, want at least 1", o.Sentinels)
	}
	switch {
	case o.Quorum == 0:
		o.Quorum = o.Sentinels/2 + 1
	case o.Quorum < 0 || o.Quorum > o.Sentinels:
		return o, fmt.Errorf("valkeytest: SentinelOptions.Quorum = %d, want 1 to Sentinels (%d)", o.Quorum, o.Sentinels)
	}
	switch {
	case o.DownAfter == 0:
		o.DownAfter = time.Second
	case o.DownAfter < time.Millisecond:
		return o, fmt.Errorf("valkeytest: SentinelOptions.DownAfter = %v, want at least 1ms", o.DownAfter)
	}
	switch {
	case o.FailoverTimeout == 0:
		o.FailoverTimeout = 5 * time.Second
	case o.FailoverTimeout < time.Millisecond:
		return o, fmt.Errorf("valkeytest: SentinelOptions.FailoverTimeout = %v, want at least 1ms", o.FailoverTimeout)
	}
	if o.InfoPeriod < 0 || (o.InfoPeriod > 0 && o.InfoPeriod < time.Millisecond) {
		return o, fmt.Errorf("valkeytest: SentinelOptions.InfoPeriod = %v, want 0 or at least 1ms", o.InfoPeriod)
	}
	if o.PublishPeriod < 0 || (o.PublishPeriod > 0 && o.PublishPeriod < time.Millisecond) {
		return o, fmt.Errorf("valkeytest: SentinelOptions.PublishPeriod = %v, want 0 or at least 1ms", o.PublishPeriod)
	}
	if o.Username != "" && o.Password == "" {
		return o, errors.New("valkeytest: SentinelOptions.Username needs Password")
	}
	if o.SentinelUsername != "" && o.SentinelPassword == "" {
		return o, errors.New("valkeytest: SentinelOptions.SentinelUsername needs SentinelPassword")
	}
	return o, nil
}

// Sentinel is a running sentinel setup started by [StartSentinel] or
// [StartSentinelT]: data nodes (a primary and its replicas) and sentinels,
// each a [Server] on 127.0.0.1 in its own directory. Which data node is the
// primary changes with failovers: ask [Sentinel.Primary]. Its methods are
// safe for concurrent use (two failovers at once are the caller's
// problem). After [Sentinel.Stop] they return [ErrStopped].
type Sentinel struct {
	opts      SentinelOptions
	nodes     []*Server // data nodes in start order; nodes[0] was the first primary
	sentinels []*Server
	ids       []string // the sentinels' run ids, by index

	mu      sync.Mutex
	taps    map[*SentinelTap]bool
	stopped bool
}

// StartSentinel starts a primary, its replicas and the sentinels, and
// waits until the setup is ready: the replicas replicate the primary with
// their link up, and every sentinel monitors the primary, sees it up,
// knows every replica (with a fresh INFO from each, so that it can choose
// one) and every other sentinel, all connected. It takes well under a
// second on an idle machine and gives up after 15 seconds. The caller owns
// the setup and stops it with [Sentinel.Stop]. On error nothing keeps
// running, and the error quotes the end of every process's log.
//
// Data nodes run with diskless replication without delay. Each sentinel
// runs "redis-server <its configuration file> --sentinel" (valkey-server
// likewise), the file in its own directory, which the sentinel rewrites
// as it learns. It needs Redis 6.2 or later, or Valkey.
func StartSentinel(opts SentinelOptions) (*Sentinel, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Sentinel{opts: opts, taps: make(map[*SentinelTap]bool)}
	if err := s.start(); err != nil {
		err = fmt.Errorf("%w%s", err, s.logTails(sentinelLogTail))
		_ = s.Stop()
		return nil, err
	}
	return s, nil
}

// StartSentinelT starts a sentinel setup for the test with [StartSentinel]
// and the given options (at most one; none means the zero
// SentinelOptions), and fails the test with tb.Fatal when it cannot. When
// the test ends, the end of every process's log is printed with tb.Logf if
// the test failed, and the setup is stopped (taps included).
func StartSentinelT(tb testing.TB, opts ...SentinelOptions) *Sentinel {
	tb.Helper()
	return startT(tb, "sentinel setup", opts, StartSentinel)
}

func (s *Sentinel) start() error {
	deadline := time.Now().Add(sentinelWaitTimeout)
	o := s.opts
	dataArgs := []string{"--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0"}
	if o.Password != "" {
		dataArgs = append(dataArgs, "--masterauth", o.Password)
	}
	if o.Username != "" {
		dataArgs = append(dataArgs, "--masteruser", o.Username)
	}
	dataOpts := func(name string, extra ...string) Options {
		return Options{
			Name:       name,
			Username:   o.Username,
			Password:   o.Password,
			TLS:        o.TLS,
			AppendOnly: o.AppendOnly,
			Args:       append(slices.Clone(dataArgs), extra...),
		}
	}
	primary, err := StartServer(dataOpts("sentinel primary"))
	if err != nil {
		return err
	}
	s.nodes = make([]*Server, 1+o.Replicas)
	s.nodes[0] = primary
	errs := make([]error, o.Replicas)
	var wg sync.WaitGroup
	for i := range o.Replicas {
		wg.Go(func() {
			// REPLICAOF as a command connects at once; as an argument, at
			// the next replication cron tick (up to a second later).
			r, err := StartServer(dataOpts("sentinel replica " + strconv.Itoa(i+1)))
			if err == nil {
				_, err = r.do(toolIOTimeout, "REPLICAOF", Host, strconv.Itoa(primary.Port()))
				if err != nil {
					err = fmt.Errorf("%s: REPLICAOF: %w", r.label(), err)
				}
			}
			s.nodes[1+i], errs[i] = r, err
		})
	}
	wg.Wait()
	s.nodes = slices.DeleteFunc(s.nodes, func(n *Server) bool { return n == nil })
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := poll(deadline, "replicas did not sync", func() error {
		return s.replicating(primary, s.nodes[1:])
	}); err != nil {
		return err
	}
	if err := s.startSentinels(); err != nil {
		return err
	}
	// A sentinel dials the others as it starts, before they all listen,
	// and tries again a ping period (1 second) later: shorten the period
	// until they are connected, then restore the server's.
	if err := s.debugAll("ping-period", strconv.Itoa(startPingPeriod)); err != nil {
		return err
	}
	if err := s.pollLive(deadline, "sentinel setup not ready", s.healthy); err != nil {
		return err
	}
	return s.debugAll("ping-period", strconv.Itoa(defaultPingPeriod))
}

// debugAll runs SENTINEL DEBUG name value on every sentinel.
func (s *Sentinel) debugAll(name, value string) error {
	for _, sn := range s.sentinels {
		if _, err := sn.do(toolIOTimeout, "SENTINEL", "DEBUG", name, value); err != nil {
			return fmt.Errorf("%s: SENTINEL DEBUG %s %s: %w", sn.label(), name, value, err)
		}
	}
	return nil
}

// startSentinels starts every sentinel, each knowing the others: their
// ports and ids go in each configuration file, so when one port is taken
// by the time its sentinel starts, all of them start again on new ports.
func (s *Sentinel) startSentinels() error {
	n := s.opts.Sentinels
	var err error
	for range startAttempts {
		ports := make([]int, n)
		s.ids = make([]string, n)
		for i := range n {
			for {
				if ports[i], err = freePort(); err != nil {
					return err
				}
				if !slices.Contains(ports[:i], ports[i]) {
					break
				}
			}
			s.ids[i] = newRunID()
		}
		s.sentinels = make([]*Server, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				s.sentinels[i], errs[i] = startServer(Options{
					Name:     "sentinel " + strconv.Itoa(i+1),
					Port:     ports[i],
					Username: s.opts.SentinelUsername,
					Password: s.opts.SentinelPassword,
					TLS:      s.opts.TLS,
				}, serverMode{conf: s.sentinelConf(i, ports), sentinel: true})
			})
		}
		wg.Wait()
		if err = errors.Join(errs...); err == nil {
			for _, sn := range s.sentinels {
				if err := s.tune(sn); err != nil {
					return err
				}
			}
			return nil
		}
		for _, sn := range s.sentinels {
			if sn != nil {
				_ = sn.Stop()
			}
		}
		s.sentinels = nil
		bind := false
		for _, e := range errs {
			bind = bind || errors.Is(e, errBind)
		}
		if !bind {
			break
		}
	}
	return err
}

// tune applies InfoPeriod and PublishPeriod to a sentinel: SENTINEL DEBUG
// settings are not kept in its configuration file.
func (s *Sentinel) tune(sn *Server) error {
	args := []string{"SENTINEL", "DEBUG"}
	if s.opts.InfoPeriod > 0 {
		args = append(args, "info-period", strconv.FormatInt(s.opts.InfoPeriod.Milliseconds(), 10))
	}
	if s.opts.PublishPeriod > 0 {
		args = append(args, "publish-period", strconv.FormatInt(s.opts.PublishPeriod.Milliseconds(), 10))
	}
	if len(args) == 2 {
		return nil
	}
	if _, err := sn.do(toolIOTimeout, args...); err != nil {
		return fmt.Errorf("%s: %s: %w", sn.label(), strings.Join(args, " "), err)
	}
	return nil
}

// sentinelConf is the configuration file of sentinel i.
func (s *Sentinel) sentinelConf(i int, ports []int) string {
	o := s.opts
	name := o.MasterName
	var b strings.Builder
	line := func(args ...string) {
		for j, a := range args {
			if j > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(confQuote(a))
		}
		b.WriteByte('\n')
	}
	line("sentinel", "myid", s.ids[i])
	line("sentinel", "monitor", name, Host, strconv.Itoa(s.nodes[0].Port()), strconv.Itoa(o.Quorum))
	line("sentinel", "down-after-milliseconds", name, strconv.FormatInt(o.DownAfter.Milliseconds(), 10))
	line("sentinel", "failover-timeout", name, strconv.FormatInt(o.FailoverTimeout.Milliseconds(), 10))
	if o.Username != "" {
		line("sentinel", "auth-user", name, o.Username)
	}
	if o.Password != "" {
		line("sentinel", "auth-pass", name, o.Password)
	}
	if o.SentinelUsername != "" {
		line("sentinel", "sentinel-user", o.SentinelUsername)
	}
	if o.SentinelPassword != "" {
		line("sentinel", "sentinel-pass", o.SentinelPassword)
	}
	for _, r := range s.nodes[1:] {
		line("sentinel", "known-replica", name, Host, strconv.Itoa(r.Port()))
	}
	for j, p := range ports {
		if j != i {
			line("sentinel", "known-sentinel", name, Host, strconv.Itoa(p), s.ids[j])
		}
	}
	return b.String()
}

// confQuote quotes a configuration file argument when it needs it.
func confQuote(a string) string {
	if a != "" && !strings.ContainsAny(a, " \t\r\n\"'\\") {
		return a
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(a); i++ {
		switch c := a[i]; {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < ' ' || c > '~':
			fmt.Fprintf(&b, "\\x%02x", c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// newRunID returns 40 random hex digits, a sentinel id.
func newRunID() string {
	var b [20]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// poll calls check every sentinelPoll until it returns nil or the deadline
// passes.
func poll(deadline time.Time, what string, check func() error) error {
	start := time.Now()
	for {
		err := check()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("valkeytest: %s within %v: %w", what, time.Since(start).Round(time.Millisecond), err)
		}
		time.Sleep(sentinelPoll)
	}
}

func (s *Sentinel) isStopped() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopped
}

// pollLive is poll that gives up with ErrStopped once Stop was called.
func (s *Sentinel) pollLive(deadline time.Time, what string, check func() error) error {
	return poll(deadline, what, func() error {
		if s.isStopped() {
			return ErrStopped
		}
		return check()
	})
}

func (s *Sentinel) logTails(lines int) string {
	var b strings.Builder
	for _, n := range slices.Concat(s.nodes, s.sentinels) {
		if n != nil {
			fmt.Fprintf(&b, "\n--- %s, end of %s:\n%s", n.label(), n.LogPath(), tail(n.Log(), lines))
		}
	}
	return b.String()
}

// Stop closes every tap and stops every process (in parallel, each like
// [Server.Stop]), removing their directories. It returns once every
// process is reaped. Calling Stop again does nothing and returns nil.
func (s *Sentinel) Stop() error {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return nil
	}
	s.stopped = true
	taps := make([]*SentinelTap, 0, len(s.taps))
	for t := range s.taps {
		taps = append(taps, t)
	}
	s.mu.Unlock()
	for _, t := range taps {
		t.Close()
	}
	all := slices.Concat(s.sentinels, s.nodes)
	errs := make([]error, len(all))
	var wg sync.WaitGroup
	for i, n := range all {
		if n != nil {
			wg.Go(func() { errs[i] = n.Stop() })
		}
	}
	wg.Wait()
	return errors.Join(errs...)
}

// MasterName returns the name the sentinels monitor the primary under.
func (s *Sentinel) MasterName() string { return s.opts.MasterName }

// Addrs returns the addresses of the sentinels, in start order: what a
// client is configured with.
func (s *Sentinel) Addrs() []string {
	addrs := make([]string, len(s.sentinels))
	for i, n := range s.sentinels {
		addrs[i] = n.Addr()
	}
	return addrs
}

// Sentinels returns the sentinels, in start order. Kill and Pause them
// as any Server; bring them back with RestartSentinel.
func (s *Sentinel) Sentinels() []*Server { return slices.Clone(s.sentinels) }

// Nodes returns the data nodes in start order: the first primary, then
// the replicas.
func (s *Sentinel) Nodes() []*Server { return slices.Clone(s.nodes) }

// ClientTLS returns a new client TLS configuration for the setup
// (SentinelOptions.TLS.Certs.TLSConfig()), or nil without TLS.
func (s *Sentinel) ClientTLS() *tls.Config {
	if s.opts.TLS == nil {
		return nil
	}
	return s.opts.TLS.Certs.TLSConfig()
}

// node returns the data node at addr, or nil.
func (s *Sentinel) node(addr string) *Server {
	for _, n := range s.nodes {
		if n.Addr() == addr {
			return n
		}
	}
	return nil
}

// MasterAddr returns the primary's address as the sentinels see it
// (SENTINEL GET-MASTER-ADDR-BY-NAME), asking the running sentinels in
// turn until one answers.
func (s *Sentinel) MasterAddr() (string, error) {
	if s.isStopped() {
		return "", ErrStopped
	}
	var errs []error
	for _, sn := range s.sentinels {
		if sn.Pid() == 0 {
			continue
		}
		addr, err := s.masterAddrOf(sn)
		if err == nil {
			return addr, nil
		}
		errs = append(errs, err)
	}
	return "", fmt.Errorf("valkeytest: no running sentinel answered: %w", errors.Join(errs...))
}

func (s *Sentinel) masterAddrOf(sn *Server) (string, error) {
	r, err := sn.do(toolIOTimeout, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", s.opts.MasterName)
	if err != nil {
		return "", fmt.Errorf("%s: SENTINEL GET-MASTER-ADDR-BY-NAME: %w", sn.label(), err)
	}
	arr, _ := r.([]any)
	if len(arr) != 2 {
		return "", fmt.Errorf("%s: SENTINEL GET-MASTER-ADDR-BY-NAME = %v: %w", sn.label(), r, errProtocol)
	}
	host, _ := arr[0].(string)
	port, _ := arr[1].(string)
	return net.JoinHostPort(host, port), nil
}

// Primary returns the data node the sentinels name as the primary
// (MasterAddr).
func (s *Sentinel) Primary() (*Server, error) {
	addr, err := s.MasterAddr()
	if err != nil {
		return nil, err
	}
	if n := s.node(addr); n != nil {
		return n, nil
	}
	return nil, fmt.Errorf("valkeytest: the sentinels name %s as primary, which is not one of the data nodes", addr)
}

// Replicas returns the running data nodes that replicate the primary
// (Primary) with their link up, as they say themselves (INFO
// replication), in start order.
func (s *Sentinel) Replicas() ([]*Server, error) {
	p, err := s.Primary()
	if err != nil {
		return nil, err
	}
	var out []*Server
	for _, n := range s.nodes {
		if n == p || n.Pid() == 0 {
			continue
		}
		if err := replicaOf(n, p); err == nil {
			out = append(out, n)
		}
	}
	return out, nil
}

// replicaOf reports whether n replicates p with its link up.
func replicaOf(n, p *Server) error {
	info, err := n.info("replication")
	if err != nil {
		return err
	}
	if role := infoField(info, "role"); role != "slave" {
		return fmt.Errorf("%s: role:%s, want slave", n.label(), role)
	}
	master := net.JoinHostPort(infoField(info, "master_host"), infoField(info, "master_port"))
	if master != p.Addr() {
		return fmt.Errorf("%s replicates %s, want %s", n.label(), master, p.Addr())
	}
	if link := infoField(info, "master_link_status"); link != "up" {
		return fmt.Errorf("%s: master_link_status:%s", n.label(), link)
	}
	return nil
}

// replicating checks that p is a primary and every one of replicas
// replicates it with the link up, online in p's view.
func (s *Sentinel) replicating(p *Server, replicas []*Server) error {
	info, err := p.info("replication")
	if err != nil {
		return err
	}
	if role := infoField(info, "role"); role != "master" {
		return fmt.Errorf("%s: role:%s, want master", p.label(), role)
	}
	online := make(map[int]bool)
	for line := range strings.Lines(info) {
		if !strings.HasPrefix(line, "slave") || !strings.Contains(line, "state=online") {
			continue
		}
		for f := range strings.SplitSeq(strings.TrimSpace(line[strings.IndexByte(line, ':')+1:]), ",") {
			if v, ok := strings.CutPrefix(f, "port="); ok {
				port, _ := strconv.Atoi(v)
				online[port] = true
			}
		}
	}
	for _, r := range replicas {
		if !online[r.Port()] {
			return fmt.Errorf("%s does not list %s as an online replica", p.label(), r.Addr())
		}
		if err := replicaOf(r, p); err != nil {
			return err
		}
	}
	if len(replicas) == 0 {
		return nil
	}
	// "online" is not yet "streaming": after a diskless sync the primary
	// streams writes to a replica only once the replica has acknowledged
	// (up to a second later), and a replica promoted before that lacks
	// every write since its sync. A write acknowledged by every replica
	// (WAIT) proves they all stream.
	replies, err := p.pipeline([][]string{
		{"SET", syncKey, "1"},
		{"DEL", syncKey},
		{"WAIT", strconv.Itoa(len(replicas)), "200"},
	}, toolIOTimeout)
	if err != nil {
		return fmt.Errorf("%s: WAIT: %w", p.label(), err)
	}
	for _, r := range replies {
		if err := replyErr(r); err != nil {
			return fmt.Errorf("%s: WAIT: %w", p.label(), err)
		}
	}
	if n, _ := replies[2].(int64); int(n) < len(replicas) {
		return fmt.Errorf("%s: %d of %d replicas acknowledged a write (WAIT): not all stream yet", p.label(), n, len(replicas))
	}
	return nil
}

// syncKey is the key replicating writes and deletes to check that the
// replicas receive writes.
const syncKey = "__valkeytest:sync"

// KillPrimary kills the primary (Primary) with SIGKILL ([Server.Kill]),
// as a crash would, and returns it. The sentinels notice after
// DownAfter and fail over: wait for it with WaitSwitch(killed.Addr(), ...).
func (s *Sentinel) KillPrimary() (*Server, error) {
	p, err := s.Primary()
	if err != nil {
		return nil, err
	}
	if err := p.Kill(); err != nil {
		return nil, err
	}
	return p, nil
}

// KillSentinel kills sentinel i (in start order) with SIGKILL and returns
// it; [Server.Restart] brings it back.
func (s *Sentinel) KillSentinel(i int) (*Server, error) {
	if s.isStopped() {
		return nil, ErrStopped
	}
	if i < 0 || i >= len(s.sentinels) {
		return nil, fmt.Errorf("valkeytest: KillSentinel(%d): there are %d sentinels", i, len(s.sentinels))
	}
	sn := s.sentinels[i]
	return sn, sn.Kill()
}

// RestartSentinel brings sentinel i (in start order) back, stopped first
// if it runs, on the same port, with the configuration file it rewrote
// (its id, the primary it knows, the others), and applies InfoPeriod and
// PublishPeriod again (a plain [Server.Restart] leaves it with the
// server's periods). It returns once the sentinel answers; WaitHealthy
// waits until it knows the others again.
func (s *Sentinel) RestartSentinel(i int) error {
	if s.isStopped() {
		return ErrStopped
	}
	if i < 0 || i >= len(s.sentinels) {
		return fmt.Errorf("valkeytest: RestartSentinel(%d): there are %d sentinels", i, len(s.sentinels))
	}
	sn := s.sentinels[i]
	if err := sn.Restart(); err != nil {
		return err
	}
	return s.tune(sn)
}

// StartFailover asks a running sentinel for a failover (SENTINEL
// FAILOVER, which needs no agreement from the others) and returns at
// once, with the primary's address before the failover. While the
// sentinel still finishes a failover (it answers -INPROG), it asks again,
// for up to 15 seconds. Follow the failover with WaitSwitch or a
// [SentinelTap].
func (s *Sentinel) StartFailover() (old string, err error) {
	old, err = s.MasterAddr()
	if err != nil {
		return "", err
	}
	err = s.pollLive(time.Now().Add(sentinelWaitTimeout), "SENTINEL FAILOVER not accepted", func() error {
		var errs []error
		for _, sn := range s.sentinels {
			if sn.Pid() == 0 {
				continue
			}
			_, err := sn.do(toolIOTimeout, "SENTINEL", "FAILOVER", s.opts.MasterName)
			if err == nil {
				return nil
			}
			errs = append(errs, fmt.Errorf("%s: SENTINEL FAILOVER: %w", sn.label(), err))
		}
		return errors.Join(errs...)
	})
	if err != nil {
		return "", err
	}
	return old, nil
}

// Failover runs a failover (StartFailover) and waits up to 15 seconds
// until it is over: every running sentinel names the same new primary, no
// sentinel has a failover in progress any more, and the new primary says
// it is one (ROLE). It returns the new primary. The old primary is turned
// into a replica by the sentinels later (they wait about 8 seconds before
// they reconfigure a node that still says it is a primary): WaitHealthy
// waits for that.
func (s *Sentinel) Failover() (*Server, error) {
	old, err := s.StartFailover()
	if err != nil {
		return nil, err
	}
	return s.waitSwitch(old, time.Now().Add(sentinelWaitTimeout), true)
}

// WaitSwitch waits up to timeout until every running sentinel names the
// same primary, other than old (an address, "127.0.0.1:PORT"), and that
// node says it is a primary (ROLE). It returns the new primary. Use it
// after StartFailover or KillPrimary: the sentinels publish +switch-master
// when they switch, each one at its own time (all within about 2.5
// seconds after a kill, with DownAfter 1s).
func (s *Sentinel) WaitSwitch(old string, timeout time.Duration) (*Server, error) {
	return s.waitSwitch(old, time.Now().Add(timeout), false)
}

func (s *Sentinel) waitSwitch(old string, deadline time.Time, settled bool) (*Server, error) {
	var primary *Server
	err := s.pollLive(deadline, "no switch from "+old, func() error {
		var addr string
		for _, sn := range s.sentinels {
			if sn.Pid() == 0 {
				continue
			}
			a, err := s.masterAddrOf(sn)
			if err != nil {
				return err
			}
			switch {
			case a == old:
				return fmt.Errorf("%s still names %s", sn.label(), old)
			case addr != "" && a != addr:
				return fmt.Errorf("the sentinels name %s and %s", addr, a)
			}
			addr = a
			if settled {
				m, err := s.masterFields(sn)
				if err != nil {
					return err
				}
				if m["flags"] != "master" {
					return fmt.Errorf("%s: primary flags %s", sn.label(), m["flags"])
				}
			}
		}
		if addr == "" {
			return errors.New("no sentinel is running")
		}
		n := s.node(addr)
		if n == nil {
			return fmt.Errorf("the sentinels name %s, not a data node", addr)
		}
		role, err := n.Role()
		if err != nil {
			return err
		}
		if role != RolePrimary {
			return fmt.Errorf("%s says it is a %s", n.label(), role)
		}
		primary = n
		return nil
	})
	return primary, err
}

// WaitHealthy waits up to timeout until the setup is healthy: every
// running sentinel names the same primary, a running data node, and sees
// it up with no failover in progress; every other running data node
// replicates it with the link up, and every running sentinel sees it so
// (with an INFO from it fresh enough to choose it in a failover); and
// every running sentinel knows every other running one, connected. Killed
// processes are ignored.
func (s *Sentinel) WaitHealthy(timeout time.Duration) error {
	if s.isStopped() {
		return ErrStopped
	}
	return s.pollLive(time.Now().Add(timeout), "sentinel setup not healthy", s.healthy)
}

// masterFields returns SENTINEL MASTER as a map.
func (s *Sentinel) masterFields(sn *Server) (map[string]string, error) {
	r, err := sn.do(toolIOTimeout, "SENTINEL", "MASTER", s.opts.MasterName)
	if err != nil {
		return nil, fmt.Errorf("%s: SENTINEL MASTER: %w", sn.label(), err)
	}
	m, err := fields(r)
	if err != nil {
		return nil, fmt.Errorf("%s: SENTINEL MASTER: %w", sn.label(), err)
	}
	return m, nil
}

// sentinelView is what one sentinel says, from one round trip.
type sentinelView struct {
	sn        *Server
	master    map[string]string
	replicas  map[string]map[string]string // by "ip:port"
	sentinels map[string]map[string]string // by "ip:port"
	tilt      bool                         // in TILT mode: it will not fail over
}

func (s *Sentinel) observe(sn *Server) (*sentinelView, error) {
	name := s.opts.MasterName
	replies, err := sn.pipeline([][]string{
		{"SENTINEL", "MASTER", name},
		{"SENTINEL", "REPLICAS", name},
		{"SENTINEL", "SENTINELS", name},
		{"INFO", "sentinel"},
	}, toolIOTimeout)
	if err != nil {
		return nil, err
	}
	for _, r := range replies {
		if err := replyErr(r); err != nil {
			return nil, fmt.Errorf("%s: %w", sn.label(), err)
		}
	}
	info, _ := replies[3].(string)
	v := &sentinelView{sn: sn, tilt: infoField(info, "sentinel_tilt") == "1"}
	if v.master, err = fields(replies[0]); err != nil {
		return nil, fmt.Errorf("%s: SENTINEL MASTER: %w", sn.label(), err)
	}
	list := func(r any) (map[string]map[string]string, error) {
		arr, _ := r.([]any)
		out := make(map[string]map[string]string, len(arr))
		for _, e := range arr {
			f, err := fields(e)
			if err != nil {
				return nil, err
			}
			out[net.JoinHostPort(f["ip"], f["port"])] = f
		}
		return out, nil
	}
	if v.replicas, err = list(replies[1]); err != nil {
		return nil, fmt.Errorf("%s: SENTINEL REPLICAS: %w", sn.label(), err)
	}
	if v.sentinels, err = list(replies[2]); err != nil {
		return nil, fmt.Errorf("%s: SENTINEL SENTINELS: %w", sn.label(), err)
	}
	return v, nil
}

// healthy checks everything WaitHealthy promises.
func (s *Sentinel) healthy() error {
	var views []*sentinelView
	for _, sn := range s.sentinels {
		if sn.Pid() == 0 {
			continue
		}
		v, err := s.observe(sn)
		if err != nil {
			return err
		}
		views = append(views, v)
	}
	if len(views) == 0 {
		return errors.New("no sentinel is running")
	}
	m := views[0].master
	addr := net.JoinHostPort(m["ip"], m["port"])
	p := s.node(addr)
	if p == nil || p.Pid() == 0 {
		return fmt.Errorf("%s names %s as primary, not a running data node", views[0].sn.label(), addr)
	}
	var replicas []*Server
	for _, n := range s.nodes {
		if n != p && n.Pid() != 0 {
			replicas = append(replicas, n)
		}
	}
	if err := s.replicating(p, replicas); err != nil {
		return err
	}
	for _, v := range views {
		name := v.sn.label()
		if a := net.JoinHostPort(v.master["ip"], v.master["port"]); a != addr {
			return fmt.Errorf("%s names %s as primary, %s names %s", name, a, views[0].sn.label(), addr)
		}
		if v.tilt {
			return fmt.Errorf("%s is in TILT mode (its timer ran late: an overloaded machine)", name)
		}
		if f := v.master["flags"]; f != "master" {
			return fmt.Errorf("%s: primary flags %s", name, f)
		}
		for _, r := range replicas {
			f, ok := v.replicas[r.Addr()]
			switch {
			case !ok:
				return fmt.Errorf("%s does not know replica %s", name, r.Addr())
			case f["flags"] != "slave":
				return fmt.Errorf("%s: replica %s flags %s", name, r.Addr(), f["flags"])
			case f["master-link-status"] != "ok":
				return fmt.Errorf("%s: replica %s master-link-status %s", name, r.Addr(), f["master-link-status"])
			case net.JoinHostPort(f["master-host"], f["master-port"]) != addr:
				return fmt.Errorf("%s: replica %s follows %s:%s", name, r.Addr(), f["master-host"], f["master-port"])
			}
			if ms, err := strconv.ParseInt(f["info-refresh"], 10, 64); err != nil || time.Duration(ms)*time.Millisecond >= sentinelInfoFresh {
				return fmt.Errorf("%s: replica %s info-refresh %s ms", name, r.Addr(), f["info-refresh"])
			}
		}
		for _, other := range s.sentinels {
			if other == v.sn || other.Pid() == 0 {
				continue
			}
			f, ok := v.sentinels[other.Addr()]
			switch {
			case !ok:
				return fmt.Errorf("%s does not know sentinel %s", name, other.Addr())
			case f["flags"] != "sentinel":
				return fmt.Errorf("%s: sentinel %s flags %s", name, other.Addr(), f["flags"])
			}
		}
	}
	return nil
}
