package valkeytest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"
)

// orphanHelperEnv makes TestServerDiesWithItsProcess, run in a child
// process, start a server and exit without stopping it.
const orphanHelperEnv = "VALKEYTEST_ORPHAN_HELPER"

// A test binary that ends without running its cleanups (log.Fatal, a
// -timeout panic) must not leave its servers running.
func TestServerDiesWithItsProcess(t *testing.T) {
	if os.Getenv(orphanHelperEnv) == "1" {
		srv, err := StartServer(Options{Name: "orphan"})
		if err != nil {
			fmt.Println("error", err)
			os.Exit(2)
		}
		fmt.Printf("server %d %s %s\n", srv.Pid(), srv.Addr(), srv.Dir())
		os.Exit(3) // as log.Fatal would: no Stop, no cleanup
	}

	cmd := exec.Command(os.Args[0], "-test.run", "^TestServerDiesWithItsProcess$", "-test.count", "1")
	cmd.Env = append(os.Environ(), orphanHelperEnv+"=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Fatalf("helper: %v, want exit status 3; output:\n%s", err, out.String())
	}
	var pid int
	var addr, dir string // addr is not checked: another test may take the port at once
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		if _, err := fmt.Sscanf(sc.Text(), "server %d %s %s", &pid, &addr, &dir); err == nil {
			break
		}
	}
	if pid == 0 {
		t.Fatalf("helper printed no server line:\n%s", out.String())
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })

	// The kernel sends SIGKILL as the helper's threads exit; wait until the
	// process is gone (or a zombie: a container's init may not reap it).
	deadline := time.Now().Add(10 * time.Second)
	for {
		state, ok := procState(pid)
		if !ok || state == 'Z' {
			break
		}
		if time.Now().After(deadline) {
			p, _ := os.FindProcess(pid)
			_ = p.Kill()
			t.Fatalf("server pid %d (state %c) still running 10 s after the process that started it exited", pid, state)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
