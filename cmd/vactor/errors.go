package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
)

// errHoldsData is returned when the server holds data and the bench was
// not told where it may write.
var errHoldsData = errors.New("the server holds data")

// A malformedError is a record that is not a command: its line, and why.
type malformedError struct {
	line   int64
	reason string
	// last is the record's last line when it spans several (a CSV quoted
	// field not closed where it should be): every line from line to last
	// was read as part of the record and none of them loaded. 0 for a
	// record of one line.
	last int64
}

func (e *malformedError) Error() string {
	if e.last > e.line {
		return fmt.Sprintf("lines %d-%d: %s", e.line, e.last, e.reason)
	}
	return fmt.Sprintf("line %d: %s", e.line, e.reason)
}

// skipped returns how many input lines after its first the malformed
// record took with it (0 for a record of one line).
func (e *malformedError) skipped() int64 {
	return max(e.last-e.line, 0)
}

// errTTL is the reason of every bad TTL.
var errTTL = errors.New("ttl must be a number of seconds or a duration such as 90s or 1h, not negative")

// errRESPTruncated ends a command cut short by the end of the input.
var errRESPTruncated = errors.New("the input ends inside the command")

// cliHints rewrites the hints of the engine's connection errors, written
// for library users (Config and TLS fields), for the CLI's flags and
// variables: pairs of the engine's text and the CLI's.
var cliHintPairs = []string{
	"(set Password, and Username for an ACL user, or CredentialsProvider)",
	"(give -password, and -user for an ACL user; or VALKEY_PASSWORD and VALKEY_USERNAME)",
	"(set TLS.CAFile, or RootCAs in TLS.Config, to the CA that signed it)",
	"(give -tls-ca, or VALKEY_TLS_CA_FILE, the CA that signed it)",
	"(TLS.ServerName when set, else the host dialled)",
	"(VALKEY_TLS_SERVER_NAME when set, else the host dialled)",
	"dialled with TLS.Enabled?",
	"dialled with -tls?",
	"without TLS.Enabled",
	"without -tls",
	"(Config.DialTimeout, the Valkey handshake within ReadTimeout/WriteTimeout too, or the deadline of the ctx)",
	"(VALKEY_DIAL_TIMEOUT, the Valkey handshake within VALKEY_READ_TIMEOUT/VALKEY_WRITE_TIMEOUT too, or the command's -timeout)",
	"(Config.DialTimeout, or the deadline of the ctx)",
	"(VALKEY_DIAL_TIMEOUT, or the command's -timeout)",
	"(mutual TLS: set TLS.CertFile and TLS.KeyFile, or Certificates in TLS.Config)",
	"(mutual TLS: give -tls-cert and -tls-key)",
	"Config.CredentialsProvider failed",
	"the credentials provider failed",
	"refused SELECT of Config.DB",
	"refused SELECT of the database the URL names (VALKEY_DB)",
	"set Config.ClusterMode or VALKEY_CLUSTER_MODE=true",
	"give -cluster",
	"to reach a standalone server, leave ClusterMode off ",
	"to reach a standalone server, drop -cluster ",
	"(VALKEY_CLUSTER_MODE unset or false)",
	"(and unset VALKEY_CLUSTER_MODE)",
}

var cliHints = strings.NewReplacer(cliHintPairs...)

// cliError is an engine error whose text names the CLI's flags (cliHints);
// errors.Is and errors.As see the engine's error.
type cliError struct {
	err  error
	text string
}

func (e *cliError) Error() string { return e.text }
func (e *cliError) Unwrap() error { return e.err }

// forCLI returns err with its hints rewritten for the CLI (nil for nil).
func forCLI(err error) error {
	if err == nil {
		return nil
	}
	text := cliHints.Replace(err.Error())
	if text == err.Error() {
		return err
	}
	return &cliError{err: err, text: text}
}

// newEngine is engine.New with its error's hints for the CLI (forCLI).
func newEngine(ctx context.Context, cfg config.Config) (*engine.Engine, error) {
	eng, err := engine.New(ctx, cfg)
	return eng, forCLI(err)
}
