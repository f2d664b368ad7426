package engine

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/valkey-io/valkey-go"

	"github.com/vactor-io/vactor/actors"
	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/drivers"
	_ "github.com/vactor-io/vactor/drivers/valkeygo" // the default driver
	"github.com/vactor-io/vactor/mailbox"
	"github.com/vactor-io/vactor/policies"
)

// Engine is a Valkey client: every command method returns a future at once
// and the engine's connection actors send whatever is queued as one
// pipeline per round trip.
//
// An Engine is safe for concurrent use by any number of goroutines. Create
// it with New and release it with Close.
type Engine struct {
	cfg    config.Config
	closed atomic.Bool

	system     *actor.ActorSystem
	supervisor *actors.Supervisor
	supPID     *actor.PID
	conns      []*actors.ConnState
	nodes      []*actors.Node
	b          valkey.Builder
}

// New validates cfg, dials every connection the engine needs (PoolSize
// connections to the configured node), and starts the actors. It fails,
// within cfg.DialTimeout or ctx's deadline, when no server answers.
//
// Standalone mode uses the first of cfg.Addresses(); ClusterMode is not
// supported yet and is reported as an error.
func New(ctx context.Context, cfg config.Config) (*Engine, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("vactor: %w", err)
	}
	if cfg.ClusterMode {
		return nil, fmt.Errorf("vactor: cluster mode is not supported yet: %w", config.ErrInvalidConfig)
	}
	drv, err := drivers.Lookup(cfg.Driver)
	if err != nil {
		return nil, fmt.Errorf("vactor: %w", err)
	}
	tlsCfg, err := tlsConfig(cfg.TLS)
	if err != nil {
		return nil, fmt.Errorf("vactor: %w", err)
	}
	addr := cfg.Addresses()[0]
	opts := drivers.Options{
		Addr:         addr,
		Username:     cfg.Username,
		Password:     cfg.Password,
		DB:           cfg.DB,
		ClientName:   cfg.ClientName,
		DialTimeout:  cfg.DialTimeout,
		ReadTimeout:  cfg.ReadTimeout,
		WriteTimeout: cfg.WriteTimeout,
		TLS:          tlsCfg,
		MaxPipeline:  cfg.MaxBatchSize,
	}
	dialCtx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	defer cancel()

	e := &Engine{cfg: cfg}
	policy := mailbox.Block
	if cfg.Backpressure == config.BackpressureReject {
		policy = mailbox.Reject
	}
	node := &actors.Node{
		Addr:        addr,
		DialTimeout: cfg.DialTimeout,
		Dial:        func(ctx context.Context) (drivers.Conn, error) { return drv.Dial(ctx, opts) },
	}
	node.Breaker = policies.NewBreaker(policies.BreakerOptions{
		Threshold:   uint(cfg.CircuitBreakerThreshold),
		OpenTimeout: cfg.CircuitBreakerOpenTimeout,
		FailureRate: cfg.CircuitBreakerFailureRate,
		Period:      cfg.CircuitBreakerPeriod,
		OnStateChanged: func(_, to circuitbreaker.State) {
			node.SetOpen(to != circuitbreaker.ClosedState)
			if to == circuitbreaker.OpenState {
				// Nothing queued for the node will be sent soon: fail it now.
				for _, c := range e.conns {
					if c.Node == node {
						c.FailHeld(ErrCircuitOpen)
					}
				}
			}
		},
	})
	e.nodes = append(e.nodes, node)
	retry := &actors.Policy{
		MaxRetries:  cfg.MaxRetries,
		Backoff:     policies.Backoff{Min: cfg.MinRetryBackoff, Max: cfg.MaxRetryBackoff},
		Budget:      policies.NewBudget(0.1, 100),
		ReadTimeout: max(cfg.ReadTimeout, cfg.WriteTimeout),
	}
	for range cfg.PoolSize {
		conn, err := drv.Dial(dialCtx, opts)
		if err != nil {
			e.closeDrivers()
			return nil, fmt.Errorf("vactor: connect to %s: %w", addr, err)
		}
		e.conns = append(e.conns, &actors.ConnState{
			Addr:     addr,
			Driver:   conn,
			CloseErr: ErrClosed,
			Node:     node,
			Policy:   retry,
			Mailbox: mailbox.New(mailbox.Options{
				Capacity: cfg.MailboxCapacity,
				Policy:   policy,
				MaxBatch: cfg.MaxBatchSize,
			}),
		})
	}
	e.b = e.conns[0].Driver.B()

	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	e.system = actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return logger }))
	e.supervisor = actors.NewSupervisor(e.conns)
	if e.supPID, err = e.supervisor.Spawn(e.system); err != nil {
		e.closeDrivers()
		e.system.Shutdown()
		return nil, fmt.Errorf("vactor: %w", err)
	}
	<-e.supervisor.Ready()
	return e, nil
}

// Config returns the engine's configuration (a copy).
func (e *Engine) Config() config.Config { return e.cfg }

// pick returns the connection actor for a routing key: commands with the
// same key always go through the same actor, which keeps their order.
func (e *Engine) pick(route string) *actors.ConnState {
	if len(e.conns) == 1 {
		return e.conns[0]
	}
	// FNV-1a: cheap, allocation-free, stable.
	h := uint32(2166136261)
	for i := 0; i < len(route); i++ {
		h ^= uint32(route[i])
		h *= 16777619
	}
	return e.conns[h%uint32(len(e.conns))]
}

// Close stops the engine. It stops accepting commands (they fail with
// ErrClosed), fails every command still queued with ErrClosed, lets the
// pipelines already written finish for up to Config.DrainTimeout (then
// closes the connections, failing what is still in flight), and stops every
// actor and goroutine the engine started. Every future the engine returned
// is complete when Close returns. Calling Close again returns ErrClosed.
func (e *Engine) Close() error {
	if !e.closed.CompareAndSwap(false, true) {
		return ErrClosed
	}
	for _, c := range e.conns {
		c.Mailbox.Close(ErrClosed)
	}
	e.system.Root.Stop(e.supPID)
	drain := time.NewTimer(e.cfg.DrainTimeout)
	defer drain.Stop()
	var err error
	select {
	case <-e.supervisor.Stopped():
	case <-drain.C:
		// Written commands did not finish in time: closing the connections
		// fails them and unblocks the actors.
		e.closeDrivers()
		select {
		case <-e.supervisor.Stopped():
		case <-time.After(stuckActorWait):
			// An actor is stuck outside the driver (a bug): its mailbox is
			// closed, so every future is complete; give up on it.
		}
		err = fmt.Errorf("vactor: close: in-flight commands did not finish within the drain timeout (%s) and were failed", e.cfg.DrainTimeout)
	}
	e.closeDrivers()
	e.system.Shutdown()
	return err
}

// stuckActorWait bounds Close's wait for actors after the drivers closed.
const stuckActorWait = 5 * time.Second

func (e *Engine) closeDrivers() {
	for _, c := range e.conns {
		c.CloseDriver()
	}
}

// tlsConfig builds the *tls.Config for t, or nil when TLS is off.
func tlsConfig(t config.TLSConfig) (*tls.Config, error) {
	if !t.Enabled {
		return nil, nil
	}
	c := &tls.Config{
		ServerName:         t.ServerName,
		InsecureSkipVerify: t.InsecureSkipVerify, //nolint:gosec // the user's explicit choice
		MinVersion:         tls.VersionTLS12,
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls: load client certificate: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls: read CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errors.New("tls: CA file " + t.CAFile + " holds no PEM certificate")
		}
		c.RootCAs = pool
	}
	return c, nil
}
