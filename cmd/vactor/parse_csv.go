package main

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// csvParser reads key,value[,ttl] records (RFC 4180: quoted fields may
// hold commas, quotes and newlines). A first record "key,value" or
// "key,value,ttl" (any case) is a header and skipped. Empty lines are
// skipped.
type csvParser struct {
	r     *csv.Reader
	buf   []byte
	first bool
}

func newCSVParser(r io.Reader) *csvParser {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	return &csvParser{r: cr, first: true}
}

func (p *csvParser) next() (command, error) {
	for {
		rec, err := p.r.Read()
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				p.first = false
				me := &malformedError{line: int64(pe.StartLine), reason: "CSV: " + pe.Err.Error()}
				if pe.Line > pe.StartLine {
					// A quoted field opened on StartLine and not closed
					// there took every line up to Line with it (a stray
					// quote in a value: reported as one bad line, the
					// tens of thousands of lines it swallowed were named
					// nowhere).
					me.last = int64(pe.Line)
					me.reason += fmt.Sprintf(" (a quoted field opened on line %d is not closed properly by line %d: "+
						"the %d lines after line %d, up to that one, were read as part of it and none of them was loaded; "+
						"fix the quote and load the file again)", pe.StartLine, pe.Line, pe.Line-pe.StartLine, pe.StartLine)
				}
				return command{}, me
			}
			return command{}, err
		}
		line, _ := p.r.FieldPos(0)
		if p.first {
			p.first = false
			if isCSVHeader(rec) {
				continue
			}
		}
		if len(rec) != 2 && len(rec) != 3 {
			return command{}, &malformedError{line: int64(line),
				reason: "want key,value[,ttl], got " + strconv.Itoa(len(rec)) + " field(s)"}
		}
		var ttl string
		if len(rec) == 3 {
			ttl = rec[2]
		}
		d, err := parseTTL(ttl)
		if err != nil {
			return command{}, &malformedError{line: int64(line), reason: err.Error() + ", got " + strconv.Quote(ttl)}
		}
		if rec[0] == "" {
			// The server takes an empty key, but a record without one is
			// a mistake in the data far more often (a missing column).
			return command{}, &malformedError{line: int64(line), reason: "empty key (load an empty key as RESP)"}
		}
		c := setCommand(&p.buf, int64(line), rec[0], rec[1], d)
		return c, nil
	}
}

func isCSVHeader(rec []string) bool {
	want := []string{"key", "value", "ttl"}
	if len(rec) < 2 || len(rec) > 3 {
		return false
	}
	for i, f := range rec {
		if !strings.EqualFold(strings.TrimSpace(f), want[i]) {
			return false
		}
	}
	return true
}
