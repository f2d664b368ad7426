package valkeygo_test

import (
	"bufio"
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/vactor-io/vactor/drivers"
	"github.com/vactor-io/vactor/drivers/valkeygo"
)

// A peer that answers the handshake with a RESP length no server sends
// fails the dial with an error: valkey-go allocated the length it read,
// "*2147483647" was a fatal out-of-memory error (80 GB) and "$-5" a panic
// on the dial's goroutine, either way the end of the process (QA-AA 2).
func TestDialHostileHandshakeLength(t *testing.T) {
	for _, reply := range []string{
		"$9223372036854775807\r\n", "*-2\r\n", "$-5\r\n", "*2147483647\r\n",
		"%9223372036854775807\r\n", "~99999999999999999999999999999\r\n", "*70000\r\n",
		"%1\r\n$-5\r\n", // nested: a panic in valkey-go, recovered
	} {
		t.Run(strings.TrimSpace(reply), func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			closed := make(chan bool, 16) // per connection: the client closed it
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					go func() {
						defer c.Close()
						r := bufio.NewReader(c)
						_, _ = r.ReadByte() // the HELLO
						_, _ = c.Write([]byte(reply))
						_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
						for {
							if _, err := r.Discard(r.Buffered() + 1); err != nil {
								var ne net.Error
								closed <- !(errors.As(err, &ne) && ne.Timeout())
								return
							}
						}
					}()
				}
			}()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			conn, err := valkeygo.Driver{}.Dial(ctx, drivers.Options{Addr: ln.Addr().String(), DialTimeout: 2 * time.Second})
			if err == nil {
				conn.Close()
				t.Fatalf("dial to a peer answering %q succeeded", reply)
			}
			if !strings.Contains(err.Error(), "not a Valkey or Redis server") {
				t.Fatalf("dial to a peer answering %q: %v, want it to say what the peer is not", reply, err)
			}
			// The failed dial's connection is closed (after a recovered
			// panic, it was left open: a socket per reconnect attempt).
			if !<-closed {
				t.Fatalf("dial to a peer answering %q: the connection was left open", reply)
			}
		})
	}
}
