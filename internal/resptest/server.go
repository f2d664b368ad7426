package resptest

import (
	"bufio"
	"net"
	"strings"
	"sync"
)

// Handler answers one command (its arguments, the name first, as sent):
// the reply's raw bytes, written as they are, and true; false for the
// server's default answer (see Server).
type Handler func(args []string) (reply string, ok bool)

// Hello3 is the default answer to HELLO: a RESP3 map of a standalone
// primary.
const Hello3 = "%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$5\r\n7.0.0\r\n" +
	"$5\r\nproto\r\n:3\r\n$2\r\nid\r\n:1\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n" +
	"$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n"

// Hangup, as a Handler's reply, closes the connection instead of
// answering.
const Hangup = "\x00hangup"

// Server is a fake RESP3 server on a free loopback port. Each connection
// reads commands one at a time and writes each reply before it reads the
// next, so replies keep the order of the commands. Commands the Handler
// does not answer get the defaults: HELLO gets Hello3, CLIENT and SELECT
// +OK, PING +PONG, any other an "ERR unknown command" error reply. Its
// methods are safe for concurrent use.
type Server struct {
	l      net.Listener
	handle Handler

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	done  bool
	wg    sync.WaitGroup
}

// NewServer starts a Server answering with h.
func NewServer(h Handler) (*Server, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Server{l: l, handle: h, conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// Addr is the server's "host:port".
func (s *Server) Addr() string { return s.l.Addr().String() }

// Close stops the server, closes its connections and waits for their
// goroutines.
func (s *Server) Close() {
	s.mu.Lock()
	s.done = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.l.Close()
	s.wg.Wait()
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.l.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.done {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serve(c)
	}
}

func (s *Server) serve(c net.Conn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
	}()
	r := bufio.NewReader(c)
	for {
		args, err := ReadCommand(r)
		if err != nil || len(args) == 0 {
			return
		}
		reply, ok := s.handle(args)
		if !ok {
			reply = defaultReply(args)
		}
		if reply == Hangup {
			return
		}
		if _, err := c.Write([]byte(reply)); err != nil {
			return
		}
	}
}

func defaultReply(args []string) string {
	switch strings.ToUpper(args[0]) {
	case "HELLO":
		return Hello3
	case "CLIENT", "SELECT":
		return "+OK\r\n"
	case "PING":
		return "+PONG\r\n"
	}
	return "-ERR unknown command '" + args[0] + "'\r\n"
}
