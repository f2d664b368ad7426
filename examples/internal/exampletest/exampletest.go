// Package exampletest runs an example program as a process of its own in
// the example's tests, so that what only a real process shows can be
// checked: its exit status, and what a Ctrl-C (SIGINT) leaves behind.
//
// An example's test package calls Main from its TestMain; Interrupt then
// re-executes the test binary as the example (its main function with the
// given arguments), interrupts it, and checks that it exited on its own
// and left no server running.
package exampletest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
)

// envArgs, when set in a test binary's environment, makes Main run the
// example's main with these arguments (JSON) instead of the tests.
const envArgs = "VACTOR_EXAMPLE_ARGS"

// Main runs the tests, or, in a process Interrupt started, the example's
// main function with the arguments Interrupt was given. Call it from the
// example's TestMain:
//
//	func TestMain(m *testing.M) { exampletest.Main(m, main) }
func Main(m *testing.M, main func()) {
	if js, ok := os.LookupEnv(envArgs); ok {
		var args []string
		if err := json.Unmarshal([]byte(js), &args); err != nil {
			panic(err)
		}
		os.Args = append([]string{os.Args[0]}, args...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// Interrupt runs the example with args and none of the VALKEY_* variables
// that name a server (so that it starts its own throwaway servers), sends
// it SIGINT as soon as its output (stdout or stderr) contains ready, and
// checks that it then exits on its own within a minute (not killed by the
// signal) and that no server it started is left running. It returns the
// example's output and exit code.
//
// The servers are found by their working directory: the example runs with
// TMPDIR set to a directory of the test's own, under which valkeytest puts
// every server's directory. Servers found there are killed, so that a
// failing run leaves none behind either.
func Interrupt(t *testing.T, ready string, args ...string) (output string, code int) {
	t.Helper()
	tmp := t.TempDir()
	js, err := json.Marshal(args)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(environWithout(config.ServerEnvVars), envArgs+"="+string(js), "TMPDIR="+tmp)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	t.Cleanup(func() { killServersUnder(t, tmp) })

	var (
		mu  sync.Mutex
		out bytes.Buffer
	)
	seen := make(chan struct{})
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		defer pr.Close()
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		sc.Split(scanLines)
		found := false
		for sc.Scan() {
			mu.Lock()
			out.Write(sc.Bytes())
			out.WriteByte('\n')
			mu.Unlock()
			if !found && strings.Contains(sc.Text(), ready) {
				found = true
				close(seen)
			}
		}
	}()
	exited := make(chan error, 1)
	go func() { <-copied; exited <- cmd.Wait() }()

	text := func() string { mu.Lock(); defer mu.Unlock(); return out.String() }
	select {
	case <-seen:
	case err := <-exited:
		t.Fatalf("the example exited (%v) before printing %q; output:\n%s", err, ready, text())
	case <-time.After(time.Minute):
		_ = cmd.Process.Kill()
		<-exited
		t.Fatalf("the example did not print %q within a minute; output:\n%s", ready, text())
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(time.Minute):
		_ = cmd.Process.Kill()
		<-exited
		t.Fatalf("the example still ran a minute after SIGINT; output:\n%s", text())
	}
	st := cmd.ProcessState
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		t.Errorf("the example was killed by %v instead of stopping on its own; output:\n%s", ws.Signal(), text())
	}
	if left := serversUnder(t, tmp); len(left) > 0 {
		t.Errorf("servers left running after the example exited: pids %v; output:\n%s", left, text())
	}
	return text(), st.ExitCode()
}

// environWithout returns the environment without the variables in names.
func environWithout(names []string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		skip := false
		for _, n := range names {
			skip = skip || name == n
		}
		if !skip {
			env = append(env, kv)
		}
	}
	return env
}

// serversUnder returns the pids of the processes whose working directory
// is under dir.
func serversUnder(t *testing.T, dir string) []int {
	t.Helper()
	procs, err := filepath.Glob("/proc/[0-9]*/cwd")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, p := range procs {
		cwd, err := os.Readlink(p)
		if err != nil || (cwd != dir && !strings.HasPrefix(cwd, dir+"/")) {
			continue
		}
		if pid, err := strconv.Atoi(filepath.Base(filepath.Dir(p))); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// killServersUnder kills the processes serversUnder finds and waits until
// they are gone (up to 10 s).
func killServersUnder(t *testing.T, dir string) {
	t.Helper()
	for _, pid := range serversUnder(t, dir) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(serversUnder(t, dir)) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
}

// scanLines splits at '\n' and at '\r' (a progress bar redrawn in place).
func scanLines(data []byte, atEOF bool) (advance int, token []byte, err error) {
	if i := bytes.IndexAny(data, "\r\n"); i >= 0 {
		return i + 1, data[:i], nil
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}
