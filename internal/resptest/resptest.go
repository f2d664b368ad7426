// Package resptest builds server replies for tests of the parsers of
// replies: valkey-go messages from RESP text (Message, Result), and a fake
// RESP3 server (Server) that answers a client's handshake and then chosen
// commands with chosen bytes, malformed ones included.
//
// It is for tests only; nothing in the library imports it.
package resptest

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/valkey-io/valkey-go"
)

// maxDepth bounds the nesting Parse follows (a fuzzer's input can nest
// deeper than any server reply).
const maxDepth = 64

// ErrIncomplete is returned by Parse when the input ends inside a value.
var ErrIncomplete = errors.New("resptest: incomplete RESP value")

// Message builds the valkey-go message of one RESP2 or RESP3 value
// written as text ("*2\r\n$1\r\na\r\n:1\r\n"), as valkey-go would have read
// it from the wire; it panics when resp is not one complete value. Through
// valkey-go's one public constructor of arbitrary messages,
// (*ValkeyMessage).CacheUnmarshalView (drivers.ToValkey uses the same
// format and TestValkeyFormat in drivers pins it).
func Message(resp string) valkey.ValkeyMessage {
	m, err := Parse([]byte(resp))
	if err != nil {
		panic(fmt.Sprintf("resptest.Message(%q): %v", resp, err))
	}
	return m
}

// Result is Message as a successful valkey.ValkeyResult (an error reply
// in resp is the result's ValkeyError, as valkey-go gives it).
func Result(resp string) valkey.ValkeyResult {
	return valkey.NewResult(Message(resp), nil)
}

// Parse reads exactly one RESP value from b (RESP3 attributes are
// skipped, as valkey-go skips them; a push is read as an array).
func Parse(b []byte) (valkey.ValkeyMessage, error) {
	var m valkey.ValkeyMessage
	p := parser{in: b}
	buf, err := p.value(make([]byte, 7, 7+len(b)*2), 0)
	if err != nil {
		return m, err
	}
	if p.pos != len(p.in) {
		return m, fmt.Errorf("resptest: %d bytes after the value", len(p.in)-p.pos)
	}
	if err := m.CacheUnmarshalView(buf); err != nil {
		return m, err
	}
	return m, nil
}

type parser struct {
	in  []byte
	pos int
}

// line returns the text up to the next CRLF.
func (p *parser) line() (string, error) {
	i := strings.Index(string(p.in[p.pos:]), "\r\n")
	if i < 0 {
		return "", ErrIncomplete
	}
	s := string(p.in[p.pos : p.pos+i])
	p.pos += i + 2
	return s, nil
}

func header(buf []byte, typ byte, n int64) []byte {
	buf = append(buf, typ)
	return binary.BigEndian.AppendUint64(buf, uint64(n))
}

// value appends the cache encoding of the next value to buf.
func (p *parser) value(buf []byte, depth int) ([]byte, error) {
	if depth > maxDepth {
		return nil, errors.New("resptest: nested too deep")
	}
	if p.pos >= len(p.in) {
		return nil, ErrIncomplete
	}
	typ := p.in[p.pos]
	p.pos++
	ln, err := p.line()
	if err != nil {
		return nil, err
	}
	switch typ {
	case '+', '-', ',', '(':
		buf = header(buf, typ, int64(len(ln)))
		return append(buf, ln...), nil
	case ':':
		n, err := strconv.ParseInt(ln, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("resptest: integer %q: %w", ln, err)
		}
		return header(buf, ':', n), nil
	case '#':
		switch ln {
		case "t":
			return header(buf, '#', 1), nil
		case "f":
			return header(buf, '#', 0), nil
		}
		return nil, fmt.Errorf("resptest: boolean %q", ln)
	case '_':
		return header(buf, '_', 0), nil
	case '$', '!', '=':
		n, err := strconv.Atoi(ln)
		if err != nil {
			return nil, fmt.Errorf("resptest: length %q: %w", ln, err)
		}
		if n < 0 { // RESP2 null bulk string
			return header(buf, '_', 0), nil
		}
		if n > len(p.in)-p.pos-2 {
			return nil, ErrIncomplete
		}
		s := p.in[p.pos : p.pos+n]
		if string(p.in[p.pos+n:p.pos+n+2]) != "\r\n" {
			return nil, errors.New("resptest: bulk string without its CRLF")
		}
		p.pos += n + 2
		buf = header(buf, typ, int64(n))
		return append(buf, s...), nil
	case '*', '~', '%', '>', '|':
		n, err := strconv.Atoi(ln)
		if err != nil {
			return nil, fmt.Errorf("resptest: length %q: %w", ln, err)
		}
		if n < 0 { // RESP2 null array
			return header(buf, '_', 0), nil
		}
		elems := n
		if typ == '%' || typ == '|' {
			elems = 2 * n
		}
		if elems > len(p.in)-p.pos { // each element takes at least one byte
			return nil, ErrIncomplete
		}
		if typ == '|' { // an attribute: read and dropped, the value follows
			for range elems {
				if _, err := p.value(nil, depth+1); err != nil {
					return nil, err
				}
			}
			return p.value(buf, depth)
		}
		if typ == '>' {
			typ = '*'
		}
		buf = header(buf, typ, int64(elems))
		for range elems {
			if buf, err = p.value(buf, depth+1); err != nil {
				return nil, err
			}
		}
		return buf, nil
	}
	return nil, fmt.Errorf("resptest: unknown type byte %q", typ)
}

// ReadCommand reads one command a client sent: an array of bulk strings.
func ReadCommand(r *bufio.Reader) ([]string, error) {
	ln, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	ln = strings.TrimSuffix(ln, "\r\n")
	if !strings.HasPrefix(ln, "*") {
		return nil, fmt.Errorf("resptest: command %q is not an array", ln)
	}
	n, err := strconv.Atoi(ln[1:])
	if err != nil || n < 0 {
		return nil, fmt.Errorf("resptest: command length %q", ln)
	}
	args := make([]string, n)
	for i := range args {
		h, err := r.ReadString('\n')
		if err != nil {
			return nil, err
		}
		h = strings.TrimSuffix(h, "\r\n")
		if !strings.HasPrefix(h, "$") {
			return nil, fmt.Errorf("resptest: argument %q is not a bulk string", h)
		}
		size, err := strconv.Atoi(h[1:])
		if err != nil || size < 0 {
			return nil, fmt.Errorf("resptest: argument length %q", h)
		}
		b := make([]byte, size+2)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, err
		}
		args[i] = string(b[:size])
	}
	return args, nil
}
