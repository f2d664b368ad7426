package drivers

import (
	"fmt"
	"slices"
	"strings"
	"sync"
)

var (
	mu       sync.RWMutex
	registry = map[string]Driver{}
)

// Register makes a driver available under name. It panics if name is empty,
// d is nil, or name is already registered, as database/sql does: these are
// programming errors found at init time.
func Register(name string, d Driver) {
	if name == "" {
		panic("drivers: Register with an empty name")
	}
	if d == nil {
		panic("drivers: Register driver " + name + " is nil")
	}
	mu.Lock()
	defer mu.Unlock()
	if _, dup := registry[name]; dup {
		panic("drivers: Register called twice for driver " + name)
	}
	registry[name] = d
}

// Lookup returns the driver registered under name, or an error wrapping
// ErrUnknownDriver that lists the registered names.
//
// "valkey-glide" (the name other Valkey modules give it) is taken for
// "glide". The error for a driver of vactor's that is not registered
// because nothing imported its package names the import.
func Lookup(name string) (Driver, error) {
	key := name
	if key == "valkey-glide" {
		key = "glide"
	}
	mu.RLock()
	d, ok := registry[key]
	mu.RUnlock()
	if !ok {
		hint := ""
		if lower := strings.ToLower(key); lower != key {
			if lower == "valkey-glide" {
				lower = "glide"
			}
			mu.RLock()
			_, reg := registry[lower]
			mu.RUnlock()
			if _, known := driverPackages[lower]; reg || known {
				hint = fmt.Sprintf("; names are case-sensitive: did you mean %q?", lower)
				key = lower
			}
		}
		if pkg, known := driverPackages[key]; known && !registered(key) {
			hint += fmt.Sprintf("; import _ %q to register it", pkg.path)
			if pkg.note != "" {
				hint += " (" + pkg.note + ")"
			}
		}
		return nil, fmt.Errorf("%w %q (registered: %s)%s", ErrUnknownDriver, name, strings.Join(Names(), ", "), hint)
	}
	return d, nil
}

func registered(name string) bool {
	mu.RLock()
	defer mu.RUnlock()
	_, ok := registry[name]
	return ok
}

// driverPackages are the packages that register vactor's drivers, by name.
var driverPackages = map[string]struct{ path, note string }{
	"valkey-go": {path: "github.com/vactor-io/vactor/drivers/valkeygo"},
	"glide":     {path: "github.com/vactor-io/vactor/drivers/glide", note: "a Go module of its own; it needs cgo"},
}

// Names returns the registered driver names, sorted.
func Names() []string {
	mu.RLock()
	defer mu.RUnlock()
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
