package driverstest

import (
	"context"

	"github.com/vactor-io/vactor/drivers"
)

// NeutralOnly returns a driver whose Conns are d's with only the neutral
// interface showing (Exec, Close, and PubSub when d's Conns have it): the
// engine and the suite then run them through drivers.Fast's adapter. It
// reports d's capabilities. For testing the adapter with a driver that has
// a fast path, such as valkey-go's.
func NeutralOnly(d drivers.Driver) drivers.Driver { return neutralDriver{d} }

type neutralDriver struct{ d drivers.Driver }

func (n neutralDriver) Dial(ctx context.Context, o drivers.Options) (drivers.Conn, error) {
	c, err := n.d.Dial(ctx, o)
	if err != nil {
		return nil, err
	}
	if ps, ok := c.(drivers.PubSub); ok {
		return neutralPubSub{neutralConn{c}, ps}, nil
	}
	return neutralConn{c}, nil
}

func (n neutralDriver) Capabilities() drivers.Capabilities { return drivers.CapabilitiesOf(n.d) }

type neutralConn struct{ c drivers.Conn }

func (n neutralConn) Exec(ctx context.Context, cmds []drivers.Command, out []drivers.Result) {
	n.c.Exec(ctx, cmds, out)
}

func (n neutralConn) Close() error { return n.c.Close() }

type neutralPubSub struct {
	neutralConn
	ps drivers.PubSub
}

func (n neutralPubSub) Listen(h drivers.PubSubHooks) <-chan error { return n.ps.Listen(h) }
