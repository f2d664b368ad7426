package config

import (
	"errors"
	"strconv"
	"strings"
)

// ErrInvalidConfig is the sentinel every configuration error of this package
// wraps: check it with errors.Is. The concrete error is a *FieldError.
var ErrInvalidConfig = errors.New("config: invalid configuration")

// redacted replaces a secret wherever this package would print it.
const redacted = "[redacted]"

// FieldError reports one bad setting: the field, environment variable or URL
// element it came from, the offending value and why it was rejected.
//
// Error returns a message such as
//
//	config: invalid Port "70000": must be between 1 and 65535
//
// Field is a Config field name ("Port", "Addrs[1]", "TLS.KeyFile"), an
// environment variable ("VALKEY_DIAL_TIMEOUT") or a URL element ("URL",
// "URL port", "URL dial_timeout"). Unwrap returns ErrInvalidConfig (and,
// for a TLS file that cannot be read or parsed, the error that says why).
//
// Secrets are never carried: when Field names a password, Value holds
// "[redacted]" and Error prints "[redacted]" whatever Value holds; when Field
// names a URL, or an address that holds a URL or user information, the
// user information in Value is replaced with "[redacted]".
//
// A FieldError is immutable after it is returned and safe for concurrent use.
type FieldError struct {
	Field  string // the setting: Config field, VALKEY_* variable or URL element
	Value  string // the rejected value as text; never a password
	Reason string // why it was rejected, e.g. "must be between 1 and 65535"

	// cause is the error that made the value invalid, when there is one
	// (a TLS file that cannot be read: errors.Is(err, fs.ErrNotExist)).
	cause error
}

// newFieldError builds a *FieldError, redacting the value of a secret field.
func newFieldError(field, value, reason string) *FieldError {
	return &FieldError{Field: field, Value: safeValue(field, value), Reason: reason}
}

// Error implements error. It never prints a password.
func (e *FieldError) Error() string {
	var b strings.Builder
	b.WriteString("config: invalid ")
	b.WriteString(e.Field)
	b.WriteByte(' ')
	b.WriteString(strconv.Quote(safeValue(e.Field, e.Value)))
	if e.Reason != "" {
		b.WriteString(": ")
		b.WriteString(e.Reason)
	}
	return b.String()
}

// Unwrap returns ErrInvalidConfig, and the error that made the value
// invalid when there is one (a TLS file that cannot be read or parsed).
func (e *FieldError) Unwrap() []error {
	if e.cause != nil {
		return []error{ErrInvalidConfig, e.cause}
	}
	return []error{ErrInvalidConfig}
}

// safeValue returns value as it may be shown for field.
func safeValue(field, value string) string {
	f := strings.ToLower(field)
	switch {
	case strings.Contains(f, "password"):
		return redacted
	case strings.Contains(f, "url"):
		return redactURL(value)
	case strings.Contains(f, "addr") || strings.Contains(f, "host"):
		return safeAddr(value) // a URL given as an address
	}
	return value
}

// fieldErr is a type assertion helper: the *FieldError in err, or nil.
func fieldErr(err error) *FieldError {
	var fe *FieldError
	if errors.As(err, &fe) {
		return fe
	}
	return nil
}
