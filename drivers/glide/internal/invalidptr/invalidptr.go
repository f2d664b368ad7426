// Package invalidptr tells whether the Go runtime's invalid-pointer check
// (GODEBUG invalidptr) is on in this process, and re-executes a program
// with it off. The glide driver needs it off (glide.ErrInvalidPtrCheck);
// the tests and examples of its module turn it off with Reexec.
package invalidptr

import (
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// startGODEBUG is $GODEBUG as the process started with it (read during
// package initialisation; the runtime reads invalidptr at startup only,
// and accepts no //go:debug line for it).
var startGODEBUG = os.Getenv("GODEBUG")

// On reports whether the runtime's invalidptr check is on in this
// process: the binary's default GODEBUG (its build settings) overridden
// by $GODEBUG, as the runtime applies them at startup. Safe for
// concurrent use.
var On = sync.OnceValue(func() bool {
	def := ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "DefaultGODEBUG" {
				def = s.Value
			}
		}
	}
	return on(def, startGODEBUG)
})

// on reports whether invalidptr is on after the GODEBUG settings in
// order (later ones override earlier ones; on by default).
func on(settings ...string) bool {
	v := true
	for _, s := range settings {
		for _, f := range strings.Split(s, ",") {
			key, val, ok := strings.Cut(strings.TrimSpace(f), "=")
			if !ok || key != "invalidptr" {
				continue
			}
			if n, err := strconv.ParseInt(val, 10, 32); err == nil {
				v = n != 0
			}
		}
	}
	return v
}

// Reexec replaces the process with a new run of its executable, same
// arguments and environment plus invalidptr=0 in GODEBUG, when the check
// is on; it returns nil at once when it is off, and an error only when
// the exec failed. Call it first in main or TestMain, before any other
// goroutine or file matters.
func Reexec() error {
	if !On() {
		return nil
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	godebug := "invalidptr=0"
	if startGODEBUG != "" {
		godebug = startGODEBUG + "," + godebug
	}
	env := []string{"GODEBUG=" + godebug}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GODEBUG=") {
			env = append(env, kv)
		}
	}
	return syscall.Exec(exe, os.Args, env)
}
