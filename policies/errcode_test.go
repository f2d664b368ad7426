package policies_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/vactor-io/vactor/policies"
	"github.com/vactor-io/vactor/valkeytest"
)

// Error replies of a real server, as valkey-go returns them: the reply
// keeps its text (ReplyErrorText), the *ValkeyError lost a leading "ERR ",
// and ServerErrorCode / IsRetryable read the same code from both.
func TestServerErrorCodeReal(t *testing.T) {
	srv := valkeytest.Start(t)
	c, err := valkey.NewClient(valkey.ClientOption{InitAddress: []string{srv.Addr()}, DisableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	do := func(args ...string) valkey.ValkeyResult { return c.Do(ctx, c.B().Arbitrary(args...).Build()) }
	if err := do("SET", "str", "v").Error(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		cmd       []string
		want      string // the reply's start, as sent
		retryable bool
		ambiguous bool // valkey-go's stripped error cannot tell its code
	}{
		{[]string{"EXEC"}, "ERR EXEC without MULTI", false, false},
		{[]string{"DISCARD"}, "ERR DISCARD without MULTI", false, false},
		{[]string{"SWAPDB", "0", "99999"}, "ERR DB index is out of range", false, false},
		{[]string{"NOSUCHCMD"}, "ERR unknown command", false, false},
		{[]string{"LPUSH", "str", "x"}, "WRONGTYPE ", false, false},
		{[]string{"EVALSHA", strings.Repeat("f", 40), "0"}, "NOSCRIPT ", false, false},
		{[]string{"SCRIPT", "KILL"}, "NOTBUSY ", false, false},
		{[]string{"HELLO", "4"}, "NOPROTO ", false, false},
		{[]string{"AUTH", "nobody", "wrong"}, "WRONGPASS ", false, false},
		{[]string{"EVAL", "return redis.error_reply('LOADING pretend')", "0"}, "LOADING pretend", true, false},
		{[]string{"EVAL", "return redis.error_reply('ERR LOADING pretend')", "0"}, "ERR LOADING pretend", false, true},
	} {
		res := do(tc.cmd...)
		msg, err := res.ToMessage()
		text, ok := policies.ReplyErrorText(&msg)
		if !ok || !strings.HasPrefix(text, tc.want) {
			t.Errorf("%v: ReplyErrorText = %q, %v; want %q...", tc.cmd, text, ok, tc.want)
		}
		code := policies.ErrorCode(tc.want)
		if got := policies.ErrorCode(text); got != code {
			t.Errorf("%v: ErrorCode(%q) = %q, want %q", tc.cmd, text, got, code)
		}
		// Where only valkey-go's stripped error is left, the known codes
		// give the same answer (the last case is the one they cannot).
		if !tc.ambiguous {
			if got := policies.ServerErrorCode(err); got != code {
				t.Errorf("%v: ServerErrorCode(%q) = %q, want %q", tc.cmd, err, got, code)
			}
			if got := policies.IsRetryable(err); got != tc.retryable {
				t.Errorf("%v: IsRetryable(%q) = %v, want %v", tc.cmd, err, got, tc.retryable)
			}
		}
	}
	// Not error replies.
	ok := do("GET", "str")
	msg, _ := ok.ToMessage()
	if text, isErr := policies.ReplyErrorText(&msg); isErr || text != "" {
		t.Errorf("ReplyErrorText of a string reply = %q, %v", text, isErr)
	}
	if got := policies.ServerErrorCode(do("GET", "missing").Error()); got != "" {
		t.Errorf("ServerErrorCode of a nil reply = %q", got)
	}
}

func TestStrippedErrorCode(t *testing.T) {
	for text, want := range map[string]string{
		"EXEC without MULTI":                         "ERR",
		"DISCARD without MULTI":                      "ERR",
		"unknown command 'x'":                        "ERR",
		"WRONGTYPE Operation against a key":          "WRONGTYPE",
		"MOVED 3999 127.0.0.1:6381":                  "MOVED",
		"CLUSTERDOWN The cluster is down":            "CLUSTERDOWN",
		"READONLY You can't write against a replica": "READONLY",
		"": "ERR",
	} {
		if got := policies.StrippedErrorCode(text); got != want {
			t.Errorf("StrippedErrorCode(%q) = %q, want %q", text, got, want)
		}
	}
}
