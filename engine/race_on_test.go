//go:build race

package engine_test

// raceEnabled: the race detector is on (sync.Pool then drops items at
// random, so pooled things are allocated again now and then).
const raceEnabled = true
