package engine

// Goroutine identity, for the Close of a stream consumer or a
// subscription called from its own handler: such a Close must not wait
// for the goroutine that runs the handler, which is the caller itself.

import (
	"bytes"
	"runtime"
	"strconv"
)

// goid returns the id of the calling goroutine, from the first line of
// its traceback ("goroutine 123 [running]:"); 0 if it cannot be read
// (never a live goroutine's id). Go has no API for it. It costs a
// traceback of the whole stack (runtime.Stack walks it all even when
// only 64 bytes are kept: about 2 µs on a shallow stack, more on a deep
// one), so it is only called on rare paths: when a consumer's loop
// starts, in Close, and for the rare subscription events (see
// Subscription.deliver).
func goid() int64 {
	var buf [64]byte
	return parseGoid(buf[:runtime.Stack(buf[:], false)])
}

// parseGoid reads the id from the first line of a goroutine's traceback.
func parseGoid(b []byte) int64 {
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
