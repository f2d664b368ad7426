package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// A command is one record of vactor load's input.
type command struct {
	line int64    // where it starts, from 1
	args []string // name and arguments, packed (see pack)
	// set is true for a SET key value [ttl] that is written with
	// BatchWriter.Set (args are "SET", key, value): consecutive plain
	// SETs go out as MSETs.
	set bool
	ttl time.Duration
}

// A parser reads commands from an input. next returns the next command,
// a *malformedError for a bad record (the parser then goes on with the
// next record), io.EOF at the end, or another error (reading failed).
type parser interface {
	next() (command, error)
}

// Input formats.
const (
	formatCSV   = "csv"
	formatJSONL = "jsonl"
	formatRESP  = "resp"
)

// formatOf picks the format of path from its extension ("" when the
// extension does not tell).
func formatOf(path string) string {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".csv":
		return formatCSV
	case ".jsonl", ".ndjson", ".json":
		return formatJSONL
	case ".resp", ".redis", ".proto":
		return formatRESP
	}
	return ""
}

// sniff picks the format from the first non-blank byte of r: '*' is
// RESP, '{' (and '[', a JSON array, which newParser refuses with the
// fix) JSON Lines, anything else CSV.
func sniff(r *bufio.Reader) string {
	switch c, _ := nonBlank(r, 0); {
	case c == '*':
		return formatRESP
	case c == '{', jsonArray(r):
		return formatJSONL
	}
	return formatCSV
}

// nonBlank returns the first byte of r at or after offset from that is
// not blank (space, tab, line end), and its offset, looking at the first
// 4096 bytes; 0 when there is none.
func nonBlank(r *bufio.Reader, from int) (byte, int) {
	for n := from + 1; n <= 4096; n++ {
		b, _ := r.Peek(n)
		if len(b) < n {
			return 0, 0
		}
		switch c := b[n-1]; c {
		case ' ', '\t', '\r', '\n':
			continue
		default:
			return c, n - 1
		}
	}
	return 0, 0
}

// jsonArray reports whether r starts with a JSON array of objects (or
// an empty one): '[' and then '{' or ']', blanks aside. A CSV key that
// starts with '[' does not.
func jsonArray(r *bufio.Reader) bool {
	c, at := nonBlank(r, 0)
	if c != '[' {
		return false
	}
	next, _ := nonBlank(r, at+1)
	return next == '{' || next == ']'
}

// newParser returns the parser of format over r.
func newParser(format string, r *bufio.Reader) (parser, error) {
	switch format {
	case formatCSV:
		if crLineEnds(r) {
			return nil, errors.New(`the input's lines end in \r alone (classic Mac OS, Excel's "CSV (Macintosh)"): ` +
				`vactor load reads lines ending in \n or \r\n; convert the file first, e.g. tr '\r' '\n' < in.csv > out.csv`)
		}
		return newCSVParser(r), nil
	case formatJSONL:
		if jsonArray(r) {
			// Each line of it would be malformed, none saying why.
			return nil, errors.New("the input is a JSON array, not JSON Lines (one object a line): " +
				"convert it first, e.g. jq -c '.[]' in.json > in.jsonl")
		}
		return &jsonlParser{r: r}, nil
	case formatRESP:
		return &respParser{r: r}, nil
	}
	return nil, fmt.Errorf("unknown format %q (csv, jsonl or resp)", format)
}

// crLineEnds reports whether the lines of r end in \r alone: what the
// reader holds already (no wait for more input: a pipe may be slow to
// fill) has no \n, and a \r out of quotes. encoding/csv reads such a
// file as one record, whose fields run across the lines: two lines
// loaded "a" = "1\rb" with a TTL of 2 seconds.
func crLineEnds(r *bufio.Reader) bool {
	if _, err := r.Peek(1); err != nil {
		return false
	}
	b, _ := r.Peek(r.Buffered())
	if bytes.IndexByte(b, '\n') >= 0 {
		return false
	}
	i := bytes.IndexByte(b, '\r')
	// An odd number of quotes before it: the \r is in a quoted value.
	return i >= 0 && bytes.Count(b[:i], []byte{'"'})%2 == 0
}

// parseTTL parses a TTL: empty or 0 for none, a number of seconds
// (fractions allowed), or a Go duration; either is rounded to the
// nearest millisecond, a positive one to 1 ms at least.
func parseTTL(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return secondsTTL(f)
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, errTTL
	}
	return roundTTL(d), nil
}

// roundTTL rounds a TTL to the nearest millisecond, as the server keeps
// it; a positive TTL below half a millisecond becomes 1 ms, never 0 (no
// expiry at all).
func roundTTL(d time.Duration) time.Duration {
	if d <= 0 {
		return d
	}
	return max(d.Round(time.Millisecond), time.Millisecond)
}

// secondsTTL converts a number of seconds.
func secondsTTL(f float64) (time.Duration, error) {
	if !(f >= 0) || f > math.MaxInt64/float64(time.Second) {
		return 0, errTTL
	}
	ms := time.Duration(math.Round(f*1000)) * time.Millisecond
	if f > 0 && ms == 0 {
		ms = time.Millisecond // a TTL, however short, is not "none"
	}
	return ms, nil
}

// setCommand builds a SET command of key and value (packed together).
// buf is scratch space, kept for the next call.
func setCommand(buf *[]byte, line int64, key, value string, ttl time.Duration) command {
	b := append((*buf)[:0], "SET"...)
	b = append(b, key...)
	b = append(b, value...)
	args := pack(b, []int{3, 3 + len(key), 3 + len(key) + len(value)})
	*buf = b[:0]
	return command{line: line, args: args, set: true, ttl: ttl}
}

// readLine reads one line of r (without its end) into buf, however long;
// it returns io.EOF only when nothing was left.
func readLine(r *bufio.Reader, buf []byte) ([]byte, error) {
	buf = buf[:0]
	for {
		chunk, err := r.ReadSlice('\n')
		buf = append(buf, chunk...)
		switch {
		case err == nil:
			return bytes.TrimRight(buf, "\r\n"), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(buf) > 0:
			return bytes.TrimRight(buf, "\r\n"), nil
		default:
			return buf, err
		}
	}
}
