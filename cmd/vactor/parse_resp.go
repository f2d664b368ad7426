package main

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strconv"
)

// respParser reads commands in the RESP protocol, as `redis-cli --pipe`
// takes them: each an array of bulk strings,
//
//	*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n
//
// Line ends may be \r\n or \n; blank lines between commands are skipped.
// A bad command is reported (with the line where it starts) and skipped
// up to the next line that starts with '*'. Lines are counted as a text
// editor counts them, newlines inside values included.
type respParser struct {
	r      *bufio.Reader
	line   int64 // lines consumed so far
	buf    []byte
	ends   []int
	resync bool // skipping to the next '*' line after an error
	// bad is the error of the record the resync skips the rest of: it is
	// returned when the resync ends (at the next '*' line or the end of
	// the input), with the lines skipped counted in it (before, they
	// were dropped without a word: a file of inline commands reported
	// one malformed record and loaded nothing).
	bad *malformedError
	// next is a '*' line read where an argument was expected: the
	// command before it was cut short, and this one starts here.
	pending  []byte
	nextLine int64
}

// Limits of one command, as the server's defaults.
const (
	maxRESPArgs = 1 << 20
	maxRESPBulk = 512 << 20
)

func (p *respParser) next() (command, error) {
	for {
		var hdr []byte
		start := p.nextLine
		if p.nextLine > 0 {
			hdr, p.nextLine = p.pending, 0
		} else {
			var err error
			if hdr, err = p.readLine(); err != nil {
				if me := p.ended(); me != nil && errors.Is(err, io.EOF) {
					return command{}, me // then io.EOF again
				}
				return command{}, err // io.EOF, or reading failed
			}
			start = p.line
		}
		if len(hdr) == 0 {
			continue // blank line between commands
		}
		if hdr[0] != '*' {
			if p.resync {
				p.bad.last = start
				continue
			}
			reason := "want a RESP array ('*'), got " + headerText(hdr)
			if inline(hdr) {
				// Its name only: the rest is its arguments, values.
				name := hdr[:bytes.IndexByte(hdr, ' ')]
				reason = "want a RESP array ('*'), got an inline command (" + strconv.Quote(string(name)) +
					" and its arguments: vactor load takes commands as RESP arrays, the input redis-cli --pipe documents; key/value data can go as CSV or JSON Lines)"
			}
			p.skip(&malformedError{line: start, reason: reason})
			continue
		}
		if me := p.ended(); me != nil {
			// This command is read next.
			p.pending, p.nextLine = append(p.pending[:0], hdr...), start
			return command{}, me
		}
		n, ok := respInt(hdr[1:])
		if !ok || n < 1 || n > maxRESPArgs {
			p.skip(&malformedError{line: start, reason: "bad array header " + headerText(hdr)})
			continue
		}
		c, err := p.body(start, int(n))
		if err != nil {
			if errors.Is(err, errRESPTruncated) {
				return command{}, &malformedError{line: start, reason: err.Error()}
			}
			var me *malformedError
			if errors.As(err, &me) && p.nextLine == 0 {
				p.skip(me)
				continue
			}
			return command{}, err
		}
		return c, nil
	}
}

// skip starts a resync after the malformed record me: the lines up to the
// next '*' line are skipped, and counted in me, which ended returns.
func (p *respParser) skip(me *malformedError) {
	p.resync, p.bad = true, me
}

// ended ends a resync: the malformed record it skipped the rest of, with
// the lines skipped (nil when none is in progress).
func (p *respParser) ended() *malformedError {
	me := p.bad
	p.resync, p.bad = false, nil
	if me != nil && me.last > me.line {
		me.reason += " (the lines after it, up to the next array ('*'), were skipped with it)"
	}
	return me
}

// inline reports whether line looks like an inline command (a word of
// letters, then a space), which redis-cli --pipe passes to the server as
// it is.
func inline(line []byte) bool {
	i := bytes.IndexByte(line, ' ')
	if i <= 0 {
		return false
	}
	for _, c := range line[:i] {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

// headerText shows a line read where a header was expected: quoted when
// it looks like one ('*', '$' or ':' and a few bytes: a type and a
// number), else by its size only. Such a line is most often a value (a $
// length before it was wrong), and the errors report never shows values
// (see commandText).
func headerText(b []byte) string {
	if len(b) > 0 && len(b) <= 21 && bytes.IndexByte([]byte("*$:"), b[0]) >= 0 {
		return strconv.Quote(string(b))
	}
	return "a line of " + strconv.Itoa(len(b)) + " bytes, not shown (a value? check the $ length before it)"
}

// readLine reads and counts one line, without its end. The slice is
// valid until the next read. A line longer than the reader's buffer
// comes back cut short (only headers are read this way, and no good
// header is that long).
func (p *respParser) readLine() ([]byte, error) {
	b, err := p.r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		head := append([]byte(nil), b[:min(64, len(b))]...)
		for errors.Is(err, bufio.ErrBufferFull) {
			_, err = p.r.ReadSlice('\n')
		}
		b = head
	}
	switch {
	case err == nil:
	case errors.Is(err, io.EOF) && len(b) > 0: // a last line without its end
	default:
		return nil, err
	}
	p.line++
	b = bytes.TrimSuffix(b, []byte{'\n'})
	return bytes.TrimSuffix(b, []byte{'\r'}), nil
}

// body reads the n bulk strings of a command that starts at line start.
func (p *respParser) body(start int64, n int) (command, error) {
	buf := p.buf[:0]
	ends := p.ends[:0]
	bad := func(i int, reason string) (command, error) {
		return command{}, &malformedError{line: start,
			reason: "argument " + strconv.Itoa(i+1) + " of " + strconv.Itoa(n) + ": " + reason}
	}
	for i := range n {
		h, err := p.readLine()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return command{}, errRESPTruncated
			}
			return command{}, err
		}
		if len(h) > 0 && h[0] == '*' {
			// A command cut short: report it, and start again here.
			p.pending, p.nextLine = append(p.pending[:0], h...), p.line
			return command{}, &malformedError{line: start,
				reason: "the command has " + strconv.Itoa(i) + " of its " + strconv.Itoa(n) + " arguments: the next command starts on line " + strconv.FormatInt(p.line, 10)}
		}
		if len(h) == 0 || h[0] != '$' {
			return bad(i, "want a bulk string ('$'), got "+headerText(h))
		}
		size, ok := respInt(h[1:])
		if !ok || size < 0 || size > maxRESPBulk {
			return bad(i, "bad bulk length "+headerText(h))
		}
		off := len(buf)
		buf = grow(buf, int(size))
		if _, err := io.ReadFull(p.r, buf[off:]); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return command{}, errRESPTruncated
			}
			return command{}, err
		}
		p.line += int64(bytes.Count(buf[off:], []byte{'\n'}))
		// The value ends with \r\n (or \n), or, for the last value
		// of the input, with the input (a file without its final line
		// end: the value is whole, its length says so).
		c, err := p.r.ReadByte()
		if err == nil && c == '\r' {
			c, err = p.r.ReadByte()
		}
		if errors.Is(err, io.EOF) && i == n-1 {
			c, err = '\n', nil
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return command{}, errRESPTruncated
			}
			return command{}, err
		}
		if c != '\n' {
			_ = p.r.UnreadByte()
			// No line end after the value: a value longer than its
			// length, or shorter, its line end (and what follows) read
			// as part of it. A line end inside it says which, most
			// likely (a value may hold one of its own).
			if j := bytes.IndexByte(buf[off:], '\n'); j >= 0 {
				j = len(bytes.TrimSuffix(buf[off:off+j], []byte{'\r'}))
				return bad(i, "no line end after the "+strconv.FormatInt(size, 10)+" bytes of its length, but one after "+
					strconv.Itoa(j)+": a value shorter than its length? (fix the $ length)")
			}
			return bad(i, "the value is longer than its length "+strconv.FormatInt(size, 10)+" (fix the $ length)")
		}
		p.line++
		ends = append(ends, len(buf))
	}
	args := pack(buf, ends)
	p.buf, p.ends = buf[:0], ends[:0]
	c := command{line: start, args: args}
	if n == 3 && isSet(args[0]) {
		c.set = true
	}
	return c, nil
}

// grow extends b by n bytes.
func grow(b []byte, n int) []byte {
	if cap(b)-len(b) < n {
		nb := make([]byte, len(b), 2*cap(b)+n)
		copy(nb, b)
		b = nb
	}
	return b[:len(b)+n]
}

// isSet reports whether name is SET in any case.
func isSet(name string) bool {
	return len(name) == 3 && (name[0]|0x20) == 's' && (name[1]|0x20) == 'e' && (name[2]|0x20) == 't'
}

// respInt parses the decimal integer of a RESP header.
func respInt(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	neg := b[0] == '-'
	if neg {
		b = b[1:]
		if len(b) == 0 {
			return 0, false
		}
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}
