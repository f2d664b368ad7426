package policies

import (
	"errors"
	"strings"

	"github.com/valkey-io/valkey-go"
)

// ErrorCode returns the code of an error reply from its text as the server
// sent it: the first word ("ERR", "WRONGTYPE", "MOVED", "NOSCRIPT", ...).
func ErrorCode(text string) string {
	code, _, _ := strings.Cut(text, " ")
	return code
}

// ReplyErrorText returns the text of the error reply msg as the server
// sent it, and true; "" and false when msg is not an error reply.
// valkey-go's *ValkeyError (msg.Error()) drops a leading "ERR "; msg
// itself keeps the whole text.
func ReplyErrorText(msg *valkey.ValkeyMessage) (string, bool) {
	if _, ok := valkey.IsValkeyErr(msg.Error()); !ok {
		return "", false
	}
	// On an error reply ToString returns the reply's own text (and the
	// stripped error).
	text, _ := msg.ToString()
	return text, true
}

// StrippedErrorCode returns the code of an error reply from the text of
// valkey-go's *ValkeyError, from which valkey-go removed a leading "ERR "
// ("ERR EXEC without MULTI" arrives as "EXEC without MULTI"): the first
// word when it is one of the codes Valkey and Redis send (ASK, BUSY,
// BUSYGROUP, CROSSSLOT, LOADING, MOVED, NOAUTH, NOPERM, WRONGTYPE and the
// rest of their error prefixes as of Valkey 8 and Redis 7), "ERR"
// otherwise. Use it only where the reply itself (ReplyErrorText) is gone:
// a module's own error code is not in the list and reads as "ERR".
func StrippedErrorCode(text string) string {
	code := ErrorCode(text)
	if _, ok := knownCodes[code]; ok {
		return code
	}
	return "ERR"
}

// knownCodes are the error codes Valkey and Redis send (as of Valkey 8
// and Redis 7): the first word of their error replies.
var knownCodes = map[string]struct{}{
	"ERR": {}, "ASK": {}, "BUSY": {}, "BUSYGROUP": {}, "BUSYKEY": {},
	"CLUSTERDOWN": {}, "CROSSSLOT": {}, "DENIED": {}, "EXECABORT": {},
	"LOADING": {}, "MASTERDOWN": {}, "MISCONF": {}, "MOVED": {}, "NOAUTH": {},
	"NOGROUP": {}, "NOPERM": {}, "NOPROTO": {}, "NOREPLICAS": {}, "NOSCRIPT": {},
	"NOTBUSY": {}, "OOM": {}, "READONLY": {}, "REDIRECT": {}, "TRYAGAIN": {},
	"UNBLOCKED": {}, "UNKILLABLE": {}, "WRONGPASS": {}, "WRONGTYPE": {},
}

// ServerErrorCode returns the code of an error reply ("ERR", "LOADING",
// "MOVED", ...), or "" when err is not an error reply (a transport error,
// a nil reply, nil). For an error that has a ServerErrorCode method (the
// engine's *ServerError, built from the reply as the server sent it) it is
// that code; for valkey-go's *ValkeyError, whose text lost its "ERR ",
// StrippedErrorCode of the text.
func ServerErrorCode(err error) string {
	var se interface{ ServerErrorCode() string }
	if errors.As(err, &se) {
		return se.ServerErrorCode()
	}
	var ve *valkey.ValkeyError
	if !errors.As(err, &ve) || ve.IsNil() {
		return ""
	}
	return StrippedErrorCode(ve.Error())
}
