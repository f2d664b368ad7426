package glide

import (
	"context"
	"errors"
	"fmt"

	glide "github.com/valkey-io/valkey-glide/go/v2"

	"github.com/vactor-io/vactor/drivers"
)

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
