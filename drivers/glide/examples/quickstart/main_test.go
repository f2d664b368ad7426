package main

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/vactor-io/vactor/drivers/glide/internal/invalidptr"
	"github.com/vactor-io/vactor/valkeytest"
)

// TestMain runs the tests with GODEBUG=invalidptr=0, which the glide
// driver needs (glide.ErrInvalidPtrCheck); `make demo DRIVER=glide` runs
// the program with it.
func TestMain(m *testing.M) {
	if err := invalidptr.Reexec(); err != nil {
		fmt.Fprintln(os.Stderr, "re-exec with GODEBUG=invalidptr=0:", err)
		os.Exit(2)
	}
	os.Exit(m.Run())
}

func TestQuickstartRuns(t *testing.T) {
	srv := valkeytest.Start(t)
	t.Setenv("VALKEY_URL", "")
	t.Setenv("VALKEY_ADDR", srv.Addr())
	t.Setenv("VALKEY_DRIVER", "glide")
	if err := run(); err != nil {
		t.Fatalf("quickstart over glide: %v", err)
	}
}

// The program is examples/quickstart's but for the driver's import and
// the default driver.
func TestSameAsExamplesQuickstart(t *testing.T) {
	theirs, err := os.ReadFile("../../../../examples/quickstart/main.go")
	if err != nil {
		t.Fatal(err)
	}
	ours, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	strip := func(s string) string {
		s = s[strings.Index(s, "package main"):]
		var keep []string
		for _, line := range strings.Split(s, "\n") {
			if strings.Contains(line, "drivers/glide") {
				continue
			}
			keep = append(keep, line)
		}
		s = strings.Join(keep, "\n")
		return strings.Replace(s, `	if os.Getenv("VALKEY_DRIVER") == "" && os.Getenv("VALKEY_PROVIDER") == "" {
		cfg = cfg.WithDriver("glide")
	}
`, "", 1)
	}
	if strip(string(ours)) != strip(string(theirs)) {
		t.Fatal("drivers/glide/examples/quickstart/main.go differs from examples/quickstart/main.go beyond the driver: copy it again")
	}
}
