package drivers_test

import (
	"context"
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
