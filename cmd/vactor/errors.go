package main

import (
	"errors"
	"fmt"
)

// errHoldsData is returned when the server holds data and the bench was
// not told where it may write.
var errHoldsData = errors.New("the server holds data")

// A malformedError is a record that is not a command: its line, and why.
type malformedError struct {
	line   int64
	reason string
}

func (e *malformedError) Error() string {
	return fmt.Sprintf("line %d: %s", e.line, e.reason)
}

// errTTL is the reason of every bad TTL.
var errTTL = errors.New("ttl must be a number of seconds or a duration such as 90s or 1h, not negative")

// errRESPTruncated ends a command cut short by the end of the input.
var errRESPTruncated = errors.New("the input ends inside the command")
