package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vactor-io/vactor/valkeytest"
)

// QA-L 3: a bench that cannot delete its keys does not exit 0. A user
// who may not UNLINK at all is refused before any key is written; one
// who may UNLINK only the first key (so the check passes) gets exit
// status 1 and the keys that are left, named. Before, both exited 0 with
// the keys left and the message above the table.
func TestBenchCannotDeleteItsKeys(t *testing.T) {
	srv := valkeytest.Start(t)
	eng := connect(t, false, srv.Addr())
	do(t, eng, "ACL", "SETUSER", "nodel", "on", ">pw", "~*", "&*", "+@all", "-unlink", "-del")
	do(t, eng, "ACL", "SETUSER", "somedel", "on", ">pw", "~*", "&*", "+@all", "-unlink", "-del", "(+unlink ~vactor:bench:0)")
	args := func(user string) []string {
		return []string{"bench", "-addr", srv.Addr(), "-user", user, "-password", "pw", "-duration", "300ms", "-warmup", "100ms",
			"-keys", "20", "-op", "set", "-concurrency", "2", "-contenders", "vactor"}
	}

	r := vactor(t, nil, "", args("nodel")...)
	if r.code != exitFailed || !strings.Contains(r.stderr, "could not delete its keys afterwards, so it writes none") {
		t.Fatalf("user without UNLINK: exit %d, want %d\nstdout: %s\nstderr: %s", r.code, exitFailed, r.stdout, r.stderr)
	}
	if n := do(t, eng, "DBSIZE"); n != int64(0) {
		t.Fatalf("DBSIZE %v after a refused bench", n)
	}

	r = vactor(t, nil, "", args("somedel")...)
	if r.code != exitFailed {
		t.Fatalf("user with UNLINK of one key: exit %d, want %d\nstdout: %s\nstderr: %s", r.code, exitFailed, r.stdout, r.stderr)
	}
	mustContain(t, "stdout", r.stdout, "SET, 2 goroutine(s)")
	left := do(t, eng, "DBSIZE").(int64)
	if left == 0 {
		t.Fatalf("no key left: the test's ACL let the bench delete them\n%s", r.stderr)
	}
	mustContain(t, "stderr", r.stderr, "could not delete the keys vactor:bench:0 .. vactor:bench:19", "NOPERM",
		itoa(int(left))+" of its keys are left on the server: vactor:bench:")
	do(t, eng, "FLUSHALL")
}

// QA-L 4: in sentinel mode the peers (valkey-go, go-redis) measure the
// primary the sentinels name, as vactor does, and so does the server's
// CPU column. Before, they dialled the default localhost:6379: valkey-go
// failed, go-redis showed 0 ops/s with no error.
func TestBenchSentinelPeers(t *testing.T) {
	s := valkeytest.StartSentinelT(t)
	p, err := s.Primary()
	if err != nil {
		t.Fatal(err)
	}
	jsonPath := filepath.Join(t.TempDir(), "r.json")
	env := []string{"VALKEY_SENTINEL_MASTER=" + s.MasterName(), "VALKEY_SENTINEL_ADDRS=" + strings.Join(s.Addrs(), ",")}
	r := vactor(t, env, "", "bench", "-duration", "300ms", "-warmup", "100ms", "-keys", "200", "-op", "get,set",
		"-concurrency", "2", "-contenders", "vactor,valkey-go,go-redis", "-json", jsonPath)
	if r.code != exitOK {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	rep := readReport(t, jsonPath)
	for _, c := range rep.Cases {
		if len(c.Results) != 3 {
			t.Fatalf("%s: %d contenders", c.Op, len(c.Results))
		}
		for _, cc := range c.Results {
			checkSane(t, c, cc, 1)
		}
	}
	eng := connect(t, false, p.Addr())
	if n := do(t, eng, "DBSIZE"); n != int64(0) {
		t.Fatalf("DBSIZE %v on the primary after the bench", n)
	}
}

// QA-L 10: a -html-assets the page template would refuse, and -json or
// -html files that cannot be written, are usage errors found before any
// run (before, the whole bench ran first).
func TestBenchChecksOutputsFirst(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"-html-assets", "file:///tmp/", "-html", filepath.Join(dir, "h.html")}, "-html-assets \"file:///tmp/\""},
		{[]string{"-html-assets", "javascript:alert(1)"}, "-html-assets"},
		{[]string{"-json", filepath.Join(dir, "nodir", "x.json")}, "-json " + filepath.Join(dir, "nodir", "x.json") + ": cannot be written"},
		{[]string{"-html", filepath.Join(dir, "nodir", "x.html")}, "-html " + filepath.Join(dir, "nodir", "x.html") + ": cannot be written"},
		{[]string{"-json", dir}, "-json " + dir + ": cannot be written"},
	} {
		args := append([]string{"bench", "-addr", "127.0.0.1:1"}, tc.args...)
		r := vactor(t, nil, "", args...)
		if r.code != exitUsage || r.stdout != "" || !strings.Contains(r.stderr, tc.msg) {
			t.Errorf("%q: exit %d, want %d with %q\nstdout: %s\nstderr: %s", tc.args, r.code, exitUsage, tc.msg, r.stdout, r.stderr)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("the checks left files: %v", ents)
	}
}
