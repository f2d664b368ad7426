package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"
)

// jsonlParser reads one JSON object a line: {"key": "k", "value": "v",
// "ttl": 60}. The value is a string or a number (its text); the ttl,
// optional, a number of seconds or a string as parseTTL takes. Other
// fields are ignored; blank lines are skipped.
type jsonlParser struct {
	r    *bufio.Reader
	line int64
	raw  []byte
	buf  []byte
}

type jsonRecord struct {
	Key   *string         `json:"key"`
	Value json.RawMessage `json:"value"`
	TTL   json.RawMessage `json:"ttl"`
}

func (p *jsonlParser) next() (command, error) {
	for {
		raw, err := readLine(p.r, p.raw)
		p.raw = raw[:0]
		if err != nil {
			return command{}, err
		}
		p.line++
		raw = bytes.TrimSpace(raw)
		if len(raw) == 0 {
			continue
		}
		bad := func(reason string) (command, error) {
			return command{}, &malformedError{line: p.line, reason: reason}
		}
		if !utf8.Valid(raw) {
			// encoding/json would turn each bad byte into U+FFFD: the
			// server would get another value than the file's.
			return bad(fmt.Sprintf("JSON: invalid UTF-8 at byte %d of the line (JSON text is UTF-8; load binary values as RESP)", invalidUTF8At(raw)+1))
		}
		if at, ok := loneSurrogate(raw); ok {
			// The same for a \u escape of half a surrogate pair: no
			// character, decoded as U+FFFD.
			return bad(fmt.Sprintf(`JSON: the \u escape at byte %d of the line is half a UTF-16 surrogate pair, not a character `+
				`(it would load as U+FFFD; load binary values as RESP)`, at+1))
		}
		var rec jsonRecord
		if err := json.Unmarshal(raw, &rec); err != nil {
			// Where, not what: the line's text holds its value, which the
			// errors report never shows (see commandText).
			return bad("JSON: " + jsonReason(err) + jsonWhere(err))
		}
		if rec.Key == nil {
			return bad(`no "key" string`)
		}
		value, ok := jsonScalar(rec.Value)
		if !ok {
			return bad(`"value" must be a string or a number`)
		}
		ttl, ok := parseJSONTTL(rec.TTL)
		if !ok {
			return bad(errTTL.Error() + ", got " + string(rec.TTL))
		}
		if *rec.Key == "" {
			return bad(`empty "key" (load an empty key as RESP)`)
		}
		return setCommand(&p.buf, p.line, *rec.Key, value, ttl), nil
	}
}

// jsonReason is the text of encoding/json's error without the Go type
// names it gives for a type mismatch ("cannot unmarshal array into Go
// value of type main.jsonRecord").
func jsonReason(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field != "" {
			return fmt.Sprintf("%q must be a string, got %s", te.Field, te.Value)
		}
		return "want an object {\"key\": ..., \"value\": ...}, got " + te.Value
	}
	return err.Error()
}

// jsonWhere says where in the line encoding/json found err ("" when it
// does not say).
func jsonWhere(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) && se.Offset > 0 {
		return fmt.Sprintf(" (at byte %d of the line)", se.Offset)
	}
	return ""
}

// invalidUTF8At returns the offset of the first byte of b that is not
// valid UTF-8.
func invalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return len(b)
}

// loneSurrogate finds a \u escape of a UTF-16 surrogate (U+D800 to
// U+DFFF) that is not a high one followed by a low one: its offset in
// b, and true. encoding/json decodes it to U+FFFD without an error.
func loneSurrogate(b []byte) (int, bool) {
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' {
			continue
		}
		r, ok := escapedRune(b[i:])
		switch {
		case !ok:
			i++ // another escape (\\ included): skip the escaped byte
		case r >= 0xD800 && r < 0xDC00:
			if lo, ok := escapedRune(b[i+6:]); ok && lo >= 0xDC00 && lo < 0xE000 {
				i += 11 // a whole pair
				continue
			}
			return i, true
		case r >= 0xDC00 && r < 0xE000:
			return i, true
		default:
			i += 5
		}
	}
	return 0, false
}

// escapedRune parses a \uXXXX escape at the start of b.
func escapedRune(b []byte) (rune, bool) {
	if len(b) < 6 || b[0] != '\\' || b[1] != 'u' {
		return 0, false
	}
	n, err := strconv.ParseUint(string(b[2:6]), 16, 16)
	return rune(n), err == nil
}

// jsonScalar returns a JSON string's text or a number's literal.
func jsonScalar(raw json.RawMessage) (string, bool) {
	if len(raw) == 0 {
		return "", false
	}
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", false
		}
		return s, true
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		var n json.Number
		if err := json.Unmarshal(raw, &n); err != nil {
			return "", false
		}
		return n.String(), true
	}
	return "", false
}

// parseJSONTTL parses an optional ttl: absent or null for none, a number
// of seconds, or a string as parseTTL takes.
func parseJSONTTL(raw json.RawMessage) (d time.Duration, ok bool) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, true
	}
	if raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return 0, false
		}
		v, err := parseTTL(s)
		return v, err == nil
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil {
		return 0, false
	}
	v, err := secondsTTL(f)
	return v, err == nil
}
