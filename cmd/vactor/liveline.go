package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/term"
)

// liveLine shows one status line that changes while something runs. On
// a terminal it rewrites the line in place (\r); elsewhere (a pipe, a CI
// log) it prints a plain line every `every`, so a log gets a few lines
// rather than hundreds. Safe for concurrent use.
type liveLine struct {
	w     io.Writer
	tty   bool
	every time.Duration

	mu   sync.Mutex
	last time.Time // when a plain line was last printed
	open bool      // a \r line is on screen
}

// plainEvery is how often a live line is printed when not on a terminal.
const plainEvery = 10 * time.Second

// newLiveLine returns a live line on w, rewritten in place when w is a
// terminal.
func newLiveLine(w io.Writer) *liveLine {
	return &liveLine{w: w, tty: isTerminal(w), every: plainEvery}
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// update shows text as the current state.
func (l *liveLine) update(text string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.tty {
		fmt.Fprint(l.w, "\r\x1b[K"+text)
		l.open = true
		return
	}
	now := time.Now()
	if l.last.IsZero() {
		l.last = now // the first plain line comes after `every`
		return
	}
	if now.Sub(l.last) >= l.every {
		fmt.Fprintln(l.w, text)
		l.last = now
	}
}

// finish prints text as the final state and ends the line; the next
// update starts a new one.
func (l *liveLine) finish(text string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.tty {
		fmt.Fprint(l.w, "\r\x1b[K")
	}
	fmt.Fprintln(l.w, text)
	l.open = false
	l.last = time.Time{}
}
