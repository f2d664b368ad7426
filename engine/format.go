package engine

import (
	"fmt"
	"strings"
)

// What fmt prints of the engine and of the objects that hold it: the type,
// the engine's mode and addresses, nothing else. fmt prints a struct's
// fields without calling their methods, so the engine's configuration and
// its drivers' options (the password in both) would be printed whole, and
// the fields other goroutines change read without their locks. A struct
// of the program's that holds an *Engine in an unexported field, printed
// with a verb fmt has no use for (%s of a pointer), has fmt print the
// Engine's fields without its methods: the Engine's one field is a
// pointer to its state, so that prints an address, and fmt reads nothing
// of the state (a concurrent map read would be fatal).

// Format implements fmt.Formatter: every verb prints
// "vactor.Engine(<mode> <addresses>)".
func (e *Engine) Format(f fmt.State, _ rune) { writeObject(f, "Engine", e) }

// Format implements fmt.Formatter (see Engine.Format).
func (c *syncClient) Format(f fmt.State, _ rune) { writeObject(f, "Client", (*Engine)(c)) }

// Format implements fmt.Formatter (see Engine.Format).
func (t *Tx) Format(f fmt.State, _ rune) {
	writeObject(f, "Tx", engineOf(t, func(t *Tx) *Engine { return t.e }))
}

// Format implements fmt.Formatter (see Engine.Format).
func (p *Pipeline) Format(f fmt.State, _ rune) {
	writeObject(f, "Pipeline", engineOf(p, func(p *Pipeline) *Engine { return p.e }))
}

// Format implements fmt.Formatter (see Engine.Format).
func (s *Subscription) Format(f fmt.State, _ rune) {
	writeObject(f, "Subscription", engineOf(s, func(s *Subscription) *Engine {
		return engineOf(s.subscriptionState, func(st *subscriptionState) *Engine { return st.e })
	}))
}

// Format implements fmt.Formatter (see Engine.Format).
func (w *BatchWriter) Format(f fmt.State, _ rune) {
	writeObject(f, "BatchWriter", engineOf(w, func(w *BatchWriter) *Engine {
		return engineOf(w.writerState, func(st *writerState) *Engine { return st.e })
	}))
}

// Format implements fmt.Formatter (see Engine.Format).
func (c *Consumer) Format(f fmt.State, _ rune) {
	writeObject(f, "Consumer", engineOf(c, func(c *Consumer) *Engine {
		return engineOf(c.consumerState, func(st *consumerState) *Engine { return st.e })
	}))
}

// Format implements fmt.Formatter (see Engine.Format).
func (c *DedicatedConn) Format(f fmt.State, _ rune) {
	writeObject(f, "DedicatedConn", engineOf(c, func(c *DedicatedConn) *Engine { return c.e }))
}

// engineOf returns the engine v holds (e(v)), nil for a nil v.
func engineOf[T any](v *T, e func(*T) *Engine) *Engine {
	if v == nil {
		return nil
	}
	return e(v)
}

// writeObject writes "vactor.<typ>(<mode> <addresses>)" for the engine e.
func writeObject(f fmt.State, typ string, e *Engine) {
	var b strings.Builder
	b.WriteString("vactor.")
	b.WriteString(typ)
	b.WriteByte('(')
	switch {
	case e == nil:
		b.WriteString("nil engine")
	case e.engineState == nil || e.cfg == nil:
		b.WriteString("engine not created with New")
	case e.cfg.SentinelMode:
		fmt.Fprintf(&b, "sentinel %s %s", e.cfg.SentinelMasterName, strings.Join(e.cfg.SentinelAddrs, ","))
	case e.cfg.ClusterMode:
		fmt.Fprintf(&b, "cluster %s", strings.Join(e.cfg.Addresses(), ","))
	default:
		fmt.Fprintf(&b, "standalone %s", strings.Join(e.cfg.Addresses(), ","))
	}
	b.WriteByte(')')
	_, _ = f.Write([]byte(b.String()))
}
