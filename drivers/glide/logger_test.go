package glide_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/drivers/glide"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/valkeytest"
)

// TestCoreLogOff: glide's core logs to the console on its own (a
// refused dial: "WARN logger_core: connection creation - Failed
// connecting to ..."); the driver turns that off, so that with no
// Config.Logger nothing is logged, as with valkey-go. The failing
// engine.New runs in a child process, whose output is read.
func TestCoreLogOff(t *testing.T) {
	if addr := os.Getenv("VACTOR_GLIDE_LOG_CHILD"); addr != "" {
		cfg := config.DefaultConfig().WithAddrs(addr).WithDriver(glide.Name).WithPassword("wrong")
		if eng, err := engine.New(context.Background(), cfg); err == nil {
			eng.Close()
			t.Fatal("engine.New with a wrong password succeeded")
		}
		return
	}
	srv := valkeytest.Start(t, valkeytest.Options{Password: "right"})
	cmd := exec.Command(os.Args[0], "-test.run=^TestCoreLogOff$", "-test.count=1")
	cmd.Env = append(os.Environ(), "VACTOR_GLIDE_LOG_CHILD="+srv.Addr())
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v\n%s\n%s", err, out, stderr.String())
	}
	if all := string(out) + stderr.String(); strings.Contains(all, "logger_core") {
		t.Fatalf("glide logged:\n%s", all)
	}
	if !strings.Contains(string(out), "PASS") {
		t.Fatalf("child did not pass:\n%s", out)
	}
}
