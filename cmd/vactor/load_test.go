package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vactor-io/vactor/valkeytest"
)

// input is a generated load file: its text, the keys it sets with their
// values (and whether they have a TTL), and the lines of its malformed
// records.
type input struct {
	text      strings.Builder
	line      int
	values    map[string]string
	ttl       map[string]bool
	malformed []int
	lineOf    map[string]int // key -> line of its record
}

func newInput() *input {
	return &input{values: map[string]string{}, ttl: map[string]bool{}, lineOf: map[string]int{}}
}

// add appends a record of the given number of lines; key "" for a
// malformed record.
func (in *input) add(rec string, lines int, key, value string, ttl bool) {
	start := in.line + 1
	in.text.WriteString(rec)
	in.line += lines
	if key == "" {
		in.malformed = append(in.malformed, start)
		return
	}
	in.values[key], in.ttl[key], in.lineOf[key] = value, ttl, start
}

// write saves the input as name in a temporary directory.
func (in *input) write(t *testing.T, name string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(in.text.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// checkLoaded checks that every key of in holds its value, with a TTL
// where it has one.
func checkLoaded(t *testing.T, addr string, in *input) {
	t.Helper()
	eng := connect(t, false, addr)
	if n := do(t, eng, "DBSIZE"); n != int64(len(in.values)) {
		t.Fatalf("DBSIZE %v, want %d", n, len(in.values))
	}
	for k, v := range in.values {
		if got := do(t, eng, "GET", k); got != v {
			t.Fatalf("GET %q = %q, want %q", k, got, v)
		}
		ttl := do(t, eng, "PTTL", k).(int64)
		if in.ttl[k] != (ttl > 0) {
			t.Fatalf("PTTL %q = %d, want a TTL: %v", k, ttl, in.ttl[k])
		}
	}
}

// errorLines returns the entries of an errors file by kind.
func errorLines(t *testing.T, path string) (malformed []int, failed []string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		rest, ok := strings.CutPrefix(line, "line ")
		if !ok {
			rest, ok = strings.CutPrefix(line, "lines ") // a record of several lines: "lines 10-12: "
		}
		n, kind, ok2 := strings.Cut(rest, ": ")
		if !ok || !ok2 {
			t.Fatalf("errors file line %q", line)
		}
		n, _, _ = strings.Cut(n, "-")
		switch {
		case strings.HasPrefix(kind, "malformed: "):
			i, err := strconv.Atoi(n)
			if err != nil {
				t.Fatalf("errors file line %q", line)
			}
			malformed = append(malformed, i)
		case strings.HasPrefix(kind, "failed: "):
			failed = append(failed, strings.TrimSpace(line))
		default:
			t.Fatalf("errors file line %q", line)
		}
	}
	slices.Sort(malformed)
	return malformed, failed
}

// summary checks the summary line's counts.
func summary(t *testing.T, out string, commands, acked, failed, malformed int) {
	t.Helper()
	want := fmt.Sprintf("%s commands in ", groupDigits(float64(commands)))
	tail := fmt.Sprintf("%s acknowledged, %s failed, %s malformed", groupDigits(float64(acked)), groupDigits(float64(failed)), groupDigits(float64(malformed)))
	mustContain(t, "summary", out, want, tail)
}

func csvInput() *input {
	in := newInput()
	in.add("key,value,ttl\n", 1, "", "", false)
	in.malformed = nil // the header is not malformed
	for i := range 3000 {
		k, v := fmt.Sprintf("csv:%d", i), fmt.Sprintf("value %d", i)
		switch {
		case i%700 == 5:
			in.add(k+",too,many,fields\n", 1, "", "", false)
		case i%700 == 9:
			in.add(k+",v,-5\n", 1, "", "", false) // negative TTL
		case i%700 == 11:
			in.add(k+",va\"lue\n", 1, "", "", false) // a bare quote
		case i%100 == 3:
			// A quoted value with a comma, a quote and a newline.
			v = "a,b \"q\"\nsecond line"
			in.add(k+",\"a,b \"\"q\"\"\nsecond line\",1h\n", 2, k, v, true)
		case i%2 == 0:
			in.add(k+","+v+",60\n", 1, k, v, true)
		default:
			in.add(k+","+v+"\n", 1, k, v, false)
		}
	}
	return in
}

func jsonlInput() *input {
	in := newInput()
	for i := range 3000 {
		k, v := fmt.Sprintf("json:%d", i), fmt.Sprintf("value \"%d\"", i)
		kj, vj := strconv.Quote(k), strconv.Quote(v)
		switch {
		case i%600 == 1:
			in.add(`{"key": `+kj+`, "value": `+vj+"\n", 1, "", "", false) // unterminated
		case i%600 == 2:
			in.add(`{"value": `+vj+"}\n", 1, "", "", false) // no key
		case i%600 == 3:
			in.add(`{"key": `+kj+`, "value": {"x": 1}}`+"\n", 1, "", "", false)
		case i%600 == 4:
			in.add(`{"key": `+kj+`, "value": "v", "ttl": "soon"}`+"\n", 1, "", "", false)
		case i%600 == 5:
			in.add("\n", 1, "", "", false) // blank: skipped, not malformed
			in.malformed = in.malformed[:len(in.malformed)-1]
		case i%3 == 0:
			in.add(`{"key": `+kj+`, "value": `+vj+`, "ttl": 120}`+"\n", 1, k, v, true)
		case i%3 == 1:
			in.add(`{"key": `+kj+`, "value": 42.5, "ttl": "2m", "other": true}`+"\n", 1, k, "42.5", true)
		default:
			in.add(`{"key":`+kj+`,"value":`+vj+`}`+"\n", 1, k, v, false)
		}
	}
	return in
}

// respCmd renders a command in RESP.
func respCmd(args ...string) (text string, lines int) {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	return b.String(), strings.Count(b.String(), "\n")
}

func respInput() *input {
	in := newInput()
	for i := range 3000 {
		k, v := fmt.Sprintf("resp:%d", i), fmt.Sprintf("value %d", i)
		switch {
		case i%800 == 7:
			in.add("garbage line\r\nmore garbage\r\n", 2, "", "", false) // one error for both lines
		case i%800 == 8:
			text, _ := respCmd("SET", k, v)
			cut := text[:strings.Index(text, "$"+strconv.Itoa(len(v)))] // the value is missing
			in.add(cut, strings.Count(cut, "\n"), "", "", false)
		case i%800 == 9:
			in.add("*2\r\n$3\r\nGET\r\n$999x\r\n", 4, "", "", false)
		case i%100 == 13:
			v = "multi\nline\r\nvalue"
			text, n := respCmd("set", k, v) // lower case, and newlines inside
			in.add(text, n, k, v, false)
		case i%10 == 1:
			text, n := respCmd("SET", k, v, "EX", "300") // through Write
			in.add(text, n, k, v, true)
		default:
			text, n := respCmd("SET", k, v)
			in.add(text, n, k, v, false)
		}
	}
	text, n := respCmd("RPUSH", "list", "a", "b")
	in.add(text, n, "list", "", false)
	delete(in.values, "list") // checked separately
	return in
}

func TestLoadFormats(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   *input
	}{
		{"data.csv", csvInput()},
		{"data.jsonl", jsonlInput()},
		{"data.resp", respInput()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := valkeytest.Start(t)
			path := tc.in.write(t, tc.name)
			r := vactor(t, nil, "", "load", "-addr", srv.Addr(), path)
			if r.code != exitFailed {
				t.Fatalf("exit %d, want %d (malformed records)\n%s%s", r.code, exitFailed, r.stdout, r.stderr)
			}
			commands := len(tc.in.values)
			if tc.name == "data.resp" {
				commands++ // the RPUSH
				eng := connect(t, false, srv.Addr())
				if n := do(t, eng, "LLEN", "list"); n != int64(2) {
					t.Fatalf("LLEN list = %v", n)
				}
				do(t, eng, "DEL", "list")
			}
			summary(t, r.stdout, commands, commands, 0, len(tc.in.malformed))
			mustContain(t, "summary", r.stdout, "("+strings.TrimPrefix(filepath.Ext(tc.name), ".")+")", "errors written to "+path+".errors")
			malformed, failed := errorLines(t, path+".errors")
			if !slices.Equal(malformed, tc.in.malformed) || len(failed) > 0 {
				t.Fatalf("errors file: malformed lines %v, want %v; failed %q", malformed, tc.in.malformed, failed)
			}
			// The first errors are also on stderr, with their line.
			if first := tc.in.malformed[0]; !strings.Contains(r.stderr, fmt.Sprintf("vactor load: line %d: malformed: ", first)) &&
				!strings.Contains(r.stderr, fmt.Sprintf("vactor load: lines %d-", first)) {
				t.Fatalf("stderr does not name the first malformed record, line %d:\n%s", first, r.stderr)
			}
			checkLoaded(t, srv.Addr(), tc.in)
		})
	}
}

// A CSV quote opened on one line and not closed there takes every line
// up to where the parser finds out with it: the errors file and the
// summary name that span, not just its first line (qa-AM F1: line 10's
// stray quote swallowed 49,989 good records, reported as "1 malformed"
// at line 10 alone).
func TestLoadCSVUnclosedQuoteNamesItsLines(t *testing.T) {
	srv := valkeytest.Start(t)
	var b strings.Builder
	for i := 1; i <= 30; i++ {
		switch i {
		case 10:
			b.WriteString("k10,\"27 inch monitor\n") // never closed
		case 20:
			b.WriteString("k20,\"quoted\"\n") // its first quote closes line 10's
		default:
			fmt.Fprintf(&b, "k%d,v%d\n", i, i)
		}
	}
	path := filepath.Join(t.TempDir(), "stray.csv")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	r := vactor(t, nil, "", "load", "-addr", srv.Addr(), path)
	if r.code != exitFailed {
		t.Fatalf("exit %d, want %d\n%s%s", r.code, exitFailed, r.stdout, r.stderr)
	}
	summary(t, r.stdout, 19, 19, 0, 1) // lines 1-9 and 21-30
	mustContain(t, "summary", r.stdout, "the malformed records took 10 more lines with them: none of those was loaded")
	errs, err := os.ReadFile(path + ".errors")
	if err != nil {
		t.Fatal(err)
	}
	mustContain(t, "errors file", string(errs), "lines 10-20: malformed: CSV: ",
		"a quoted field opened on line 10 is not closed properly by line 20: the 10 lines after line 10, up to that one, were read as part of it")
	mustContain(t, "stderr", r.stderr, "vactor load: lines 10-20: malformed: ")
	eng := connect(t, false, srv.Addr())
	if n := do(t, eng, "DBSIZE"); n != int64(19) {
		t.Fatalf("DBSIZE = %v, want 19", n)
	}
}

// RESP lines skipped after a malformed command, up to the next array, are
// counted with it, and an inline command is named as such (qa-AM F3: a
// file of inline commands, which redis-cli --pipe passes on, reported
// "1 malformed" and its other lines nowhere).
func TestLoadRESPSkippedLinesCounted(t *testing.T) {
	srv := valkeytest.Start(t)
	set, _ := respCmd("SET", "good", "1")
	in := "SET i1 v1\r\nSET i2 v2\r\nSET i3 v3\r\n" + set + "*2\r\n$3\r\nGET\r\n#bad\r\nleft over\r\n"
	path := filepath.Join(t.TempDir(), "inline.resp")
	if err := os.WriteFile(path, []byte(in), 0o600); err != nil {
		t.Fatal(err)
	}
	r := vactor(t, nil, "", "load", "-addr", srv.Addr(), path)
	if r.code != exitFailed {
		t.Fatalf("exit %d, want %d\n%s%s", r.code, exitFailed, r.stdout, r.stderr)
	}
	summary(t, r.stdout, 1, 1, 0, 2)
	mustContain(t, "summary", r.stdout, "the malformed records took 6 more lines with them")
	errs, err := os.ReadFile(path + ".errors")
	if err != nil {
		t.Fatal(err)
	}
	mustContain(t, "errors file", string(errs),
		`lines 1-3: malformed: want a RESP array ('*'), got an inline command ("SET" and its arguments: `,
		"(the lines after it, up to the next array ('*'), were skipped with it)",
		"lines 11-15: malformed: argument 2 of 2: want a bulk string")
	eng := connect(t, false, srv.Addr())
	if n := do(t, eng, "DBSIZE"); n != int64(1) {
		t.Fatalf("DBSIZE = %v, want 1 (the SET between them)", n)
	}
}

// A clean input loads with exit status 0 and no errors file; standard
// input works, with the format found from the first byte.
func TestLoadCleanAndStdin(t *testing.T) {
	srv := valkeytest.Start(t)
	in := newInput()
	for i := range 2000 {
		k := fmt.Sprintf("k%d", i)
		in.add(`{"key":"`+k+`","value":"v"}`+"\n", 1, k, "v", false)
	}
	errPath := filepath.Join(t.TempDir(), "errs")
	r := vactor(t, nil, in.text.String(), "load", "-addr", srv.Addr(), "-errors", errPath)
	if r.code != exitOK {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	summary(t, r.stdout, 2000, 2000, 0, 0)
	mustContain(t, "summary", r.stdout, "vactor load: stdin (jsonl)")
	if _, err := os.Stat(errPath); !os.IsNotExist(err) {
		t.Fatalf("errors file exists after a clean load: %v", err)
	}
	checkLoaded(t, srv.Addr(), in)
}

// -strict stops at the first malformed record; what came before is
// loaded.
func TestLoadStrict(t *testing.T) {
	srv := valkeytest.Start(t)
	path := filepath.Join(t.TempDir(), "x.txt")
	if err := os.WriteFile(path, []byte("a,1\nb,2\nc,3,4,5\nd,4\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := vactor(t, nil, "", "load", "-addr", srv.Addr(), "-strict", path)
	if r.code != exitFailed {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	mustContain(t, "summary", r.stdout, "(csv)", "stopped at the malformed record of line 3 (-strict)")
	summary(t, r.stdout, 2, 2, 0, 1)
	eng := connect(t, false, srv.Addr())
	if v := do(t, eng, "MGET", "a", "b", "d"); fmt.Sprint(v) != "[1 2 <nil>]" {
		t.Fatalf("MGET a b d = %v", v)
	}
}

// Commands the server refuses are written to the errors file with their
// line: SETs merged into MSETs (CSV, refused for memory) and commands
// written as they are (RESP, WRONGTYPE).
func TestLoadFailedCommands(t *testing.T) {
	t.Run("csv", func(t *testing.T) {
		srv := valkeytest.Start(t, valkeytest.Options{Args: []string{"--maxmemory", "1", "--maxmemory-policy", "noeviction"}})
		in := newInput()
		for i := range 2000 {
			k := fmt.Sprintf("k%d", i)
			in.add(k+",v\n", 1, k, "v", false)
		}
		path := in.write(t, "oom.csv")
		r := vactor(t, nil, "", "load", "-addr", srv.Addr(), path)
		if r.code != exitFailed {
			t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		summary(t, r.stdout, 2000, 0, 2000, 0)
		_, failed := errorLines(t, path+".errors")
		if len(failed) != 2000 {
			t.Fatalf("%d failed entries, want 2000", len(failed))
		}
		for _, f := range failed {
			var line int
			var key string
			if _, err := fmt.Sscanf(f, "line %d: failed: SET %q", &line, &key); err != nil {
				t.Fatalf("entry %q: %v", f, err)
			}
			if in.lineOf[key] != line || !strings.Contains(f, "OOM") {
				t.Fatalf("entry %q: %s is on line %d", f, key, in.lineOf[key])
			}
		}
		mustContain(t, "stderr", r.stderr, "more errors: see "+path+".errors")
	})
	t.Run("resp", func(t *testing.T) {
		srv := valkeytest.Start(t)
		in := newInput()
		var wrong []int
		for i := range 1000 {
			k := fmt.Sprintf("k%d", i)
			text, n := respCmd("SET", k, "v")
			in.add(text, n, k, "v", false)
			if i%100 == 50 {
				wrong = append(wrong, in.line+1)
				text, n := respCmd("LPUSH", k, "x") // k holds a string
				in.add(text, n, "", "", false)
				in.malformed = in.malformed[:len(in.malformed)-1]
			}
		}
		path := in.write(t, "wrongtype.resp")
		r := vactor(t, nil, "", "load", "-addr", srv.Addr(), path)
		if r.code != exitFailed {
			t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		summary(t, r.stdout, 1010, 1000, 10, 0)
		_, failed := errorLines(t, path+".errors")
		var lines []int
		for _, f := range failed {
			var line int
			if _, err := fmt.Sscanf(f, "line %d: failed: LPUSH", &line); err != nil || !strings.Contains(f, "WRONGTYPE") {
				t.Fatalf("entry %q: %v", f, err)
			}
			lines = append(lines, line)
		}
		slices.Sort(lines)
		if !slices.Equal(lines, wrong) {
			t.Fatalf("failed lines %v, want %v", lines, wrong)
		}
		checkLoaded(t, srv.Addr(), in)
	})
}

// Loading into a cluster: the batch writer routes by slot.
func TestLoadCluster(t *testing.T) {
	c := valkeytest.StartClusterT(t)
	in := newInput()
	for i := range 1500 {
		k := fmt.Sprintf("ck%d", i)
		in.add(k+","+k+"-value\n", 1, k, k+"-value", false)
	}
	path := in.write(t, "c.csv")
	// Without -cluster a node of the cluster is refused before anything
	// is sent (qa-AM: the keys of other nodes' slots failed one by one).
	r := vactor(t, nil, "", "load", "-addr", c.Addrs()[0], path)
	if r.code != exitUsage || !strings.Contains(r.stderr, "this node belongs to a cluster: run with -cluster") {
		t.Fatalf("load into a cluster node without -cluster: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = vactor(t, nil, "", "load", "-cluster", "-addr", c.Addrs()[0], path)
	if r.code != exitOK {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	summary(t, r.stdout, 1500, 1500, 0, 0)
	eng := connect(t, true, c.Addrs()...)
	for k, v := range in.values {
		if got := do(t, eng, "GET", k); got != v {
			t.Fatalf("GET %q = %v, want %q", k, got, v)
		}
	}
}

// A load whose server is gone stops reading once every command has failed
// without an answer for -give-up, and says after which line (qa-AM F4: a
// killed server's load read to the end of a million lines, failing each,
// 63 s and 700,000 error lines, and never said where to resume). The
// commands written when it was killed lost their answer: the errors file
// says "outcome unknown" for each, and the summary counts them apart from
// the other failures, since the server may have applied them (qa45c:
// 3,998 of one run's "failed" commands had been).
func TestLoadGivesUpOnGoneServer(t *testing.T) {
	srv := valkeytest.Start(t)
	errs := filepath.Join(t.TempDir(), "errors")
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	written := make(chan int, 1)
	go func() { // an endless input, until the load stops reading it
		defer pw.Close()
		for i := 1; i <= 50_000_000; i++ {
			if _, err := fmt.Fprintf(pw, "k%d,v\n", i); err != nil {
				written <- i
				return
			}
			if i == 20_000 {
				_ = srv.Kill()
			}
		}
		written <- -1
	}()
	start := time.Now()
	r := vactorIn(t, nil, pr, "load", "-quiet", "-give-up", "1s", "-errors", errs, "-addr", srv.Addr(), "-")
	pr.Close()
	if r.code != exitFailed || !strings.Contains(r.stdout, "vactor load: stopped: for 1s every command failed without an answer from the server") ||
		!strings.Contains(r.stdout, "was sent (load the input from there once the server is back)") {
		t.Fatalf("exit %d after %v\n%s%s", r.code, time.Since(start).Round(time.Millisecond), r.stdout, r.stderr)
	}
	b, err := os.ReadFile(errs)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "outcome unknown"); n == 0 {
		t.Errorf("no command lost its answer when the server was killed mid-load:\n%s", r.stdout)
	} else if want := fmt.Sprintf("vactor load: %s of the failed commands were written and their answer lost", groupDigits(float64(n))); !strings.Contains(r.stdout, want) {
		t.Errorf("the summary does not say %q (%d in the errors file):\n%s", want, n, r.stdout)
	}
	t.Logf("stopped after %v:\n%s", time.Since(start).Round(time.Millisecond), r.stdout)
	if n := <-written; n == -1 {
		t.Fatal("the load read all 50,000,000 lines")
	}
}

// A server only slow (paused 1.5 s, failing nothing) while the input has
// commands the client refuses itself (MULTI: no server involved) is
// waited for: those refusals are not failures without an answer
// (review-32b B2: the load gave up in 2 of 2 runs).
func TestLoadLocalRefusalsDoNotGiveUp(t *testing.T) {
	srv := valkeytest.Start(t)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	resp := func(args ...string) string { s, _ := respCmd(args...); return s }
	go func() {
		defer pw.Close()
		fmt.Fprint(pw, resp("MULTI")) // refused locally
		for i := range 1000 {
			fmt.Fprint(pw, resp("SET", fmt.Sprint("a", i), "v"))
		}
		if err := srv.Pause(); err != nil {
			t.Error(err)
		}
		fmt.Fprint(pw, resp("MULTI"))
		for i := range 100 {
			fmt.Fprint(pw, resp("SET", fmt.Sprint("b", i), "v"))
		}
		time.Sleep(1500 * time.Millisecond) // the server is slow this long: what the test is about
		if err := srv.Resume(); err != nil {
			t.Error(err)
		}
		for i := range 1000 {
			fmt.Fprint(pw, resp("SET", fmt.Sprint("c", i), "v"))
		}
	}()
	r := vactorIn(t, nil, pr, "load", "-quiet", "-format", "resp", "-give-up", "500ms", "-errors", t.TempDir()+"/e", "-addr", srv.Addr(), "-")
	if strings.Contains(r.stdout, "stopped: for") || !strings.Contains(r.stdout, "2,100 acknowledged, 2 failed") {
		t.Fatalf("exit %d: want every SET loaded and the two MULTIs failed\n%s%s", r.code, r.stdout, r.stderr)
	}
}
