package engine_test

import (
	"errors"
	"testing"

	"github.com/vactor-io/vactor/engine"
)

// A BatchWriter or a Subscription closed while the engine runs says so:
// its error matches ErrClosed and names the handle. It read "vactor:
// engine closed", with the engine still running.
func TestClosedHandleErrorsNameTheHandle(t *testing.T) {
	eng, _ := newEngine(t)
	ctx := ctxT(t)
	want := func(what string, err error, text string) {
		t.Helper()
		if !errors.Is(err, engine.ErrClosed) || err.Error() != text {
			t.Errorf("%s: %v, want %q matching ErrClosed", what, err, text)
		}
	}
	w, err := eng.NewBatchWriter(engine.BatchWriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	want("Write after Close", w.Set(ctx, "k", "v", 0), "vactor: batch writer closed")
	want("second writer Close", w.Close(ctx), "vactor: batch writer closed")

	sub, err := eng.Subscribe(ctx, "closed:ch")
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	want("second subscription Close", sub.Close(), "vactor: subscription closed")
	want("Subscribe on a closed subscription", sub.Subscribe(ctx, "closed:other"), "vactor: subscription closed")
	// The engine still runs.
	if err := eng.Set(ctx, "k", "v", 0).Err(ctx); err != nil {
		t.Fatalf("engine after the handles closed: %v", err)
	}
}
