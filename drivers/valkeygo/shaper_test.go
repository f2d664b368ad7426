package valkeygo_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// shaper is a TCP proxy for the read timeout tests: it forwards to a real
// server and shapes each direction on demand (paced in chunks, stalled
// after a number of bytes), optionally terminating TLS from the client.
type shaper struct {
	t        *testing.T
	ln       net.Listener
	upstream string
	tls      *tls.Config // non-nil: the client speaks TLS to the proxy

	down, up atomic.Pointer[shape] // server to client, client to server; nil: as is
	lastDown atomic.Int64          // UnixNano of the last reply byte handed to the client

	done  chan struct{}
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns []net.Conn
}

// shape says how a direction forwards: chunk bytes at most per step
// (0: what one read got) at a rate of chunk bytes per gap (0: a pause of
// gap before each step), and nothing more once limit bytes have gone
// through (limit < 0: no limit).
type shape struct {
	chunk int
	gap   time.Duration
	limit int64
	sent  atomic.Int64
}

func pace(chunk int, gap time.Duration) *shape { return &shape{chunk: chunk, gap: gap, limit: -1} }

func stallAfter(n int64, chunk int, gap time.Duration) *shape {
	return &shape{chunk: chunk, gap: gap, limit: n}
}

// startShaper starts a proxy to upstream on a free loopback port; it
// stops when the test ends. With serverTLS, it terminates TLS.
func startShaper(t *testing.T, upstream string, serverTLS *tls.Config) *shaper {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &shaper{t: t, ln: ln, upstream: upstream, tls: serverTLS, done: make(chan struct{})}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *shaper) Addr() string { return p.ln.Addr().String() }

func (p *shaper) close() {
	close(p.done)
	p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// track registers c to be closed by close; false if closing already.
func (p *shaper) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.done:
		c.Close()
		return false
	default:
	}
	p.conns = append(p.conns, c)
	return true
}

func (p *shaper) accept() {
	defer p.wg.Done()
	for {
		raw, err := p.ln.Accept()
		if err != nil {
			return
		}
		// A small receive buffer, so that a client writing faster than
		// the proxy reads waits soon rather than after megabytes.
		raw.(*net.TCPConn).SetReadBuffer(64 << 10)
		if !p.track(raw) {
			return
		}
		server, err := net.Dial("tcp", p.upstream)
		if err != nil {
			raw.Close()
			continue
		}
		if !p.track(server) {
			return
		}
		client := raw
		if p.tls != nil {
			client = tls.Server(raw, p.tls)
		}
		p.wg.Add(2)
		go p.pump(server, client, &p.up, nil)
		go p.pump(client, server, &p.down, &p.lastDown)
	}
}

// pump copies src to dst as the direction's shape says: at most chunk
// bytes at a time, at chunk bytes per gap.
func (p *shaper) pump(dst io.Writer, src io.Reader, dir *atomic.Pointer[shape], last *atomic.Int64) {
	defer p.wg.Done()
	buf := make([]byte, 64<<10)
	var due time.Time
	for {
		n, err := src.Read(buf)
		for b := buf[:n]; len(b) > 0; {
			step := len(b)
			if s := dir.Load(); s != nil {
				if s.limit >= 0 {
					left := s.limit - s.sent.Load()
					if left <= 0 {
						<-p.done // stalled for good
						return
					}
					step = min(step, int(left))
				}
				pause := s.gap
				if s.chunk > 0 {
					step = min(step, s.chunk)
					pause = s.gap * time.Duration(step) / time.Duration(s.chunk)
				}
				if now := time.Now(); due.Before(now) {
					due = now
				}
				due = due.Add(pause)
				select {
				case <-time.After(time.Until(due)): // the pacing itself
				case <-p.done:
					return
				}
				s.sent.Add(int64(step))
			}
			if _, err := dst.Write(b[:step]); err != nil {
				return
			}
			if last != nil {
				last.Store(time.Now().UnixNano())
			}
			b = b[step:]
		}
		if err != nil {
			return
		}
	}
}

// testTLS returns a server config with a fresh self-signed certificate for
// 127.0.0.1, and a client config that trusts it and leaves ServerName
// empty (the dialer must take it from the address, as tls.Dialer does).
func testTLS(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "vactor-test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	server = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	client = &tls.Config{RootCAs: pool}
	return server, client
}
