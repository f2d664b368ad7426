package engine

import (
	"context"
	"testing"
	"unsafe"

	"github.com/vactor-io/vactor/futures"
)

// TestRequestSizeClass pins the size of the plain request (standalone, no
// command hooks), and of the hooked one: every GET and SET allocates one, so a field added to it
// moves them into the next size class (112 B for a SET, 128 for a GET;
// the Go allocator's classes around them are 96, 112, 128 and 144).
// Fields that only cluster, sentinel or hooked requests use belong in
// requestExt.
func TestRequestSizeClass(t *testing.T) {
	if n := unsafe.Sizeof(request[struct{}]{}); n > 112 {
		t.Errorf("request[struct{}] (SET) is %d B, want <= 112", n)
	}
	if n := unsafe.Sizeof(request[string]{}); n > 128 {
		t.Errorf("request[string] (GET) is %d B, want <= 128", n)
	}
	// With command hooks, the request, its requestExt and its observation
	// are one allocation: 192 B for a SET and 208 for a GET (the classes
	// around them are 176, 192, 208, 224 and 240). The pipeline's details
	// are shared through actors.Sent, not copied into each request.
	if n := unsafe.Sizeof(observedRequest[struct{}]{}); n > 192 {
		t.Errorf("observedRequest[struct{}] (hooked SET) is %d B, want <= 192", n)
	}
	if n := unsafe.Sizeof(observedRequest[string]{}); n > 208 {
		t.Errorf("observedRequest[string] (hooked GET) is %d B, want <= 208", n)
	}
}

// TestRequestExtModes checks that the requests of the modes that use
// requestExt have it, in their own allocation, and plain ones do not.
func TestRequestExtModes(t *testing.T) {
	ctx := context.Background()
	e := &Engine{&engineState{}} // b: the zero Builder, fine for commands built without Keys
	cmd := e.b.Arbitrary("GET", "k").Build()
	if r := newRequest(e, ctx, cmd, decodeString); r.x != nil || r.Resendable() || r.observation() != nil {
		t.Fatalf("plain request: x = %v, want nil", r.x)
	}
	r := newExtRequest(e, ctx, e.b.Arbitrary("GET", "k").Build(), decodeString)
	if r.x == nil || r.observation() != nil || r.Resendable() {
		t.Fatalf("ext request: x = %v, want set, without observation or parts", r.x)
	}
	s := newSlotRequest(e, ctx, e.b.Arbitrary("GET", "k").Build(), decodeString)
	if s.x == nil || !s.Resendable() || s.x.ext.n != 2 {
		t.Fatalf("slot request: x = %+v, want its parts (2)", s.x)
	}
	s.Renew()
	c := s.Cmd()
	if got := c.Commands(); len(got) != 2 || got[0] != "GET" || got[1] != "k" {
		t.Fatalf("renewed slot request = %q, want [GET k]", got)
	}
	long := e.b.Arbitrary("SET", "k", "v", "EX", "10", "NX").Build() // 6 parts: pinned
	p := newSlotRequest(e, ctx, long, decodeReply)
	if p.x == nil || p.x.ext != pinnedCmd || !p.Resendable() {
		t.Fatalf("long slot request: x = %+v, want pinned", p.x)
	}
	var f *futures.Future[string] = r.promise.Future()
	r.Fail(context.Canceled)
	if _, err := f.Await(ctx); err != context.Canceled {
		t.Fatalf("Fail: err = %v", err)
	}
}
