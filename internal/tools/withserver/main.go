// Command withserver runs a command with a Valkey server to talk to.
//
//	go run ./internal/tools/withserver -- CMD ARGS...
//
// When a variable that names the server is set (config.EnvNamesServer:
// VALKEY_URL, VALKEY_ADDR, VALKEY_ADDRS, VALKEY_HOST, VALKEY_PORT and the
// sentinel ones), it runs CMD with the environment unchanged. Otherwise it
// starts a throwaway server on a free 127.0.0.1
// port with valkeytest.StartServer, runs CMD with VALKEY_ADDR set to that
// server's address, and stops the server when CMD exits. Standard input,
// output and error are passed through. A first SIGINT or SIGTERM is passed
// on to CMD, a second one kills it; the server is stopped either way.
// withserver exits with CMD's exit code (128+N when CMD died of signal N).
package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/valkeytest"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" {
		fmt.Fprintln(os.Stderr, "usage: withserver -- CMD [ARGS...]\n\n"+
			"Runs CMD with VALKEY_ADDR set to a throwaway server on 127.0.0.1,\n"+
			"unless a VALKEY_* variable already names the server\n"+
			"(VALKEY_URL, VALKEY_ADDR, VALKEY_ADDRS, VALKEY_HOST, VALKEY_PORT,\n"+
			"VALKEY_SENTINEL_ADDRS, VALKEY_SENTINEL_MASTER).")
		return 2
	}

	// Catch signals before the server starts, so that none is missed.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)

	env := os.Environ()
	if !config.EnvNamesServer() {
		srv, err := valkeytest.StartServer(valkeytest.Options{Name: "withserver"})
		if err != nil {
			fmt.Fprintln(os.Stderr, "withserver:", err)
			return 1
		}
		defer func() {
			if err := srv.Stop(); err != nil {
				fmt.Fprintln(os.Stderr, "withserver:", err)
			}
		}()
		env = append(env, "VALKEY_ADDR="+srv.Addr())
		fmt.Fprintf(os.Stderr, "withserver: started a throwaway %s on %s (VALKEY_ADDR)\n",
			filepath.Base(srv.Binary()), srv.Addr())
	}

	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "withserver:", err)
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
			return 127
		}
		return 126
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	signalled := false
	for {
		select {
		case err := <-done:
			return exitCode(err)
		case sig := <-sigs:
			if signalled {
				_ = cmd.Process.Kill()
				continue
			}
			signalled = true
			_ = cmd.Process.Signal(sig)
		}
	}
}

// exitCode turns the result of Cmd.Wait into a shell-style exit code.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		fmt.Fprintln(os.Stderr, "withserver:", err)
		return 1
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ee.ExitCode()
}
