package engine

import (
	"context"
	"sync"

	"github.com/vactor-io/vactor/drivers"
)

// service is something long-lived the engine started for a caller (a
// subscriber, a stream consumer, a batch writer, a WATCH connection):
// Close stops it before the connection actors, so its futures complete
// and its goroutines end before Close returns.
type service interface {
	// stop ends the service and waits for it, failing what it still holds
	// with err. It must be safe to call more than once.
	stop(err error)
}

// services tracks the engine's live services.
type services struct {
	mu   sync.Mutex
	set  map[service]struct{}
	done bool
	// stopping holds the services Close is stopping (set, taken by
	// stopServices), for inHandler.
	stopping map[service]struct{}
}

// track registers s; it returns ErrClosed (and does not register s) when
// the engine is closing. untrack(s) removes it when s ends on its own.
func (e *Engine) track(s service) error {
	e.svc.mu.Lock()
	defer e.svc.mu.Unlock()
	if e.svc.done || e.closed.Load() {
		return ErrClosed
	}
	if e.svc.set == nil {
		e.svc.set = map[service]struct{}{}
	}
	e.svc.set[s] = struct{}{}
	return nil
}

func (e *Engine) untrack(s service) {
	e.svc.mu.Lock()
	delete(e.svc.set, s)
	e.svc.mu.Unlock()
}

// handlerService is a service that runs a caller's handler (a stream
// consumer, a subscription with a Handler, a batch writer's OnError),
// which may call the engine's Close.
type handlerService interface {
	service
	// stopFrom is stop called by the goroutine whose id is caller (0:
	// unknown). When that goroutine is running the service's handler,
	// stopFrom ends the service without waiting for it (which would wait
	// for the caller itself): nothing more is handled, and the rest of the
	// stop (its connection closed, its goroutines gone) happens once the
	// handler returns.
	stopFrom(err error, caller int64)
	// runsHandler reports whether goroutine g is running the service's
	// handler (only a handler's own goroutine can see true).
	runsHandler(g int64) bool
}

// inHandler reports whether goroutine g (0: unknown) is running the
// handler of one of the engine's services, live or being stopped by
// Close: a Close it calls while another runs must not wait for that one,
// which waits for the handler.
func (e *Engine) inHandler(g int64) bool {
	if g == 0 {
		return false
	}
	e.svc.mu.Lock()
	defer e.svc.mu.Unlock()
	for _, set := range [2]map[service]struct{}{e.svc.set, e.svc.stopping} {
		for s := range set {
			if h, ok := s.(handlerService); ok && h.runsHandler(g) {
				return true
			}
		}
	}
	return false
}

// stopServices stops every tracked service (Close calls it first).
// closer is the id of the goroutine that called the engine's Close (0:
// unknown): when it is a handler of one of them (a consumer's handler, a
// subscription's Handler or a batch writer's OnError), stopServices does
// not wait for that service:
// see handlerService. The others it waits for as always.
func (e *Engine) stopServices(closer int64) {
	e.svc.mu.Lock()
	e.svc.done = true
	set := e.svc.set
	e.svc.set, e.svc.stopping = nil, set
	e.svc.mu.Unlock()
	var wg sync.WaitGroup
	for s := range set {
		h, ok := s.(handlerService)
		if !ok {
			wg.Go(func() { s.stop(ErrClosed) })
			continue
		}
		wg.Go(func() { h.stopFrom(ErrClosed, closer) })
	}
	wg.Wait()
}

// dial opens a dedicated connection to addr with the engine's options
// (auth, DB, TLS, timeouts): for work that must not share the pipelined
// connections (blocking reads, subscriptions, WATCH). The caller owns and
// closes it.
func (e *Engine) dial(ctx context.Context, addr string) (drivers.ValkeyConn, error) {
	return e.dialConn(ctx, addr, false, false)
}

// dialConn is dial, with the driver's own idle PINGs off when noIdlePing
// (drivers.Options.NoIdlePing), for a caller that keeps connection state
// across calls when keepsState (drivers.Options.KeepsState: the Tx/Watch
// and Dedicated pools).
func (e *Engine) dialConn(ctx context.Context, addr string, noIdlePing, keepsState bool) (drivers.ValkeyConn, error) {
	if e.closed.Load() {
		return nil, ErrClosed
	}
	if noIdlePing {
		if err := e.need(drivers.Capabilities{NoIdlePing: true}, "Dedicated (a connection that keeps MULTI state across calls)"); err != nil {
			return nil, err
		}
	}
	opts := *e.opts
	opts.Addr = addr
	opts.NoIdlePing = noIdlePing
	opts.KeepsState = keepsState
	conn, err := e.hookedDial(ctx, addr, true, false, func(ctx context.Context) (drivers.ValkeyConn, error) {
		return e.open(ctx, opts)
	})
	if err != nil {
		return nil, e.connectError(addr, err)
	}
	if e.sn != nil {
		// Closed when the primary changes, so that its owner reconnects.
		conn = e.sn.track(conn, addr)
	}
	return conn, nil
}

// open dials a connection with the engine's driver and returns its fast
// path (drivers.Fast): the connection itself for the valkey-go driver, an
// adapter for drivers that implement the neutral interface only.
func (e *Engine) open(ctx context.Context, opts drivers.Options) (drivers.ValkeyConn, error) {
	conn, err := e.drv.Dial(ctx, opts)
	if err != nil {
		return nil, err
	}
	fast, err := drivers.Fast(conn)
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	return fast, nil
}

// addrOf returns the address of the node that serves key: the configured
// node in standalone mode, the primary owning key's slot in cluster mode,
// the current primary in sentinel mode.
func (e *Engine) addrOf(key string) (string, error) {
	if e.sn != nil {
		return e.sn.primary(), nil
	}
	if e.cl == nil {
		return e.first[0].Addr, nil
	}
	return e.cl.Owner(e.slotOf(key))
}
