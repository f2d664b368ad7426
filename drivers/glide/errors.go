package glide

import (
	"context"
	"errors"
	"fmt"

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
var ErrInvalidPtrCheck = errors.New("glide: start the process with GODEBUG=invalidptr=0: " +
	"glide 2.5.3's Go binding leaves invalid pointers on the stack for empty strings and arrays in replies, " +
	"and with the check on the Go runtime aborts the process when it finds one")

// invalidPtrOn reports whether the runtime's invalidptr check is on
// (a variable for the tests).
var invalidPtrOn = invalidptr.On

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
	var ce *glide.ClosingError
	if closed || errors.As(err, &ce) {
		return fmt.Errorf("%w: %w", drivers.ErrClosed, err)
	}
	return err
}
