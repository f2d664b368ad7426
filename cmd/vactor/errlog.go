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

// note prints a message on stderr, not in the errors file (clearing the
// progress bar first, as record does).
func (l *errorLog) note(text string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.clear != nil {
		l.clear()
	}
	fmt.Fprintln(l.stderr, "vactor load:", text)
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

// commandText renders a command for the errors report: its name, its
// key when it is a plain write of one key (the key is what an operator
// looks for), and only the number and size of the other arguments. Values
// are never shown: the report goes to the terminal and into the errors
// file, and an argument may be a password (AUTH, HELLO, CONFIG SET
// requirepass) or a value not meant for logs; the line number finds the
// record in the input. A command not known to have its key first shows
// no argument at all (AUTH's first argument is the password).
func commandText(args []string) string {
	if len(args) == 0 {
		return ""
	}
	var b strings.Builder
	if isWord(args[0]) {
		b.WriteString(args[0])
	} else {
		b.WriteString(cut(args[0], 32))
	}
	rest := args[1:]
	if singleKeyWrite(args) {
		b.WriteByte(' ')
		b.WriteString(cut(args[1], 64))
		rest = args[2:]
	}
	if len(rest) > 0 {
		size := 0
		for _, a := range rest {
			size += len(a)
		}
		more, noun := "", "argument"
		if len(rest) < len(args)-1 {
			more = " more"
		}
		if len(rest) > 1 {
			noun += "s"
		}
		unit := "bytes"
		if size == 1 {
			unit = "byte"
		}
		fmt.Fprintf(&b, " (%d%s %s, %d %s, not shown)", len(rest), more, noun, size, unit)
	}
	return b.String()
}

// serverText is an error's text for the errors report without the
// arguments the server echoes ("ERR unknown command 'x', with args
// beginning with: 'secret' "): they are the command's values.
func serverText(err error) string {
	text := forCLI(err).Error()
	if i := strings.Index(text, ", with args beginning with:"); i >= 0 {
		text = text[:i] + " (its arguments not shown)"
	}
	return text
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
