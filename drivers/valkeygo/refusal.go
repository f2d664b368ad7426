package valkeygo

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/valkey-io/valkey-go"

	"github.com/vactor-io/vactor/drivers"
)

// A server that refuses a connection before it reads a command (at its
// maxclients limit: "-ERR max number of clients reached") writes one
// error reply and closes. valkey-go pipelines its handshake (HELLO,
// CLIENT SETINFO) and fails all of it with the error of the read that
// found the connection closed, EOF: the server's reason was lost. The
// driver keeps the first bytes each connection read (firstRead) and, when
// its dial fails with a transport error, returns the server's error reply
// beside it (refusedError).

// firstRead keeps the first bytes read from a connection (up to
// firstReadMax). Read records them, from the one goroutine that reads;
// reply is called once the dial is over. After the first read it costs
// an atomic load per Read.
type firstRead struct {
	got  atomic.Bool
	data string
}

const firstReadMax = 256

func (f *firstRead) note(b []byte) {
	if f == nil || len(b) == 0 || f.got.Load() {
		return
	}
	f.data = string(b[:min(len(b), firstReadMax)])
	f.got.Store(true)
}

// errorReply returns the text of the error reply the connection read
// first, when it read one whole ("-ERR ...\r\n").
func (f *firstRead) errorReply() (string, bool) {
	if f == nil || !f.got.Load() || !strings.HasPrefix(f.data, "-") {
		return "", false
	}
	line, _, ok := strings.Cut(f.data[1:], "\r\n")
	return line, ok && line != ""
}

// refusedError is the error of a dial the server refused with an error
// reply before it closed the connection: the transport error valkey-go
// reported, and the reply as valkey-go's *ValkeyError (errors.As finds
// both).
type refusedError struct {
	err   error
	reply *valkey.ValkeyError
	text  string
}

func (e *refusedError) Error() string {
	return e.text + " (then the server closed the connection: " + e.err.Error() + ")"
}

func (e *refusedError) Unwrap() []error { return []error{e.err, e.reply} }

// withRefusal returns err with the error reply one of reads read first
// beside it, when err is not an error reply already; otherwise err.
func withRefusal(err error, reads []*firstRead) error {
	var ve *valkey.ValkeyError
	var ce *credsError
	if errors.As(err, &ve) || errors.As(err, &ce) {
		return err
	}
	for _, f := range reads {
		text, ok := f.errorReply()
		if !ok {
			continue
		}
		reply := drivers.ToValkey([]drivers.Result{{Value: drivers.Error(text)}})[0].Error()
		var rve *valkey.ValkeyError
		if !errors.As(reply, &rve) {
			return err
		}
		return &refusedError{err: err, reply: rve, text: text}
	}
	return err
}

// firstHeader checks the header of the first reply a connection reads (the
// handshake's, HELLO's): valkey-go trusts a RESP length and allocates it,
// so "*2147483647" was a fatal out-of-memory error (80 GB) and "$-5" a
// panic, in New or any reconnect, from a port that is not Valkey, a broken
// proxy, or anyone on the path of a plain connection. No handshake reply
// is that long. Only the reading goroutine uses it.
type firstHeader struct {
	buf  [24]byte
	n    int
	done bool
}

// maxHandshakeLen bounds the length a handshake reply's header may give
// (HELLO's reply is a map of about 7 entries).
const maxHandshakeLen = 1 << 16

// errBadHandshake fails a dial whose first reply's header is no
// handshake's.
var errBadHandshake = errors.New("the server's first reply gives a length no Valkey handshake reply has (not a Valkey or Redis server at the address?)")

// check takes the next bytes read and returns errBadHandshake (wrapped)
// once the first line is a length-prefixed type with a length below -1 or
// above maxHandshakeLen, or a length that does not end within the buffer.
func (h *firstHeader) check(b []byte) error {
	if h.done || len(b) == 0 {
		return nil
	}
	k := copy(h.buf[h.n:], b)
	h.n += k
	line := h.buf[:h.n]
	switch line[0] {
	case '*', '%', '~', '>', '|', '$', '=', '!':
	default:
		h.done = true // a simple type: "+OK", "-ERR ...", or not RESP
		return nil
	}
	end := strings.Index(string(line), "\r\n")
	if end < 0 {
		if h.n < len(h.buf) {
			return nil // more to come
		}
		end = h.n
	}
	h.done = true
	n, err := strconv.ParseInt(string(line[1:end]), 10, 64)
	if err != nil {
		if end == h.n { // digits that did not end
			return fmt.Errorf("%w: %q", errBadHandshake, line)
		}
		return nil // not a number: valkey-go reports what it makes of it
	}
	if n < -1 || n > maxHandshakeLen {
		return fmt.Errorf("%w: %q", errBadHandshake, line[:end])
	}
	return nil
}
