package glide_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/vactor-io/vactor/drivers/glide"
)

func TestMain(m *testing.M) {
	// The driver needs GODEBUG=invalidptr=0 (glide.ErrInvalidPtrCheck):
	// the exported Reexec restarts the test binary with it.
	if err := glide.Reexec(); err != nil {
		fmt.Fprintln(os.Stderr, "re-exec with GODEBUG=invalidptr=0:", err)
		os.Exit(2)
	}
	code := m.Run()
	stopBench()
	os.Exit(code)
}
