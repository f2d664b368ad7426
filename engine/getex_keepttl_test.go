package engine_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/vactor-io/vactor/engine"
)

// GetEx with KeepTTL fails with ErrInvalidArgument and says why: the
// error read "GETEX with negative ttl -1ns", KeepTTL's value, which names
// neither KeepTTL nor what to pass instead.
func TestGetExKeepTTLError(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	_, err := eng.GetEx(ctx, "k", engine.KeepTTL).Await(ctx)
	if !errors.Is(err, engine.ErrInvalidArgument) || !strings.Contains(err.Error(), "KeepTTL") {
		t.Fatalf("GetEx(KeepTTL) err = %v; want ErrInvalidArgument naming KeepTTL", err)
	}
}
