package valkeytest

import (
	"errors"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// process is one run of the server binary. The goroutine started by
// startProcess is its only reaper: it waits on the command and closes
// exited, and it has returned once exited is closed.
type process struct {
	cmd    *exec.Cmd
	exited chan struct{}
	err    error // the result of cmd.Wait; read only after exited is closed
}

func startProcess(bin string, args []string, dir, logPath string) (*process, error) {
	// stdout and stderr go to the log too, so that errors printed before
	// the server opens its log file (bad arguments) are kept.
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child holds its own copy

	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout = logf
	cmd.Stderr = logf
	// Its own process group: a Ctrl-C at the terminal reaches the test or
	// tool, which then stops the server, not the server directly.
	// Pdeathsig: the server is killed when the process that started it
	// ends without stopping it (see spawn).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := spawn(cmd); err != nil {
		return nil, err
	}
	p := &process{cmd: cmd, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// spawns carries each server's command to the spawner goroutine.
var spawns = make(chan spawnRequest)

type spawnRequest struct {
	cmd *exec.Cmd
	err chan<- error
}

// The spawner starts with the package, so that it exists before any
// goroutine count or leak snapshot a test takes, and runs for the life
// of the process.
func init() { go spawner() }

// spawner starts every server from one goroutine locked to its OS thread
// for the life of the process. A server's Pdeathsig (SIGKILL) is sent
// when the thread that forked it exits, not the process: a Go runtime
// thread exits while the process lives only when a goroutine locked to it
// ends, so forking from an arbitrary goroutine's thread could kill a
// server in the middle of a test. This thread never ends before the
// process, so a server dies with the process that started it (a test
// binary ended by log.Fatal, a -timeout panic or SIGKILL before its
// cleanups ran), and not before.
func spawner() {
	runtime.LockOSThread() // never unlocked
	for r := range spawns {
		r.err <- r.cmd.Start()
	}
}

// spawn starts cmd on the spawner's thread.
func spawn(cmd *exec.Cmd) error {
	errc := make(chan error, 1)
	spawns <- spawnRequest{cmd: cmd, err: errc}
	return <-errc
}

func (p *process) pid() int { return p.cmd.Process.Pid }

func (p *process) done() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// signal sends sig to the process by pid. A process that has already
// exited is not an error. (os.Process uses a pidfd on Linux, so a reused
// pid is never signalled.)
func (p *process) signal(sig os.Signal) error {
	err := p.cmd.Process.Signal(sig)
	if errors.Is(err, os.ErrProcessDone) {
		return nil
	}
	return err
}

// kill sends SIGKILL and waits until the process is reaped.
func (p *process) kill() error {
	err := p.signal(syscall.SIGKILL)
	<-p.exited
	return err
}

// terminate sends SIGTERM (and SIGCONT, in case the process is paused),
// waits up to timeout for it to exit, then kills it.
func (p *process) terminate(timeout time.Duration) error {
	if p.done() {
		return nil
	}
	if err := p.signal(syscall.SIGTERM); err != nil {
		return p.kill()
	}
	_ = p.signal(syscall.SIGCONT)
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.exited:
		return nil
	case <-t.C:
		return p.kill()
	}
}

// awaitState polls the process state in /proc until stopped is what the
// caller wants (state T or not), the process exits, or a second passes.
// Without /proc it returns at once: the signal has been sent, and the
// caller has nothing better to wait on.
func (p *process) awaitState(stopped bool) {
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	deadline := time.Now().Add(time.Second)
	for {
		state, ok := procState(p.pid())
		if !ok || (state == 'T') == stopped || time.Now().After(deadline) {
			return
		}
		select {
		case <-p.exited:
			return
		case <-t.C:
		}
	}
}

// procState returns the state letter of a process from /proc/PID/stat.
func procState(pid int) (byte, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	s := string(b)
	// "PID (COMM) STATE ...": COMM may hold spaces and parentheses.
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return 0, false
	}
	return s[i+2], true
}
