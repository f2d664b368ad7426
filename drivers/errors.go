package drivers

import (
	"errors"
	"fmt"
)

// ErrUnknownDriver is returned by Lookup for a name nobody registered. The
// error it returns wraps this sentinel and names the known drivers.
// Not retryable: it is a configuration error.
var ErrUnknownDriver = errors.New("drivers: unknown driver")

// ErrUnsupported is wrapped by *UnsupportedError: the driver lacks a
// capability the configuration or the call needs. Not retryable.
var ErrUnsupported = errors.New("drivers: not supported by the driver")

// ErrClosed is wrapped by the Err of a command that failed because its
// Conn was closed, before or while it was in flight.
var ErrClosed = errors.New("drivers: connection closed")

// ErrNotSent is wrapped by the Err of a command that a driver knows it did
// not write (the connection was down before the call): the command did not
// run and may be sent again. Without it, a transport error means the
// outcome is unknown.
var ErrNotSent = errors.New("drivers: command not sent")

// UnsupportedError says which capability (a field name of Capabilities)
// a driver lacks and what needed it. It wraps ErrUnsupported.
type UnsupportedError struct {
	Driver     string // the registered name
	Capability string // "TLSConfig", "PubSub", ...
	Need       string // what asked for it, e.g. "TLS.CertFile (a client certificate)"
}

func (e *UnsupportedError) Error() string {
	s := fmt.Sprintf("driver %q does not support %s", e.Driver, e.Capability)
	if e.Need != "" {
		s += ", needed by " + e.Need
	}
	return s
}

// Unwrap returns ErrUnsupported.
func (e *UnsupportedError) Unwrap() error { return ErrUnsupported }
