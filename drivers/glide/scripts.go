package glide

import (
	"crypto/sha1"
	"encoding/hex"
	"strings"
	"sync"
	"sync/atomic"
)

// What a script may return that glide 2.5.3 cannot take: a map or a set
// whose keys or members are not strings (its Go binding panics, and the
// replies of the whole batch are lost), or a RESP3 big number (its core
// aborts the process). A script returns a map, a set or a big number only
// as {map=...}, {set=...}, {big_number=...}, or as a reply of redis.call
// after redis.setresp(3): a script whose text holds none of "map", "set"
// (which "setresp" holds) and "big_number" returns none of them. Scripts
// run by SHA1 (EVALSHA) are judged by the text they were loaded or run
// with through this driver (SCRIPT LOAD, EVAL), in this process; others,
// and functions (FCALL), are not judged.

// scriptRisk is what a script's reply may do to glide.
type scriptRisk uint8

const (
	riskNone   scriptRisk = iota
	riskAlone             // a map or a set: sent in a batch of its own (alone)
	riskRefuse            // a big number: not sent (refusal)
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

// riskySHA maps the SHA1 digests (lower-case hex) of the risky scripts
// seen in SCRIPT LOAD and EVAL to their scriptRisk; riskyN counts them,
// up to maxRiskySHA (no more are kept). Shared by every Conn: a digest
// names the same script on any server.
var (
	riskySHA sync.Map
	riskyN   atomic.Int64
)

const maxRiskySHA = 10000

func isEval(name string) bool {
	return strings.EqualFold(name, "EVAL") || strings.EqualFold(name, "EVAL_RO")
}

func isEvalSHA(name string) bool {
	return strings.EqualFold(name, "EVALSHA") || strings.EqualFold(name, "EVALSHA_RO")
}

// risk judges the command args: a script run by its text or by a digest
// remembered; riskNone for any other command.
func risk(args []string) scriptRisk {
	switch {
	case len(args) < 2:
	case isEval(args[0]):
		return bodyRisk(args[1])
	case riskyN.Load() > 0 && isEvalSHA(args[0]):
		if r, ok := riskySHA.Load(strings.ToLower(args[1])); ok {
			return r.(scriptRisk)
		}
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
	if r == riskNone || riskyN.Load() >= maxRiskySHA {
		return
	}
	sum := sha1.Sum([]byte(body))
	if _, loaded := riskySHA.LoadOrStore(hex.EncodeToString(sum[:]), r); !loaded {
		riskyN.Add(1)
	}
}
