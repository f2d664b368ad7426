package futures

import "fmt"

// Format prints the future's state without reading it racily: fmt's
// reflection over the fields of a pending future would race with its
// completion and print the engine's request behind it (command arguments
// included). A pending future prints as "Future(pending)", a completed one
// as "Future(<value>)" (the value in the verb given, so %q quotes a
// string), a failed one as "Future(error: <err>)", a nil one as
// "Future(nil)".
func (f *Future[T]) Format(s fmt.State, verb rune) {
	if f == nil {
		_, _ = fmt.Fprint(s, "Future(nil)")
		return
	}
	v, err, ok := f.Result()
	switch {
	case !ok:
		_, _ = fmt.Fprint(s, "Future(pending)")
	case err != nil:
		_, _ = fmt.Fprintf(s, "Future(error: %v)", err)
	default:
		_, _ = fmt.Fprint(s, "Future(")
		_, _ = fmt.Fprintf(s, fmt.FormatString(s, verb), v)
		_, _ = fmt.Fprint(s, ")")
	}
}

// Format prints the promise as its future does (see Future.Format).
func (p *Promise[T]) Format(s fmt.State, verb rune) { (*Future[T])(p).Format(s, verb) }
