package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
)

// errorLog writes each failed command and malformed record of vactor
// load to the errors file, one line each, in the order they happened:
//
//	line 42: failed: SET "k" "v": WRONGTYPE Operation against a key holding the wrong kind of value
//	line 7: malformed: want key,value[,ttl], got 4 fields
//
// ("line ?" when the line of a failed command is not known). The file is
// created on the first entry only. The first few entries are also
// printed to stderr. Safe for concurrent use.
type errorLog struct {
	path   string
	stderr io.Writer
	// clear, when set, clears a progress bar off the terminal line before
	// an entry is printed (the bar draws itself again).
	clear func()

	mu      sync.Mutex
	f       *os.File
	w       *bufio.Writer
	entries int
	err     error // the first error writing the file
}

// errorsShown is how many entries are also printed on stderr.
const errorsShown = 10

// record logs one entry: kind is "failed" or "malformed".
func (l *errorLog) record(line int64, kind, text string) {
	l.recordLines(line, 0, kind, text)
}

// recordLines is record for an entry about lines line to last (a
// malformed record of several lines); last 0 or not after line: line
// alone.
func (l *errorLog) recordLines(line, last int64, kind, text string) {
	ln := "?"
	if line > 0 {
		ln = strconv.FormatInt(line, 10)
	}
	entry := "line " + ln + ": " + kind + ": " + text
	if line > 0 && last > line {
		entry = "lines " + ln + "-" + strconv.FormatInt(last, 10) + ": " + kind + ": " + text
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries++
	if l.entries <= errorsShown+1 && l.clear != nil {
		l.clear()
	}
	if l.entries <= errorsShown {
		fmt.Fprintln(l.stderr, "vactor load:", entry)
	} else if l.entries == errorsShown+1 {
		fmt.Fprintf(l.stderr, "vactor load: more errors: see %s\n", l.path)
	}
	if l.err != nil {
		return
	}
	if l.f == nil {
		f, err := os.Create(l.path)
		if err != nil {
			l.err = err
			return
		}
		l.f, l.w = f, bufio.NewWriter(f)
	}
	if _, err := l.w.WriteString(entry + "\n"); err != nil {
		l.err = err
	}
}

// close flushes and closes the file; it returns the first error writing
// it.
func (l *errorLog) close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return l.err
	}
	err := l.w.Flush()
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.f = nil
	if l.err == nil {
		l.err = err
	}
	return l.err
}

// count returns the number of entries.
func (l *errorLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.entries
}

// commandText renders a command for the errors file: each argument
// quoted, long ones cut.
func commandText(args []string) string {
	var b strings.Builder
	for i, a := range args {
		if i > 0 {
			b.WriteByte(' ')
		}
		if i == 0 && isWord(a) {
			b.WriteString(a)
			continue
		}
		b.WriteString(cut(a, 64))
	}
	return b.String()
}

// cut quotes s, keeping at most n bytes of it.
func cut(s string, n int) string {
	if len(s) <= n {
		return strconv.Quote(s)
	}
	return strconv.Quote(s[:n]) + "…(" + strconv.Itoa(len(s)) + " bytes)"
}

// isWord reports whether s is a plain command name.
func isWord(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-' || c == '|') {
			return false
		}
	}
	return true
}
