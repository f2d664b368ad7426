// Package goid reads the calling goroutine's id, for the rare paths that
// must tell whether they run on a goroutine they would otherwise wait
// for: the engine's Close called from a stream consumer's handler, a
// subscription's Handler, a batch writer's OnError or a hook, a batch
// writer's Close or Flush from its OnError (see engine.Engine.Close,
// engine.BatchWriter.Close and hookbus.Bus.CloseFrom).
package goid

import (
	"bytes"
	"runtime"
	"strconv"
)

// Get returns the id of the calling goroutine, from the first line of
// its traceback ("goroutine 123 [running]:"); 0 if it cannot be read
// (never a live goroutine's id). Go has no API for it. It costs a
// traceback of the whole stack (runtime.Stack walks it all even when
// only 64 bytes are kept: about 2 µs on a shallow stack, more on a deep
// one), so it is only called on rare paths, never per command or per
// event.
func Get() int64 {
	var buf [64]byte
	return parse(buf[:runtime.Stack(buf[:], false)])
}

// parse reads the id from the first line of a goroutine's traceback.
func parse(b []byte) int64 {
	const prefix = "goroutine "
	if !bytes.HasPrefix(b, []byte(prefix)) {
		return 0
	}
	b = b[len(prefix):]
	if i := bytes.IndexByte(b, ' '); i >= 0 {
		b = b[:i]
	}
	id, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil || id <= 0 {
		return 0
	}
	return id
}
