package drivers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/drivers"
)

// A config.CredentialsProvider is what the engine hands to drivers.
func TestOptionsTakeConfigCredentialsProvider(t *testing.T) {
	var p config.CredentialsProvider = func(context.Context) (string, string, error) { return "u", "p", nil }
	o := drivers.Options{Credentials: p}
	u, pw, err := o.Credentials(context.Background())
	if u != "u" || pw != "p" || err != nil {
		t.Fatalf("Credentials() = %q, %q, %v", u, pw, err)
	}
}

// No fmt verb prints the password of Options (a driver, or the engine,
// logging the options it dials with).
func TestOptionsFormatRedactsPassword(t *testing.T) {
	const secret = "opt-Secret-Pa55word-3f2a"
	o := drivers.Options{Addr: "127.0.0.1:6379", Username: "app", Password: secret}
	// (fmt cannot reach a copy in an unexported field: it prints such
	// fields without their methods, see the type's doc.)
	for _, v := range []any{o, &o, struct{ O drivers.Options }{o}, []drivers.Options{o}} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
			out := fmt.Sprintf(verb, v)
			if strings.Contains(out, secret) {
				t.Errorf("fmt %s of %T shows the password: %s", verb, v, out)
			}
		}
	}
	if out := fmt.Sprintf("%+v", o); !strings.Contains(out, "Addr:127.0.0.1:6379") || !strings.Contains(out, "Password:[redacted]") {
		t.Errorf("%%+v = %s, want the address and a redacted password", out)
	}
}
