package glide

import (
	"crypto/sha1"
	"encoding/hex"
	"strings"
	"sync"
	"sync/atomic"
)

// What a command may reply that glide 2.5.3 cannot take: a map or a set
// whose keys or members are not strings (its Go binding panics, and the
// replies of the whole batch are lost), or a RESP3 big number or
// attribute (its core aborts the process).
//
// A script returns a map, a set or a big number only as {map=...},
// {set=...}, {big_number=...}, or as a reply of redis.call after
// redis.setresp(3): a script whose text holds none of "map", "set"
// (which "setresp" holds) and "big_number" returns none of them (unless
// it builds those words at run time: t['big_'..'number']). Scripts run
// by SHA1 (EVALSHA) are judged by the text they were loaded or run with
// through this driver (SCRIPT LOAD, EVAL), in this process; a digest the
// driver has not seen, and a function (FCALL), may reply with anything.
// So may a command that is not one of the servers' own (a module's:
// see known.go). DEBUG PROTOCOL replies with each RESP3 type on demand.

// scriptRisk is what a command's reply may do to glide.
type scriptRisk uint8

const (
	riskNone   scriptRisk = iota
	riskAlone             // a map or a set, or unknown: sent in a batch of its own (alone)
	riskRefuse            // a big number or an attribute: not sent (refusal)
)

// bodyRisk judges a script by its text.
func bodyRisk(body string) scriptRisk {
	switch {
	case strings.Contains(body, "big_number"):
		return riskRefuse
	case strings.Contains(body, "map"), strings.Contains(body, "set"):
		return riskAlone
	}
	return riskNone
}

// seen maps the SHA1 digests (lower-case hex) of the scripts seen in
// SCRIPT LOAD and EVAL to their scriptRisk: up to maxSeen harmless ones
// and maxSeen risky ones (no more are kept: a digest not kept is judged
// unseen, and goes alone). Risky ones are counted apart, so that many
// harmless scripts (texts built with their values, say) cannot push a
// big-number script out and let its EVALSHA through. Shared by every
// Conn: a digest names the same script on any server.
var seen struct {
	mu     sync.RWMutex
	risk   map[string]scriptRisk
	harmN  int         // harmless digests kept
	riskyN int         // risky digests kept
	full   atomic.Bool // harmN == maxSeen: harmless scripts are not hashed
}

const maxSeen = 10000

// seenRisk returns the risk of the script whose digest is sha (hex, any
// case), and false when it was not seen. It does not allocate.
func seenRisk(sha string) (scriptRisk, bool) {
	var buf [2 * sha1.Size]byte
	if len(sha) != len(buf) {
		return riskNone, false
	}
	for i := 0; i < len(sha); i++ {
		c := sha[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	seen.mu.RLock()
	r, ok := seen.risk[string(buf[:])]
	seen.mu.RUnlock()
	return r, ok
}

// risk judges the command args by its name (known.go), and a script by
// its text or its digest.
func risk(args []string) scriptRisk {
	if len(args) == 0 || args[0] == "" {
		return riskNone // not sent (errEmptyCommand)
	}
	name, known := canonical(args[0])
	if !known {
		return riskAlone // a module's command, or one newer than coreCommands
	}
	switch name {
	case "EVAL", "EVAL_RO":
		if len(args) >= 2 {
			return bodyRisk(args[1])
		}
	case "EVALSHA", "EVALSHA_RO":
		if len(args) >= 2 {
			if r, ok := seenRisk(args[1]); ok {
				return r
			}
			return riskAlone // a script the driver has not seen
		}
	case "FCALL", "FCALL_RO":
		return riskAlone // a function: its code is not known (see docs/drivers.md)
	case "DEBUG":
		return debugRisk(args)
	}
	return riskNone
}

// debugRisk judges DEBUG args: DEBUG PROTOCOL <type> replies with a value
// of the RESP3 type asked for: a map with integer keys (map), a set of
// integers (set), a big number (bignum), an attribute before its reply
// (attrib); each of the last two aborted the process in glide 2.5.3's
// core.
func debugRisk(args []string) scriptRisk {
	if len(args) < 3 || !strings.EqualFold(args[1], "PROTOCOL") {
		return riskNone
	}
	switch strings.ToLower(args[2]) {
	case "bignum", "attrib":
		return riskRefuse
	case "map", "set":
		return riskAlone
	}
	return riskNone
}

// remember records the digest of a script that args loads (SCRIPT LOAD)
// or runs by its text (EVAL: the server keeps it for EVALSHA too), with
// its risk.
func remember(args []string) {
	if len(args) < 2 {
		return
	}
	var body string
	switch {
	case isEval(args[0]):
		body = args[1]
	case len(args) >= 3 && strings.EqualFold(args[0], "SCRIPT") && strings.EqualFold(args[1], "LOAD"):
		body = args[2]
	default:
		return
	}
	r := bodyRisk(body)
	if r == riskNone && seen.full.Load() {
		return
	}
	sum := sha1.Sum([]byte(body))
	var buf [2 * sha1.Size]byte
	hex.Encode(buf[:], sum[:])
	seen.mu.RLock()
	_, ok := seen.risk[string(buf[:])]
	seen.mu.RUnlock()
	if ok {
		return
	}
	seen.mu.Lock()
	defer seen.mu.Unlock()
	if _, ok := seen.risk[string(buf[:])]; ok {
		return
	}
	n := &seen.harmN
	if r != riskNone {
		n = &seen.riskyN
	}
	if *n >= maxSeen {
		return
	}
	if seen.risk == nil {
		seen.risk = map[string]scriptRisk{}
	}
	seen.risk[string(buf[:])] = r
	*n++
	seen.full.Store(seen.harmN >= maxSeen)
}

func isEval(name string) bool {
	return strings.EqualFold(name, "EVAL") || strings.EqualFold(name, "EVAL_RO")
}
