package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vactor-io/vactor/valkeytest"
)

// vactorStdin is vactor with stdin read from r (an *os.File for a
// redirected file) and no variable added.
func vactorStdin(t *testing.T, r io.Reader, args ...string) cliResult {
	t.Helper()
	return vactorIn(t, nil, r, args...)
}

// QA-L 2: -errors naming the input file, by the same path or another
// (a hard link, a symbolic link, a path through ..), or the file that is
// standard input, is refused with exit status 2 before the input is
// read. Before, the errors file was created over the input while it was
// read: the input was destroyed and the load stopped early, without a
// word.
func TestLoadErrorsFileIsInput(t *testing.T) {
	srv := valkeytest.Start(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "in.csv")
	text := "a,1\nbad\nb,2\n"
	if err := os.WriteFile(in, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	hard, sym := filepath.Join(dir, "hard.csv"), filepath.Join(dir, "sym.csv")
	if err := os.Link(in, hard); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(in, sym); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	check := func(r cliResult, what string) {
		t.Helper()
		if r.code != exitUsage || r.stdout != "" || !strings.Contains(r.stderr, "is the input file") {
			t.Errorf("%s: exit %d, want %d and a message\nstdout: %s\nstderr: %s", what, r.code, exitUsage, r.stdout, r.stderr)
		}
		if b, err := os.ReadFile(in); err != nil || string(b) != text {
			t.Fatalf("%s: the input now holds %q (%v)", what, b, err)
		}
	}
	for _, errs := range []string{in, hard, sym, filepath.Join(dir, "sub", "..", "in.csv")} {
		check(vactor(t, nil, "", "load", "-quiet", "-addr", srv.Addr(), "-errors", errs, in), "-errors "+errs)
	}
	f, err := os.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	check(vactorStdin(t, f, "load", "-quiet", "-addr", srv.Addr(), "-errors", hard), "stdin < in.csv, -errors hard.csv")
	eng := connect(t, false, srv.Addr())
	if n := do(t, eng, "DBSIZE"); n != int64(0) {
		t.Fatalf("DBSIZE %v: a refused load wrote", n)
	}
}

// QA-L 7: an errors file that cannot be written is found before the
// load (exit status 2, nothing loaded), and one whose writing fails
// later is not claimed as written. Before, the load ran and ended with
// "errors written to /nonexistent/dir/e".
func TestLoadErrorsFileUnwritable(t *testing.T) {
	srv := valkeytest.Start(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "in.csv")
	if err := os.WriteFile(in, []byte("a,1\nbad\nb,2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, errs := range []string{filepath.Join(dir, "nodir", "e"), dir} {
		r := vactor(t, nil, "", "load", "-quiet", "-addr", srv.Addr(), "-errors", errs, in)
		if r.code != exitUsage || r.stdout != "" || !strings.Contains(r.stderr, "-errors "+errs+": the errors file cannot be written") {
			t.Errorf("-errors %s: exit %d, want %d\nstdout: %s\nstderr: %s", errs, r.code, exitUsage, r.stdout, r.stderr)
		}
	}
	eng := connect(t, false, srv.Addr())
	if n := do(t, eng, "DBSIZE"); n != int64(0) {
		t.Fatalf("DBSIZE %v: a refused load wrote", n)
	}
	// The check leaves nothing behind: a default errors file is still
	// created only when needed.
	clean := filepath.Join(dir, "clean.csv")
	if err := os.WriteFile(clean, []byte("c,1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := vactor(t, nil, "", "load", "-quiet", "-addr", srv.Addr(), clean); r.code != exitOK {
		t.Fatalf("clean load: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(clean + ".errors"); !os.IsNotExist(err) {
		t.Fatalf("errors file of a clean load: %v", err)
	}
	// Writing fails (a full device): the summary says so.
	if _, err := os.Stat("/dev/full"); err == nil {
		r := vactor(t, nil, "", "load", "-quiet", "-addr", srv.Addr(), "-errors", "/dev/full", in)
		if r.code != exitFailed || strings.Contains(r.stdout, "errors written to") ||
			!strings.Contains(r.stdout, "the errors could not all be written to /dev/full") {
			t.Errorf("-errors /dev/full: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
		}
	}
}

// QA-L 8: a UTF-8 byte order mark (Excel's "CSV UTF-8") is dropped: the
// header is a header, and the format is found from the byte after it.
// Before, the key "\xef\xbb\xbfkey" was loaded with the value "value".
func TestLoadDropsByteOrderMark(t *testing.T) {
	srv := valkeytest.Start(t)
	dir := t.TempDir()
	csvPath := filepath.Join(dir, "bom.csv")
	if err := os.WriteFile(csvPath, []byte("\xef\xbb\xbfkey,value\nbom1,v\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := vactor(t, nil, "", "load", "-quiet", "-addr", srv.Addr(), csvPath)
	if r.code != exitOK {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	summary(t, r.stdout, 1, 1, 0, 0)
	r = vactor(t, nil, "\xef\xbb\xbf{\"key\":\"bom2\",\"value\":\"w\"}\n", "load", "-quiet", "-addr", srv.Addr())
	if r.code != exitOK {
		t.Fatalf("stdin: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	mustContain(t, "summary", r.stdout, "stdin (jsonl)")
	eng := connect(t, false, srv.Addr())
	if n := do(t, eng, "DBSIZE"); n != int64(2) {
		t.Fatalf("DBSIZE %v, want 2 (bom1, bom2)", n)
	}
	if v := do(t, eng, "MGET", "bom1", "bom2"); len(v.([]any)) != 2 || v.([]any)[0] != "v" || v.([]any)[1] != "w" {
		t.Fatalf("MGET bom1 bom2 = %v", v)
	}
}

// QA-L 9: a TTL below a millisecond expires the key (1 ms) whichever way
// it is written; before, 0.0004 made the key persistent.
func TestLoadTinyTTLExpires(t *testing.T) {
	srv := valkeytest.Start(t)
	path := filepath.Join(t.TempDir(), "t.csv")
	if err := os.WriteFile(path, []byte("x1,v,0.0004\nx2,v,400us\nx3,v,0.0005\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := vactor(t, nil, "", "load", "-quiet", "-addr", srv.Addr(), path)
	if r.code != exitOK {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	eng := connect(t, false, srv.Addr())
	for _, k := range []string{"x1", "x2", "x3"} {
		// Expired by now (1 ms) or about to: never persistent (-1).
		if ttl := do(t, eng, "PTTL", k).(int64); ttl == -1 || ttl > 1 {
			t.Errorf("PTTL %s = %d, want expired (-2) or at most 1 ms", k, ttl)
		}
	}
}

// A CSV file whose lines end in \r alone (classic Mac OS, Excel's "CSV
// (Macintosh)") is refused before anything is loaded, saying how to
// convert it. Before, encoding/csv read it as one record: two lines
// loaded "a" = "1\rb" with a TTL of 2 seconds, without a word (qa45c).
// A \r inside a quoted value of a one-line file is still a value.
func TestLoadCSVCarriageReturnLineEnds(t *testing.T) {
	srv := valkeytest.Start(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "mac.csv")
	if err := os.WriteFile(path, []byte("a,1\rb,2\r"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := vactor(t, nil, "", "load", "-quiet", "-addr", srv.Addr(), path)
	if r.code != exitFailed || !strings.Contains(r.stderr, `end in \r alone`) || !strings.Contains(r.stderr, `tr '\r' '\n'`) {
		t.Fatalf("exit %d, want %d and how to convert the file\n%s%s", r.code, exitFailed, r.stdout, r.stderr)
	}
	eng := connect(t, false, srv.Addr())
	if n := do(t, eng, "DBSIZE"); n != int64(0) {
		t.Fatalf("DBSIZE %v, want 0: nothing loaded", n)
	}
	r = vactor(t, nil, "a,\"x\ry\"", "load", "-quiet", "-format", "csv", "-addr", srv.Addr(), "-")
	if r.code != exitOK {
		t.Fatalf("a quoted \\r: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if v := do(t, eng, "GET", "a"); v != "x\ry" {
		t.Fatalf("GET a = %q, want %q", v, "x\ry")
	}
}

// A read-only replica is refused before anything is sent, naming its
// primary (qa45c: every SET failed with READONLY, one error line each:
// 20,000 for 20,000 lines; the cluster check before it does the same for
// a cluster node).
func TestLoadRefusesReadOnlyReplica(t *testing.T) {
	srv := valkeytest.Start(t)
	replica := valkeytest.Start(t, valkeytest.Options{Args: []string{"--replicaof", srv.Host(), itoa(srv.Port())}})
	dir := t.TempDir()
	path := filepath.Join(dir, "in.csv")
	if err := os.WriteFile(path, []byte("a,1\nb,2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := vactor(t, nil, "", "load", "-quiet", "-addr", replica.Addr(), path)
	if r.code != exitUsage || !strings.Contains(r.stderr, "a read-only replica of "+srv.Addr()) || !strings.Contains(r.stderr, "-addr "+srv.Addr()) {
		t.Fatalf("exit %d, want %d and the primary named\n%s%s", r.code, exitUsage, r.stdout, r.stderr)
	}
	if _, err := os.Stat(path + ".errors"); !os.IsNotExist(err) {
		t.Fatalf("an errors file: %v", err)
	}
	// A replica made writable is the operator's choice: loaded.
	do(t, connect(t, false, replica.Addr()), "CONFIG", "SET", "replica-read-only", "no")
	r = vactor(t, nil, "", "load", "-quiet", "-addr", replica.Addr(), path)
	if r.code != exitOK {
		t.Fatalf("writable replica: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// A JSON array (a .json file as most tools write one) is not JSON Lines:
// the load stops before anything is sent and says how to convert it
// (qa45c: 4,002 malformed lines for a pretty-printed array of 1,000
// objects, none saying why). From standard input, a '[' first is JSON
// too, not CSV.
func TestLoadJSONArrayRefused(t *testing.T) {
	srv := valkeytest.Start(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "arr.json")
	if err := os.WriteFile(path, []byte("[\n  {\"key\": \"a\", \"value\": \"1\"},\n  {\"key\": \"b\", \"value\": \"2\"}\n]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{path}, {"-"}} {
		stdin := ""
		if args[0] == "-" {
			stdin = "\n [{\"key\": \"a\", \"value\": \"1\"}]\n"
		}
		r := vactor(t, nil, stdin, append([]string{"load", "-quiet", "-addr", srv.Addr()}, args...)...)
		if r.code != exitFailed || !strings.Contains(r.stderr, "a JSON array, not JSON Lines") || !strings.Contains(r.stderr, "jq -c '.[]'") || r.stdout != "" {
			t.Fatalf("%s: exit %d, want %d and how to convert it\n%s%s", args[0], r.code, exitFailed, r.stdout, r.stderr)
		}
	}
	if _, err := os.Stat(path + ".errors"); !os.IsNotExist(err) {
		t.Fatalf("an errors file: %v", err)
	}
	// A CSV key that starts with '[' is still CSV.
	r := vactor(t, nil, "[tag]k,v\n", "load", "-quiet", "-addr", srv.Addr())
	if r.code != exitOK || !strings.Contains(r.stdout, "stdin (csv)") {
		t.Fatalf("a CSV key with '[': exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}
