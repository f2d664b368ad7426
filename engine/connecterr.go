package engine

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/valkey-io/valkey-go"
)

// Telling what is wrong when a connection cannot be opened. A TLS or ACL
// misconfiguration fails every dial the same way, so engine.New reports
// it at once, in words, with the cause reachable by errors.As (see
// ConnectError).

// credentialsError is the error of Config.CredentialsProvider, as the
// engine hands it to the driver: connectError recognises it.
type credentialsError struct{ err error }

func (e *credentialsError) Error() string { return "credentials provider: " + e.err.Error() }
func (e *credentialsError) Unwrap() error { return e.err }

// credentials returns the user name and password a new connection
// authenticates with: Config.CredentialsProvider's, or Username and
// Password.
func (e *Engine) credentials(ctx context.Context) (user, pass string, err error) {
	p := e.cfg.CredentialsProvider
	if p == nil {
		return e.cfg.Username, e.cfg.Password, nil
	}
	// On a goroutine of its own, so that a provider that ignores its ctx
	// (a secrets manager that hangs) fails the dial when the ctx ends,
	// naming the provider, rather than the server's silence. A panic
	// there would end the program: it fails the dial. One call at a time:
	// the dials that need credentials while one runs share its answer, so
	// a provider that hangs holds one goroutine, not one per dial (each
	// breaker probe, each Dedicated dial).
	call := func(pctx context.Context) (a credsAnswer) {
		defer func() {
			if r := recover(); r != nil {
				a = credsAnswer{err: &credentialsError{fmt.Errorf("panic: %v", r)}}
			}
		}()
		if a.user, a.pass, a.err = p(pctx); a.err != nil {
			a = credsAnswer{err: &credentialsError{a.err}}
		}
		return a
	}
	id := e.creds.begin()
	for {
		f := e.creds.flight(call, ctx, e.cfg.DialTimeout)
		select {
		case <-f.ctx.Done():
			select {
			case <-f.done:
			default:
				// The shared call outlived its deadline (the provider
				// ignores its ctx): call again if this dial has time.
				if ctx.Err() == nil {
					continue
				}
			}
		case <-f.done:
		case <-ctx.Done():
		}
		select {
		case <-f.done:
			if f.a.err != nil && f.expired && ctx.Err() == nil {
				// The shared call failed at its own deadline, one of an
				// earlier dial's: this dial has time left for a call of
				// its own.
				continue
			}
			e.creds.end(id, false)
			return f.a.user, f.a.pass, f.a.err
		case <-ctx.Done():
			e.creds.end(id, true)
			return "", "", &credentialsError{fmt.Errorf("%w: %w", errProviderLate, ctx.Err())}
		}
	}
}

// credsAnswer is a credentials provider call's result.
type credsAnswer struct {
	user, pass string
	err        error
}

// credsFlight is a credentials provider call under way: done is closed
// once a is set.
type credsFlight struct {
	done    chan struct{}
	a       credsAnswer
	ctx     context.Context // the call's: once it has ended, new dials do not join the call
	expired bool            // the call returned after its ctx ended
}

// flight returns the provider call under way, or starts one (call, on a
// goroutine of its own, with a context that has ctx's values and ends
// after timeout: the call outlives the dial that started it when others
// wait for it).
func (c *credsCalls) flight(call func(context.Context) credsAnswer, ctx context.Context, timeout time.Duration) *credsFlight {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur != nil && c.cur.ctx.Err() == nil {
		return c.cur
	}
	// None under way, or one past its deadline that has not returned (a
	// provider that ignores its ctx): a new call, so that one hung call
	// does not fail every later dial; but no more than maxProviderCalls
	// goroutines in the provider at once, however long it hangs.
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), max(timeout, time.Millisecond))
	f := &credsFlight{done: make(chan struct{}), ctx: pctx}
	if c.running >= maxProviderCalls {
		cancel()
		f.a = credsAnswer{err: &credentialsError{fmt.Errorf("%w: %d calls still running past their deadline, none made until one returns", errProviderLate, c.running)}}
		close(f.done)
		return f
	}
	c.cur = f
	c.running++
	go func() {
		defer cancel()
		a := call(pctx)
		c.mu.Lock()
		c.running--
		if c.cur == f {
			c.cur = nil
		}
		c.mu.Unlock()
		f.a, f.expired = a, pctx.Err() != nil
		close(f.done)
	}()
	return f
}

// errProviderLate is the error of a credentials provider that did not
// return before its context ended.
var errProviderLate = errors.New("did not return before its context ended")

// credsCalls are the credentials provider's calls under way, with when
// each began: a dial that times out while one begun since the dial is
// under way failed waiting for the provider (the driver's dial ctx,
// which began first, ends before the provider's own). Dials only: a
// mutex is cheap here.
type credsCalls struct {
	mu    sync.Mutex
	next  uint64
	since map[uint64]time.Time
	// late is when the latest call that its ctx ended began: the dial's
	// ctx and the call's end about together, and the driver may report
	// the dial's after the call has ended.
	late time.Time
	// cur is the provider call under way, shared by the dials that wait
	// for credentials meanwhile (flight); running counts the calls not
	// returned, cur and those past their deadline.
	cur     *credsFlight
	running int
}

// maxProviderCalls bounds the credentials provider's calls under way: one
// shared by the dials, and the ones that did not return by their deadline
// (each made a DialTimeout after the last). Past it, dials fail at once,
// naming the provider, until one returns.
const maxProviderCalls = 4

func (c *credsCalls) begin() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.since == nil {
		c.since = map[uint64]time.Time{}
	}
	c.next++
	c.since[c.next] = time.Now()
	return c.next
}

// end ends call id; late when its ctx ended first.
func (c *credsCalls) end(id uint64, late bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t := c.since[id]; late && t.After(c.late) {
		c.late = t
	}
	delete(c.since, id)
}

// pending reports whether a call that began between since and until is
// under way, or ended because its ctx did.
func (c *credsCalls) pending(since, until time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	in := func(t time.Time) bool { return !t.Before(since) && !t.After(until) }
	if in(c.late) {
		return true
	}
	for _, t := range c.since {
		if in(t) {
			return true
		}
	}
	return false
}

// unsentDial marks err, the failed dial of the connection a call was to
// go out on, as not sent: it matches ErrNotSent, its text unchanged
// (qa-AO AO3, qa-AS AS3: a Tx, Watch, Dedicated or blocking call whose
// connection could not be made failed with a *ConnectError that did not
// say nothing was sent). Not for an error that may follow a write: a
// ConnectError itself does not match ErrNotSent, since a command written
// on an earlier connection can fail with one inside ErrOutcomeUnknown.
func unsentDial(err error) error {
	if err == nil || errors.Is(err, ErrNotSent) || errors.Is(err, ErrClosed) {
		return err
	}
	return &unsentError{err}
}

// unsentError is unsentDial's error.
type unsentError struct{ err error }

func (e *unsentError) Error() string   { return e.err.Error() }
func (e *unsentError) Unwrap() []error { return []error{e.err, ErrNotSent} }

// connectError returns the *ConnectError of a failed dial of addr.
func (e *Engine) connectError(addr string, err error) error {
	return e.connectErrorSince(addr, err, time.Now().Add(-e.cfg.DialTimeout))
}

// connectErrorSince is connectError for a dial that began at begun: a
// timeout while a credentials provider call begun early in the dial (in
// its first half) is still under way, or ended late, is the provider's
// (the dial waited for it). The calls are the engine's, not tied to their
// dials: a call begun later, by another dial, is not this one's (a fast
// provider called by other dials while a stalled server made this one
// time out was blamed, review-29).
func (e *Engine) connectErrorSince(addr string, err error, begun time.Time) error {
	if err == nil || errors.Is(err, ErrClosed) {
		return err
	}
	if errors.Is(err, context.Canceled) && e.closed.Load() {
		// Close abandoned the dial (it cancels the engine's context):
		// ErrClosed, not the ctx error, which would tell a caller whose
		// own ctx is live that its command may have run (qa-AV AV4).
		return fmt.Errorf("%w: the connection to %s was being opened", ErrClosed, addr)
	}
	var ce *ConnectError
	if errors.As(err, &ce) {
		return err
	}
	if errors.Is(err, context.DeadlineExceeded) && e.cfg.CredentialsProvider != nil && e.creds.pending(begun, begun.Add(e.cfg.DialTimeout/2)) {
		err = &credentialsError{fmt.Errorf("%w: %w", errProviderLate, err)}
	}
	reason, extra := explainConnect(err, e.opts.TLS != nil)
	return &ConnectError{Addr: addr, Reason: reason, Err: err, extra: extra}
}

// explainConnect says what is wrong in a failed dial's err, when it can
// tell, and returns the *ServerError or tls.AlertError made from it.
func explainConnect(err error, tlsOn bool) (string, []error) {
	var (
		ve       *valkey.ValkeyError
		cred     *credentialsError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		verify   *tls.CertificateVerificationError
		record   tls.RecordHeaderError
	)
	if alert, ok := remoteAlert(err); ok {
		return alertReason(alert), []error{alert}
	}
	var op *net.OpError
	switch {
	case errors.As(err, &cred) && errors.Is(err, errProviderLate):
		return "Config.CredentialsProvider did not return within the dial timeout (Config.DialTimeout): the connection waited for it, not for the server", nil
	case errors.As(err, &cred):
		return "Config.CredentialsProvider failed", nil
	case errors.As(err, &op) && op.Op == "dial" && errors.Is(err, syscall.ECONNRESET):
		// The TCP connect itself was reset, before any handshake: a
		// server being killed or restarted (its listening socket closing
		// with connections in its backlog).
		return "the connection was reset while it was being made (the server is going down or restarting?)", nil
	case errors.As(err, &ve):
		se, _ := mapError(ve).(*ServerError)
		if se == nil {
			return "", nil
		}
		return handshakeRefusal(se), []error{se}
	case errors.As(err, &unknown):
		return "TLS: the server's certificate is signed by an authority the client does not trust " +
			"(set TLS.CAFile, or RootCAs in TLS.Config, to the CA that signed it)", nil
	case errors.As(err, &hostname):
		return fmt.Sprintf("TLS: the server's certificate is not valid for %q, the name checked "+
			"(TLS.ServerName when set, else the host dialled): use a name the certificate holds", hostname.Host), nil
	case errors.As(err, &invalid):
		if invalid.Reason == x509.Expired {
			return "TLS: the server's certificate has expired or is not valid yet", nil
		}
		return "TLS: the server's certificate is not valid", nil
	case errors.As(err, &verify):
		return "TLS: the server's certificate failed verification", nil
	case errors.As(err, &record):
		return "TLS: the server did not answer in TLS (a plain TCP port dialled with TLS.Enabled?)", nil
	case !tlsOn && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)):
		return "the server closed the connection during the handshake (a TLS port dialled without TLS.Enabled, " +
			"a server at its maxclients limit, or the network cut the connection?)", nil
	case tlsOn && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)):
		// A TLS server at its maxclients limit closes the connection in
		// the TLS handshake, before it could send its error reply.
		return "the server closed the connection during the TLS handshake (a server that refused the client's " +
			"certificate or requires one, a server at its maxclients limit, or the network cut the connection?)", nil
	case strings.Contains(err.Error(), "received unknown message type"):
		return "the server did not answer in RESP (not a Valkey or Redis server at the address?)", nil
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused (no server listens at the address)", nil
	case (errors.Is(err, context.DeadlineExceeded) || isTimeout(err)) && tlsOn:
		return "no answer within the dial timeout (Config.DialTimeout, or the deadline of the ctx): " +
			"a plain TCP port does not answer a TLS handshake", nil
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return "no answer within the dial timeout (Config.DialTimeout, the Valkey handshake within ReadTimeout/WriteTimeout too, or the deadline of the ctx)", nil
	}
	return "", nil
}

// handshakeRefusal says why the server refused the connection's
// handshake (HELLO AUTH, CLIENT SETNAME, SELECT) with se.
func handshakeRefusal(se *ServerError) string {
	if se.Prefix == "ERR" && strings.Contains(se.Message, "DB index") {
		return "the server refused SELECT of Config.DB (it has fewer databases: its databases setting)"
	}
	if se.Prefix == "ERR" && strings.Contains(se.Message, "max number of clients") {
		return "the server is at its maxclients limit and refused the connection " +
			"(close connections it holds, CLIENT LIST shows them, or raise its maxclients setting)"
	}
	switch se.Prefix {
	case "WRONGPASS":
		return "authentication failed: wrong user name or password, or the user is disabled"
	case "NOAUTH":
		return "the server requires authentication (set Password, and Username for an ACL user, or CredentialsProvider)"
	case "NOPERM":
		return "the ACL user lacks a permission the connection's handshake needs (HELLO, CLIENT SETNAME, SELECT)"
	}
	return "the server refused the connection's handshake"
}

// remoteAlert returns the TLS alert the server ended the connection with,
// if err is one. crypto/tls reports an alert received from the peer as a
// *net.OpError "remote error" around a value of its unexported alert type
// (a uint8, as tls.AlertError), which callers cannot match: it is made a
// tls.AlertError here.
func remoteAlert(err error) (tls.AlertError, bool) {
	var a tls.AlertError
	if errors.As(err, &a) {
		return a, true
	}
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "remote error" || op.Err == nil {
		return 0, false
	}
	v := reflect.ValueOf(op.Err)
	if v.Kind() != reflect.Uint8 || v.Type().PkgPath() != "crypto/tls" {
		return 0, false
	}
	return tls.AlertError(v.Uint()), true
}

// TLS alert codes a server sends about the client's certificate (RFC 8446
// section 6.2).
const (
	alertHandshakeFailure       = 40
	alertBadCertificate         = 42
	alertUnsupportedCertificate = 43
	alertCertificateRevoked     = 44
	alertCertificateExpired     = 45
	alertCertificateUnknown     = 46
	alertUnknownCA              = 48
	alertAccessDenied           = 49
	alertProtocolVersion        = 70
	alertCertificateRequired    = 116
)

// alertReason says what an alert from the server means for the client.
func alertReason(a tls.AlertError) string {
	switch a {
	case alertCertificateRequired:
		return "TLS: the server requires a client certificate (mutual TLS: set TLS.CertFile and TLS.KeyFile, or Certificates in TLS.Config)"
	case alertCertificateExpired:
		return "TLS: the server refused the client certificate: it has expired (renew the certificate in TLS.CertFile)"
	case alertUnknownCA:
		return "TLS: the server refused the client certificate: the server does not trust its issuer (use a certificate signed by a CA in the server's tls-ca-cert-file)"
	case alertCertificateRevoked:
		return "TLS: the server refused the client certificate: it has been revoked"
	case alertBadCertificate, alertUnsupportedCertificate, alertCertificateUnknown, alertAccessDenied:
		return "TLS: the server refused the client certificate (check TLS.CertFile and TLS.KeyFile against the server's tls-ca-cert-file)"
	case alertHandshakeFailure:
		return "TLS: the server refused the handshake (it may require a client certificate, or share no TLS version or cipher with the client)"
	case alertProtocolVersion:
		return "TLS: the server shares no TLS version with the client"
	}
	return "TLS: the server ended the connection with an alert"
}

// isTimeout reports whether err is a network timeout.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
