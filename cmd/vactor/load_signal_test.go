package main

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vactor-io/vactor/valkeytest"
)

// After an interrupt the load flushes what it read, for up to 30 s: it
// says so on stderr, and a second interrupt stops the wait (qa45c: with
// the server paused, further Ctrl-Cs were ignored without a word, 17 s
// until the summary). What is still queued is then reported failed; the
// summary and exit status 130 come as after one interrupt.
func TestLoadSecondInterruptStopsFlush(t *testing.T) {
	srv := valkeytest.Start(t)
	eng := connect(t, false, srv.Addr())
	s := start(t, "load", "-addr", srv.Addr(), "-quiet", "-errors", t.TempDir()+"/e", "-format", "csv", "-")
	if _, err := s.stdinWriter.WriteString("first,1\n"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "key first", func() bool { return do(t, eng, "EXISTS", "first") == int64(1) })
	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Resume() })
	var more strings.Builder
	for i := range 20_000 {
		fmt.Fprintf(&more, "k%d,v\n", i)
	}
	if _, err := s.stdinWriter.WriteString(more.String()); err != nil {
		t.Fatal(err)
	}
	first := time.Now()
	if err := s.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the flush note", func() bool {
		select {
		case <-s.exited:
			return true
		default:
		}
		return strings.Contains(s.errb.String(), "interrupt again to stop waiting")
	})
	select {
	case <-s.exited:
		t.Fatalf("the load ended %v after the first interrupt, without the note\nstdout: %s\nstderr: %s", time.Since(first).Round(time.Second), s.out.String(), s.errb.String())
	default:
	}
	took := s.signalAndWait(t, os.Interrupt, 15*time.Second)
	if code := s.cmd.ProcessState.ExitCode(); code != exitInterrupted {
		t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, exitInterrupted, s.out.String(), s.errb.String())
	}
	mustContain(t, "stderr", s.errb.String(), "interrupt again to stop waiting")
	mustContain(t, "stdout", s.out.String(), "acknowledged, ", "interrupted: nothing after line", "a second interrupt stopped the flush")
	if took > 8*time.Second { // the in-flight pipeline's drain (DrainTimeout, 5 s) at most
		t.Fatalf("exit %v after the second interrupt\nstdout: %s", took, s.out.String())
	}
}
