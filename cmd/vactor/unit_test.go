package main

import (
	"bufio"
	"errors"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// Every value falls in a bucket whose range holds it, buckets are
// ordered, and a bucket is at most 1/64 of its values wide.
func TestHistogramBuckets(t *testing.T) {
	check := func(v uint64) {
		i := bucketOf(v)
		lo, hi := bucketRange(i)
		if i < histBuckets-1 && (v < lo || v > hi) {
			t.Fatalf("value %d in bucket %d [%d, %d]", v, i, lo, hi)
		}
		if lo >= subBuckets && float64(hi-lo+1)/float64(lo) > 1.0/64+1e-9 {
			t.Fatalf("bucket %d [%d, %d] too wide", i, lo, hi)
		}
	}
	for v := range uint64(5000) {
		check(v)
	}
	for shift := range 36 {
		for _, d := range []uint64{0, 1, 63, 64, 65} {
			v := uint64(1)<<shift + d
			check(v)
			check(v - 1)
		}
	}
	for i := 1; i < histBuckets; i++ {
		_, prevHi := bucketRange(i - 1)
		lo, _ := bucketRange(i)
		if lo != prevHi+1 {
			t.Fatalf("bucket %d starts at %d, bucket %d ends at %d", i, lo, i-1, prevHi)
		}
	}
	if bucketOf(1<<62) != histBuckets-1 {
		t.Fatal("a huge value is not in the last bucket")
	}
}

// Quantiles of a histogram are within a bucket's width of the exact
// ones; merging and adding keep the counts.
func TestHistogramQuantiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var a, b histogram
	var all []time.Duration
	for i := range 100_000 {
		d := time.Duration(rng.ExpFloat64() * float64(200*time.Microsecond))
		all = append(all, d)
		if i%2 == 0 {
			a.record(d)
		} else {
			b.record(d)
		}
	}
	slices.Sort(all)
	l := merge([]*histogram{&a}).add(merge([]*histogram{&b}))
	if l.total() != 100_000 || !l.valid() {
		t.Fatalf("total %d, valid %v", l.total(), l.valid())
	}
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		exact := all[int(q*float64(len(all)))-1]
		got := l.quantile(q)
		if diff := float64(got-exact) / float64(exact); diff > 0.02 || diff < -0.02 {
			t.Fatalf("q%.3f: %s, exact %s", q, got, exact)
		}
	}
	if (latencies{}).quantile(0.5) != 0 {
		t.Fatal("empty histogram has a median")
	}
	if (latencies{Buckets: []int{3, 2}, Counts: []uint64{1, 1}}).valid() {
		t.Fatal("unordered buckets are valid")
	}
}

func TestParseTTL(t *testing.T) {
	for s, want := range map[string]time.Duration{
		"": 0, "0": 0, "60": time.Minute, "1.5": 1500 * time.Millisecond, "90s": 90 * time.Second, "1h": time.Hour, " 250ms ": 250 * time.Millisecond,
		// QA-L 9: a positive TTL below a millisecond is 1 ms, not none
		// (0.0004 made the key persistent while 400us expired it), and
		// both forms round to the nearest millisecond.
		"0.0004": time.Millisecond, "400us": time.Millisecond, "0.0005": time.Millisecond, "1ns": time.Millisecond,
		"0.0015": 2 * time.Millisecond, "1500us": 2 * time.Millisecond, "1.2ms": time.Millisecond, "0s": 0, "0.0": 0,
	} {
		if got, err := parseTTL(s); err != nil || got != want {
			t.Errorf("parseTTL(%q) = %s, %v; want %s", s, got, err, want)
		}
	}
	for raw, want := range map[string]time.Duration{"0.0001": time.Millisecond, `"100us"`: time.Millisecond, "0.0016": 2 * time.Millisecond, "0": 0} {
		if got, ok := parseJSONTTL([]byte(raw)); !ok || got != want {
			t.Errorf("parseJSONTTL(%s) = %s, %v; want %s", raw, got, ok, want)
		}
	}
	for _, s := range []string{"-1", "-1s", "soon", "1e300", "NaN"} {
		if _, err := parseTTL(s); err == nil {
			t.Errorf("parseTTL(%q) accepted", s)
		}
	}
}

// The RESP parser counts lines as an editor does, including newlines in
// values, recovers after bad records, and reports a command cut short
// by the end of the input.
func TestRESPParser(t *testing.T) {
	in := "*1\r\n$4\r\nPING\r\n" + // line 1
		"\r\n" + // 4: blank
		"*3\n$3\nset\n$1\nk\n$3\na\nb\n" + // 5: \n line ends, a value with a newline: 5..12
		"junk\r\n$junk\r\n" + // 13, 14: one error
		"*2\r\n$3\r\nGET\r\n" + // 15: cut short by the next command
		"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n" + // 18
		"*2\r\n$3\r\nGET\r\n$5\r\nab" // 23: cut by the end
	p := &respParser{r: bufio.NewReader(strings.NewReader(in))}
	type rec struct {
		line int64
		what string
	}
	var got []rec
	for {
		c, err := p.next()
		if errors.Is(err, io.EOF) {
			break
		}
		var me *malformedError
		switch {
		case errors.As(err, &me):
			got = append(got, rec{me.line, "malformed"})
		case err != nil:
			t.Fatal(err)
		default:
			got = append(got, rec{c.line, strings.Join(c.args, " ")})
			if c.set != (c.args[0] == "set") {
				t.Fatalf("set flag %v for %q", c.set, c.args)
			}
		}
	}
	want := []rec{{1, "PING"}, {5, "set k a\nb"}, {13, "malformed"}, {15, "malformed"}, {18, "GET k"}, {23, "malformed"}}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
}

// A command's identity is its own allocation, even for one-byte
// arguments (which Go interns), and the index finds lines until their
// window is released.
func TestLineIndex(t *testing.T) {
	x := newLineIndex(4)
	var cmds [][]string
	for i := range 10 {
		c := setCommand(new([]byte), int64(i+1), "k", "v", 0)
		cmds = append(cmds, c.args)
		x.add(identity(c.args), c.line)
		if w := x.seal(); w != nil && i == 3 {
			if got := x.lookup(cmds[0]); got != 1 {
				t.Fatalf("line of the first command %d", got)
			}
			x.release(w)
		}
	}
	if got := x.lookup(cmds[0]); got != 0 {
		t.Fatalf("a released command still has line %d", got)
	}
	for i := 4; i < 10; i++ {
		if got := x.lookup(cmds[i]); got != int64(i+1) {
			t.Fatalf("command %d: line %d", i, got)
		}
	}
	// The writer reports a SET with its own "SET": the key identifies it.
	if got := x.lookup([]string{"SET", cmds[7][1], cmds[7][2], "EX", "5"}); got != 8 {
		t.Fatalf("SET with the engine's name: line %d", got)
	}
	if x.lookup([]string{"SET", "k", "v"}) != 0 {
		t.Fatal("a command of other strings has a line")
	}
}

func TestParseServerCPU(t *testing.T) {
	d, ok := parseServerCPU("# CPU\r\nused_cpu_sys:1.500000\r\nused_cpu_user:0.250000\r\nused_cpu_sys_children:9.0\r\n")
	if !ok || d != 1750*time.Millisecond {
		t.Fatalf("%s, %v", d, ok)
	}
	if _, ok := parseServerCPU("# CPU\r\nused_cpu_sys:x\r\n"); ok {
		t.Fatal("a bad reply parsed")
	}
}

// A JSON Lines record of the wrong shape is named in the file's terms,
// not Go's (qa-AM F6: "cannot unmarshal array into Go value of type
// main.jsonRecord").
func TestJSONLReasons(t *testing.T) {
	in := "[1, 2]\n{\"key\": 5, \"value\": \"v\"}\n"
	p := &jsonlParser{r: bufio.NewReader(strings.NewReader(in))}
	for _, want := range []string{
		`line 1: JSON: want an object {"key": ..., "value": ...}, got array`,
		`line 2: JSON: "key" must be a string, got number`,
	} {
		_, err := p.next()
		var me *malformedError
		if !errors.As(err, &me) || !strings.HasPrefix(err.Error(), want) || strings.Contains(err.Error(), "Go ") {
			t.Fatalf("err = %v, want it to begin with %q", err, want)
		}
	}
}

// A record without a key is malformed in CSV and JSON Lines (qa-AM F6:
// ",v" set the empty key without a word: a missing column, most likely).
func TestEmptyKeyMalformed(t *testing.T) {
	for _, p := range []parser{
		newCSVParser(strings.NewReader(",v\n")),
		&jsonlParser{r: bufio.NewReader(strings.NewReader(`{"key": "", "value": "v"}` + "\n"))},
	} {
		_, err := p.next()
		var me *malformedError
		if !errors.As(err, &me) || me.line != 1 || !strings.Contains(me.reason, "empty") {
			t.Fatalf("%T: err = %v, want line 1 malformed for its empty key", p, err)
		}
	}
}

// A bulk length that does not match its value says which way it is off:
// a value shorter than its length was reported as "longer than its
// length" (qa45c), sending the operator to the wrong end of the record.
func TestRESPWrongBulkLength(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nxy\r\n*1\r\n$4\r\nPING\r\n", "no line end after the 5 bytes of its length, but one after 2: a value shorter than its length?"},
		{"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nxyz\r\n", "longer than its length 1"},
	} {
		p := &respParser{r: bufio.NewReader(strings.NewReader(tc.in))}
		_, err := p.next()
		if err == nil {
			_, err = p.next() // a resync's error comes at its end
		}
		var me *malformedError
		if !errors.As(err, &me) || me.line != 1 || !strings.Contains(me.reason, tc.want) {
			t.Errorf("%q: err = %v, want line 1 malformed: %q", tc.in, err, tc.want)
		}
	}
}

// A \u escape of half a surrogate pair is malformed, as invalid UTF-8 is:
// encoding/json decodes it to U+FFFD, so the server got another key or
// value than the file's, exit status 0 (qa45c: Python's json.dumps of a
// string decoded with surrogateescape writes "\udcff"). A whole pair, an
// escaped backslash before a "u" and U+FFFD itself load.
func TestJSONLLoneSurrogate(t *testing.T) {
	in := `{"key":"a","value":"x\udcffy"}` + "\n" + // line 1: a lone low half
		`{"key":"b\ud800","value":"v"}` + "\n" + // 2: a lone high half, in the key
		`{"key":"c","value":"\ud800\u0041"}` + "\n" + // 3: a high half and no low one
		`{"key":"d","value":"\ud83d\ude00 \\udcff \ufffd"}` + "\n" // 4: fine
	p := &jsonlParser{r: bufio.NewReader(strings.NewReader(in))}
	for line := int64(1); line <= 3; line++ {
		_, err := p.next()
		var me *malformedError
		if !errors.As(err, &me) || me.line != line || !strings.Contains(me.reason, "surrogate") {
			t.Fatalf("line %d: err = %v, want it malformed for its surrogate", line, err)
		}
	}
	c, err := p.next()
	if err != nil || c.args[2] != "\U0001F600 \\udcff \uFFFD" {
		t.Fatalf("line 4: %q, %v", c.args, err)
	}
}
