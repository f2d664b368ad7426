package main

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// cliEnv, set to 1, makes the test binary run as the vactor command (the
// tests run the CLI in a process of its own, as a user does); the bench's
// worker processes, which re-execute the binary, are dispatched by their
// first argument.
const cliEnv = "VACTOR_TEST_CLI"

func TestMain(m *testing.M) {
	if os.Getenv(cliEnv) == "1" || (len(os.Args) > 1 && os.Args[1] == workerCommand) {
		os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// cliResult is the outcome of one vactor command.
type cliResult struct {
	code           int
	stdout, stderr string
}

// vactor runs the vactor command line args in a process of its own with
// env added to a clean environment (no VALKEY_* variable of the caller's)
// and stdin as its input.
func vactor(t testing.TB, env []string, stdin string, args ...string) cliResult {
	t.Helper()
	return vactorIn(t, env, strings.NewReader(stdin), args...)
}

// vactorIn is vactor with stdin read from r (an *os.File for a
// redirected file).
func vactorIn(t testing.TB, env []string, r io.Reader, args ...string) cliResult {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "VALKEY_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(append(cmd.Env, cliEnv+"=1", raceExitEnv()), env...)
	cmd.Stdin = r
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("vactor %q: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return cliResult{code: code, stdout: out.String(), stderr: errb.String()}
}

// raceExitEnv returns GORACE with atexit_sleep_ms=0 added: a -race
// binary otherwise sleeps a second at every successful exit, and the
// tests run the command (and the bench its workers) as many processes.
func raceExitEnv() string {
	return "GORACE=" + strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0")
}
