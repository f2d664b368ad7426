package drivers_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vactor-io/vactor/drivers"
	"github.com/vactor-io/vactor/drivers/valkeygo"
)

// The registry is global and cannot be reset from outside the package, and
// tests may run several times in one process (-count): every name a test
// registers is made unique with this counter.
var seq atomic.Int64

func uniqueName(prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, seq.Add(1))
}

// fakeDriver is a drivers.Driver that dials nothing.
type fakeDriver struct{ id string }

func (*fakeDriver) Dial(context.Context, drivers.Options) (drivers.Conn, error) {
	return nil, errors.New("fakeDriver: no connections here")
}

// mustPanic calls f and returns the panic value; the test fails if f does
// not panic.
func mustPanic(t *testing.T, what string, f func()) (v any) {
	t.Helper()
	defer func() {
		v = recover()
		if v == nil {
			t.Fatalf("%s: did not panic", what)
		}
	}()
	f()
	return nil
}

// notLocked checks that the registry's lock is free, failing instead of
// hanging if a panicking Register left it held.
func notLocked(t *testing.T) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		drivers.Names()
		_, _ = drivers.Lookup(uniqueName("probe"))
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("registry lock still held after a panicking Register")
	}
}

func TestRegisterAndLookup(t *testing.T) {
	name := uniqueName("fake")
	d := &fakeDriver{id: name}
	drivers.Register(name, d)
	got, err := drivers.Lookup(name)
	if err != nil {
		t.Fatalf("Lookup(%q): %v", name, err)
	}
	if got != drivers.Driver(d) {
		t.Fatalf("Lookup(%q) = %v, want the registered driver %v", name, got, d)
	}
}

func TestRegisterPanicsOnEmptyName(t *testing.T) {
	before := drivers.Names()
	v := mustPanic(t, `Register("")`, func() { drivers.Register("", &fakeDriver{}) })
	if !strings.Contains(fmt.Sprint(v), "empty name") {
		t.Fatalf("panic %q does not say the name is empty", v)
	}
	notLocked(t)
	if got := drivers.Names(); slices.Contains(got, "") || len(got) != len(before) {
		t.Fatalf("Names() = %q after the panic, was %q", got, before)
	}
}

func TestRegisterPanicsOnNilDriver(t *testing.T) {
	name := uniqueName("nil")
	v := mustPanic(t, "Register(name, nil)", func() { drivers.Register(name, nil) })
	if s := fmt.Sprint(v); !strings.Contains(s, name) || !strings.Contains(s, "nil") {
		t.Fatalf("panic %q does not name the driver %q and say it is nil", s, name)
	}
	notLocked(t)
	if _, err := drivers.Lookup(name); !errors.Is(err, drivers.ErrUnknownDriver) {
		t.Fatalf("Lookup(%q) after the panic: %v, want ErrUnknownDriver", name, err)
	}
}

func TestRegisterPanicsOnDuplicate(t *testing.T) {
	name := uniqueName("dup")
	first, second := &fakeDriver{id: "first"}, &fakeDriver{id: "second"}
	drivers.Register(name, first)
	v := mustPanic(t, "second Register", func() { drivers.Register(name, second) })
	if s := fmt.Sprint(v); !strings.Contains(s, name) || !strings.Contains(s, "twice") {
		t.Fatalf("panic %q does not name the driver %q and say it is registered twice", s, name)
	}
	notLocked(t)
	got, err := drivers.Lookup(name)
	if err != nil || got != drivers.Driver(first) {
		t.Fatalf("Lookup(%q) after the duplicate = (%v, %v), want the first driver", name, got, err)
	}
	// The default driver's name is taken as well.
	mustPanic(t, "Register(valkeygo.Name)", func() { drivers.Register(valkeygo.Name, &fakeDriver{}) })
	notLocked(t)
}

func TestLookupUnknown(t *testing.T) {
	drivers.Register(uniqueName("known"), &fakeDriver{})
	name := uniqueName("no-such-driver")
	d, err := drivers.Lookup(name)
	if d != nil {
		t.Fatalf("Lookup(%q) returned a driver %v", name, d)
	}
	if !errors.Is(err, drivers.ErrUnknownDriver) {
		t.Fatalf("Lookup(%q) error %v does not wrap ErrUnknownDriver", name, err)
	}
	msg := err.Error()
	if !strings.Contains(msg, `"`+name+`"`) {
		t.Fatalf("error %q does not name the requested driver %q", msg, name)
	}
	names := drivers.Names()
	if len(names) < 2 {
		t.Fatalf("Names() = %q, want at least valkey-go and the test driver", names)
	}
	for _, n := range names {
		if !strings.Contains(msg, n) {
			t.Fatalf("error %q does not list the registered driver %q", msg, n)
		}
	}
	if !strings.Contains(msg, strings.Join(names, ", ")) {
		t.Fatalf("error %q does not list the registered names in order %q", msg, names)
	}
	// An empty name is simply unknown (Register refuses it).
	if _, err := drivers.Lookup(""); !errors.Is(err, drivers.ErrUnknownDriver) {
		t.Fatalf(`Lookup("") error %v, want ErrUnknownDriver`, err)
	}
}

func TestNamesSorted(t *testing.T) {
	suffix := uniqueName("")
	regs := []string{"zz" + suffix, "aa" + suffix, "mm" + suffix}
	for _, n := range regs {
		drivers.Register(n, &fakeDriver{id: n})
	}
	names := drivers.Names()
	if !slices.IsSorted(names) {
		t.Fatalf("Names() = %q, not sorted", names)
	}
	for _, n := range append(regs, valkeygo.Name) {
		if !slices.Contains(names, n) {
			t.Fatalf("Names() = %q, missing %q", names, n)
		}
	}
	// Names returns a copy: changing it changes nothing in the registry.
	names[0] = "changed"
	if got := drivers.Names(); slices.Contains(got, "changed") {
		t.Fatalf("Names() = %q: the registry shares its slice with callers", got)
	}
}

// Importing drivers/valkeygo registers the default driver.
func TestValkeyGoRegistered(t *testing.T) {
	if valkeygo.Name != "valkey-go" {
		t.Fatalf("valkeygo.Name = %q, want valkey-go", valkeygo.Name)
	}
	d, err := drivers.Lookup("valkey-go")
	if err != nil {
		t.Fatalf(`Lookup("valkey-go"): %v`, err)
	}
	if _, ok := d.(valkeygo.Driver); !ok {
		t.Fatalf(`Lookup("valkey-go") = %T, want valkeygo.Driver`, d)
	}
}

// Register, Lookup and Names may run concurrently (go test -race).
func TestRegistryConcurrent(t *testing.T) {
	const n = 8
	names := make([]string, n)
	for i := range names {
		names[i] = uniqueName("conc")
	}
	errs := make(chan error, n)
	for i := range n {
		go func() {
			drivers.Register(names[i], &fakeDriver{id: names[i]})
			drivers.Names()
			_, err := drivers.Lookup(names[(i+1)%n]) // may or may not be there yet
			if err != nil && !errors.Is(err, drivers.ErrUnknownDriver) {
				errs <- err
				return
			}
			errs <- nil
		}()
	}
	for range n {
		select {
		case err := <-errs:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("concurrent registry calls hung")
		}
	}
	for _, name := range names {
		if _, err := drivers.Lookup(name); err != nil {
			t.Fatalf("Lookup(%q): %v", name, err)
		}
	}
}

// A vactor driver that nothing imported (glide, a module of its own) is
// unknown with an error that names the import; "valkey-glide", the name
// other Valkey modules use, is taken for "glide" (QA-R 8).
func TestLookupUnimportedGlide(t *testing.T) {
	for _, name := range []string{"glide", "valkey-glide"} {
		_, err := drivers.Lookup(name)
		if !errors.Is(err, drivers.ErrUnknownDriver) || !strings.Contains(err.Error(), `import _ "github.com/vactor-io/vactor/drivers/glide" to register it`) ||
			!strings.Contains(err.Error(), `"`+name+`"`) {
			t.Errorf("Lookup(%q): %v, want ErrUnknownDriver naming %q and the glide import", name, err, name)
		}
	}
}

// A driver name in the wrong case is unknown (names are case-sensitive)
// with an error that names the right one, and the import when nothing
// registered it (qa-AE 3).
func TestLookupWrongCaseHints(t *testing.T) {
	for name, want := range map[string][]string{
		"Glide":        {`did you mean "glide"?`, `import _ "github.com/vactor-io/vactor/drivers/glide"`},
		"VALKEY-GLIDE": {`did you mean "glide"?`, `import _ "github.com/vactor-io/vactor/drivers/glide"`},
		"Valkey-Go":    {`did you mean "valkey-go"?`},
	} {
		_, err := drivers.Lookup(name)
		if !errors.Is(err, drivers.ErrUnknownDriver) {
			t.Errorf("Lookup(%q): %v, want ErrUnknownDriver", name, err)
			continue
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Lookup(%q): %v, want it to say %s", name, err, w)
			}
		}
	}
}
