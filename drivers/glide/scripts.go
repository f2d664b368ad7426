package glide

import (
	"crypto/sha1"
	"encoding/hex"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/vactor-io/vactor/drivers"
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
// through this driver (SCRIPT LOAD, EVAL), in this process. DEBUG
// PROTOCOL replies with each RESP3 type on demand.
//
// Three kinds of command may reply with anything and cannot be judged
// beforehand: EVALSHA of a script the driver has not seen, a function
// (FCALL), and a command that is not one of the servers' own (a
// module's: see known.go). Sending each alone would cost a round trip
// per command to every user of scripts loaded elsewhere, of functions and
// of modules (a pipeline of 100 module commands took 12 ms instead of
// 0.3 ms), for replies that are rarely of those shapes. So they go with
// the others until one of them is in a batch whose replies glide fails
// to convert: then each such command of that batch is learned (its
// digest, its function's name, its name) and goes alone from then on
// (learn, learned).

// scriptRisk is what a command's reply may do to glide.
type scriptRisk uint8

const (
	riskNone   scriptRisk = iota
	riskAlone             // a map or a set: sent in a batch of its own (alone)
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

// seen maps the SHA1 digests (lower-case hex) of the risky scripts seen
// in SCRIPT LOAD and EVAL to their scriptRisk, up to maxSeen (no more are
// kept). Shared by every Conn: a digest names the same script on any
// server.
var seen struct {
	mu   sync.RWMutex
	risk map[string]scriptRisk
	n    atomic.Int64 // len(risk)
}

// learned holds the commands that were in a batch whose replies glide
// could not convert, and which the driver could not judge beforehand
// (suspect): the digests of unseen scripts ("sha:" + lower-case hex),
// function names ("fn:" + name) and command names ("cmd:" + upper case),
// up to maxSeen. Shared by every Conn.
var learned struct {
	mu sync.RWMutex
	m  map[string]struct{}
	n  atomic.Int64 // len(m)
}

const maxSeen = 10000

// lowerHex returns sha (hex, any case) in lower case, false when it is
// not the length of a SHA1 digest. It does not allocate.
func lowerHex(sha string) ([2 * sha1.Size]byte, bool) {
	var buf [2 * sha1.Size]byte
	if len(sha) != len(buf) {
		return buf, false
	}
	for i := 0; i < len(sha); i++ {
		c := sha[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	return buf, true
}

// seenRisk returns the risk of the script whose digest is sha, and false
// when it is not a risky script seen. It does not allocate.
func seenRisk(sha string) (scriptRisk, bool) {
	if seen.n.Load() == 0 {
		return riskNone, false
	}
	buf, ok := lowerHex(sha)
	if !ok {
		return riskNone, false
	}
	seen.mu.RLock()
	r, ok := seen.risk[string(buf[:])]
	seen.mu.RUnlock()
	return r, ok
}

// risk judges the command args by its name (known.go), a script by its
// text or its digest, and a command it cannot judge by what it learned.
func risk(args []string) scriptRisk {
	if len(args) == 0 || args[0] == "" {
		return riskNone // not sent (errEmptyCommand)
	}
	name, known := canonical(args[0])
	if !known {
		return learnedRisk(args)
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
			return learnedRisk(args)
		}
	case "FCALL", "FCALL_RO":
		return learnedRisk(args)
	case "DEBUG":
		return debugRisk(args)
	}
	return riskNone
}

// learnedRisk is riskAlone for a suspect command the driver learned
// (learn), riskNone for the others. With nothing learned it costs one
// atomic load; it does not allocate for keys of up to 64 bytes.
func learnedRisk(args []string) scriptRisk {
	if learned.n.Load() == 0 {
		return riskNone
	}
	var buf [64]byte
	key := suspect(buf[:0], args)
	if key == nil {
		return riskNone
	}
	learned.mu.RLock()
	_, ok := learned.m[string(key)]
	learned.mu.RUnlock()
	if ok {
		return riskAlone
	}
	return riskNone
}

// suspect appends to dst, and returns, the key under which learned holds
// args, a command whose reply the driver cannot judge beforehand: EVALSHA
// of a digest not seen as risky ("sha:" + lower-case hex), FCALL ("fn:" +
// the function's name), a command not one of the servers' own ("cmd:" +
// its name in upper case); nil for the others.
func suspect(dst []byte, args []string) []byte {
	if len(args) == 0 || args[0] == "" {
		return nil
	}
	name, known := canonical(args[0])
	if !known {
		dst = append(dst, "cmd:"...)
		for i := 0; i < len(args[0]); i++ {
			c := args[0][i]
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			dst = append(dst, c)
		}
		return dst
	}
	if len(args) < 2 {
		return nil
	}
	switch name {
	case "EVALSHA", "EVALSHA_RO":
		if _, ok := seenRisk(args[1]); ok {
			return nil
		}
		if buf, ok := lowerHex(args[1]); ok {
			return append(append(dst, "sha:"...), buf[:]...)
		}
	case "FCALL", "FCALL_RO":
		return append(append(dst, "fn:"...), args[1]...)
	}
	return nil
}

// learn records the suspect commands of cmds, a batch whose replies glide
// failed to convert: they go alone from then on (learnedRisk), up to
// maxSeen of them. It reports whether it learned any.
func learn(cmds []drivers.Command) bool {
	added := false
	for _, cmd := range cmds {
		key := suspect(nil, cmd.Args)
		if key == nil {
			continue
		}
		learned.mu.Lock()
		if _, ok := learned.m[string(key)]; !ok && len(learned.m) < maxSeen {
			if learned.m == nil {
				learned.m = map[string]struct{}{}
			}
			learned.m[string(key)] = struct{}{}
			learned.n.Store(int64(len(learned.m)))
			added = true
		}
		learned.mu.Unlock()
	}
	return added
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

// remember records the digest of a risky script that args loads (SCRIPT
// LOAD) or runs by its text (EVAL: the server keeps it for EVALSHA too).
func remember(args []string) {
	var body string
	switch {
	case len(args) >= 2 && isEval(args[0]):
		body = args[1]
	case len(args) >= 3 && strings.EqualFold(args[0], "SCRIPT") && strings.EqualFold(args[1], "LOAD"):
		body = args[2]
	default:
		return
	}
	r := bodyRisk(body)
	if r == riskNone || seen.n.Load() >= maxSeen {
		return
	}
	sum := sha1.Sum([]byte(body))
	key := hex.EncodeToString(sum[:])
	seen.mu.Lock()
	defer seen.mu.Unlock()
	if _, ok := seen.risk[key]; ok || len(seen.risk) >= maxSeen {
		return
	}
	if seen.risk == nil {
		seen.risk = map[string]scriptRisk{}
	}
	seen.risk[key] = r
	seen.n.Store(int64(len(seen.risk)))
}

func isEval(name string) bool {
	return strings.EqualFold(name, "EVAL") || strings.EqualFold(name, "EVAL_RO")
}
