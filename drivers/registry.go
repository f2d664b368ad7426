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
func Lookup(name string) (Driver, error) {
	mu.RLock()
	d, ok := registry[name]
	mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w %q (registered: %s)", ErrUnknownDriver, name, strings.Join(Names(), ", "))
	}
	return d, nil
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
