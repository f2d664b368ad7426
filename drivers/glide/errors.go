package glide

import (
	"context"
	"errors"
	"fmt"
	"strings"

	glide "github.com/valkey-io/valkey-glide/go/v2"

	"github.com/vactor-io/vactor/drivers"
	"github.com/vactor-io/vactor/drivers/glide/internal/invalidptr"
)

// ErrInvalidPtrCheck fails Dial (and so engine.New, inside its
// *engine.ConnectError) when the process runs with the Go runtime's
// invalid-pointer check on, which is the default: start the program with
// GODEBUG=invalidptr=0 in its environment (the runtime reads it at
// startup only, and takes no //go:debug line for it).
//
// Why: glide 2.5.3's Go binding copies the C structs of each reply onto
// the goroutine's stack, and Rust hands an empty string or array over
// with the pointer 0x1 (the dangling pointer of an empty buffer). When
// the stack moves while such a copy is live (it grows, or the garbage
// collector shrinks it), the runtime finds 0x1 in a pointer slot and
// aborts the process ("fatal error: invalid pointer found on stack"; not
// a panic, nothing recovers it). Any reply holding an empty string or
// array (GET of "", an empty LRANGE, MGET of an empty value) can do it,
// at random. With invalidptr=0 the runtime leaves such pointers alone;
// glide never follows them (their length is 0).
var ErrInvalidPtrCheck = errors.New("glide: start the process with GODEBUG=invalidptr=0 (or call glide.Reexec() first thing in main): " +
	"glide 2.5.3's Go binding leaves invalid pointers on the stack for empty strings and arrays in replies, " +
	"and with the check on the Go runtime aborts the process when it finds one")

// invalidPtrOn reports whether the runtime's invalidptr check is on
// (a variable for the tests).
var invalidPtrOn = invalidptr.On

// Reexec makes a program that cannot set GODEBUG in its environment
// start over with it: when the runtime's invalid-pointer check is on
// (ErrInvalidPtrCheck), it replaces the process with a new run of its own
// executable, same arguments and environment, with invalidptr=0 added to
// GODEBUG; when the check is off it returns nil at once. It returns an
// error only when the exec failed (os.Executable unavailable, or a
// platform without exec). Call it first thing in main, before anything
// whose effect a restart would repeat:
//
//	func main() {
//		if err := glide.Reexec(); err != nil {
//			log.Fatal(err)
//		}
//		...
//	}
func Reexec() error { return invalidptr.Reexec() }

// errConversion is the error of a batch whose replies glide's Go binding
// failed to convert (it panicked; the panic is recovered).
var errConversion = errors.New("glide: reply conversion failed")

// errEmptyCommand fails a command without a name; the rest of its
// pipeline is sent.
var errEmptyCommand = errors.New("glide: empty command")

// transportError marks glide's errors with the drivers sentinels: after
// Close (or glide's ClosingError) ErrClosed; ctx's error as it is.
func (c *Conn) transportError(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil && (errors.Is(err, cerr) || err == cerr) {
		return err
	}
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	err = oneLine(err)
	var ce *glide.ClosingError
	if closed || errors.As(err, &ce) {
		return fmt.Errorf("%w: %w", drivers.ErrClosed, err)
	}
	return err
}

// refusals are the error codes with which a server refuses a connection's
// handshake (AUTH, HELLO).
var refusals = map[string]bool{"WRONGPASS": true, "NOAUTH": true, "NOPERM": true}

// refusedError is glide's error of a handshake the server refused, with
// the server's error reply beside it.
type refusedError struct {
	err   error // glide's
	reply error // the server's reply, as valkey-go's *ValkeyError
}

func (e *refusedError) Error() string   { return strings.TrimSpace(e.err.Error()) }
func (e *refusedError) Unwrap() []error { return []error{e.err, e.reply} }

// trimmedError is a glide error whose text ends in a line break (glide's
// handshake errors do: "...user is disabled.\n"), without it: an error
// of the engine is one line, whatever joins it (qa-BB BB-2: New's error
// and a consumer's LastError ended in "\n", the breaker's in "; ").
type trimmedError struct{ err error }

func (e *trimmedError) Error() string { return strings.TrimSpace(e.err.Error()) }
func (e *trimmedError) Unwrap() error { return e.err }

// oneLine returns err, or err without the white space its text ends in.
func oneLine(err error) error {
	if err == nil {
		return nil
	}
	if text := err.Error(); strings.TrimSpace(text) != text {
		return &trimmedError{err}
	}
	return err
}

// handshakeError adds to glide's error of a connection the server
// refused in the handshake ("Received error for address `host:port`:
// WRONGPASS: invalid username-password pair ...") the server's error
// reply as valkey-go's *ValkeyError, the error the engine reads a refused
// handshake from (engine.ConnectError's Reason, and a *engine.ServerError
// reachable by errors.As), as with the valkey-go driver. Other errors are
// returned as they are.
func handshakeError(err error) error {
	text := strings.TrimSpace(err.Error())
	if _, rest, ok := strings.Cut(text, "`: "); ok {
		text = rest
	}
	reply, ok := serverText(text)
	code, _, _ := strings.Cut(reply, " ")
	if !ok || !refusals[code] {
		return oneLine(err)
	}
	return &refusedError{err: err, reply: drivers.ToValkey([]drivers.Result{{Value: drivers.Error(reply)}})[0].Error()}
}
