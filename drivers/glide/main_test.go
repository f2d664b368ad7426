package glide_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/vactor-io/vactor/drivers/glide/internal/invalidptr"
)

func TestMain(m *testing.M) {
	// The driver needs GODEBUG=invalidptr=0 (glide.ErrInvalidPtrCheck).
	if err := invalidptr.Reexec(); err != nil {
		fmt.Fprintln(os.Stderr, "re-exec with GODEBUG=invalidptr=0:", err)
		os.Exit(2)
	}
	code := m.Run()
	stopBench()
	os.Exit(code)
}
