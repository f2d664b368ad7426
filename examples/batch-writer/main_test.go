package main

import (
	"bytes"
	"context"
	"regexp"
	"strconv"
	"testing"

	"github.com/valkey-io/valkey-go"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/examples/internal/exampletest"
	"github.com/vactor-io/vactor/valkeytest"
)

// The example loads its keys into a real server, draws the progress bar
// and prints the final rate.
func TestBatchWriterExampleRuns(t *testing.T) {
	srv := valkeytest.Start(t)
	for _, v := range config.ServerEnvVars {
		t.Setenv(v, "")
	}
	t.Setenv("VALKEY_ADDR", srv.Addr())
	var stdout, stderr bytes.Buffer
	const n = 20000
	if err := run(context.Background(), []string{"-n", strconv.Itoa(n), "-value-size", "32"}, &stdout, &stderr); err != nil {
		t.Fatalf("batch-writer: %v\nstderr: %s", err, stderr.String())
	}
	t.Logf("stdout: %s", stdout.String())
	if !regexp.MustCompile(`loaded 20000 keys \(32-byte values\) in \S+: \d+ ops/s, 0 failed`).Match(stdout.Bytes()) {
		t.Fatalf("no final rate line in the output:\n%s", stdout.String())
	}
	if !bytes.Contains(stderr.Bytes(), []byte("[##############################] 100% 20000/20000 acked")) {
		t.Fatalf("no complete progress bar on stderr:\n%q", stderr.String())
	}

	c, err := valkey.NewClient(valkey.ClientOption{InitAddress: []string{srv.Addr()}, DisableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	if size, err := c.Do(ctx, c.B().Dbsize().Build()).AsInt64(); err != nil || size != n {
		t.Fatalf("DBSIZE = %d, %v; want %d", size, err, n)
	}
	for _, i := range []int{0, 1, n / 2, n - 1} {
		v, err := c.Do(ctx, c.B().Get().Key("bulk:"+strconv.Itoa(i)).Build()).ToString()
		if err != nil || len(v) != 32 {
			t.Fatalf("GET bulk:%d = %q, %v", i, v, err)
		}
	}
	// Bad flags are an error, not a panic.
	for _, args := range [][]string{{"-n", "-1"}, {"extra"}, {"-nope"}} {
		if err := run(context.Background(), args, &stdout, &stderr); err == nil {
			t.Fatalf("%q accepted", args)
		}
	}
}

func TestMain(m *testing.M) { exampletest.Main(m, main) }

// A Ctrl-C in the middle of a load stops the example, which stops its
// throwaway server (a server process of its own group, which the
// terminal's SIGINT does not reach) and exits with an error.
func TestBatchWriterExampleInterrupted(t *testing.T) {
	out, code := exampletest.Interrupt(t, "acked", "-n", "100000000")
	if code == 0 {
		t.Fatalf("exit status 0 after an interrupted load; output:\n%s", out)
	}
}
