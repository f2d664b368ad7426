package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/vactor-io/vactor/engine"
)

// loadSettings are the flags of vactor load.
type loadSettings struct {
	input      string // file name; "" or "-" for stdin
	format     string // csv, jsonl, resp, or "" to detect
	errorsPath string
	strict     bool
	idempotent bool
	conns      int
	maxPending int
	quiet      bool
	giveUp     time.Duration // stop after this long of failures without an answer; 0: never
	db         int           // the database loaded into (the target's)
}

const loadUsage = `usage: vactor load [flags] [FILE]

Bulk-loads FILE (or standard input, when FILE is - or absent) into the
server through vactor's batch writer (engine.NewBatchWriter): large
pipelines on dedicated connections, consecutive plain SETs merged into
MSETs, every command acknowledged or reported.

Formats (-format, else from the extension, else from the first byte):
  csv    key,value[,ttl] records (.csv); a first line key,value[,ttl] is a header
  jsonl  {"key": "k", "value": "v", "ttl": 60} one a line (.jsonl, .ndjson, .json)
  resp   commands as RESP arrays, the input of redis-cli --pipe (.resp)
A ttl is a number of seconds or a Go duration (90s, 1h), rounded to the
millisecond (a positive one to 1 ms at least); empty or 0 for none.

Order: plain writes of one key (SET, HSET, RPUSH, ...) keep each key's
order over -conns connections; from the first other command (RENAME,
MSET, DEL a b, ...) on, after everything before it is done, the rest goes
in the input's order over one connection, as redis-cli --pipe sends it.

A malformed record is reported with its line number and skipped (-strict
stops at the first). A command the server refuses (or that fails) is
written to the errors file with its line and the reason. The exit status
is 0 when every record was loaded, 1 otherwise.

Flags:
`

// runLoad implements `vactor load`.
func runLoad(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("vactor load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var tf targetFlags
	tf.register(fs)
	var s loadSettings
	fs.StringVar(&s.format, "format", "", "input format: csv, jsonl or resp (default: from the file's extension, else its first byte)")
	fs.StringVar(&s.errorsPath, "errors", "", "file for failed commands and malformed records (default FILE.errors, or vactor-load.errors for stdin); created only when needed")
	fs.BoolVar(&s.strict, "strict", false, "stop at the first malformed record")
	fs.DurationVar(&s.giveUp, "give-up", 10*time.Second, "stop reading once every command has failed without an answer from the server (killed, paused, unreachable) for this long, and say from which line; 0: never")
	fs.BoolVar(&s.idempotent, "idempotent", false, "the commands may run twice: resend those whose reply was lost to a broken connection instead of reporting them")
	fs.IntVar(&s.conns, "conns", 0, "connections per node (default: the batch writer's, 2)")
	fs.IntVar(&s.maxPending, "max-pending", 0, "commands queued or in flight at most (default: the batch writer's, 100,000)")
	fs.BoolVar(&s.quiet, "quiet", false, "no progress bar")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), loadUsage)
		fs.PrintDefaults()
	}
	if code, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return code
	}
	if fs.NArg() > 1 {
		fmt.Fprintln(stderr, "vactor load: one input file at most")
		return exitUsage
	}
	s.input = fs.Arg(0)
	if s.format != "" {
		s.format = strings.ToLower(s.format)
		if s.format != formatCSV && s.format != formatJSONL && s.format != formatRESP {
			fmt.Fprintf(stderr, "vactor load: -format %q: want csv, jsonl or resp\n", s.format)
			return exitUsage
		}
	}
	if s.conns < 0 || s.maxPending < 0 || s.giveUp < 0 {
		fmt.Fprintln(stderr, "vactor load: -conns, -max-pending and -give-up must not be negative")
		return exitUsage
	}

	if s.conns > maxConns {
		fmt.Fprintf(stderr, "vactor load: -conns %d: at most %d connections per node\n", s.conns, maxConns)
		return exitUsage
	}
	if s.errorsPath == "" {
		s.errorsPath = "vactor-load.errors"
		if s.inputName() != "stdin" {
			s.errorsPath = s.input + ".errors"
		}
	}
	// Before the input is read: errors written into it would destroy it
	// while it is being read.
	if sameFile(s.errorsPath, s.input, stdin) {
		fmt.Fprintf(stderr, "vactor load: -errors %s is the input file %s: the errors would overwrite it; name another file with -errors\n",
			s.errorsPath, s.inputName())
		return exitUsage
	}

	in, size, name, closeIn, err := openInput(s.input, stdin)
	if err != nil {
		fmt.Fprintln(stderr, "vactor load:", err)
		return exitFailed
	}
	defer closeIn()
	// The errors file is the record of what failed: check now that it
	// can be written, not after the load.
	if err := checkWritable(s.errorsPath); err != nil {
		fmt.Fprintf(stderr, "vactor load: -errors %s: the errors file cannot be written: %v; name another file with -errors\n", s.errorsPath, err)
		return exitUsage
	}

	t, err := resolveTarget(&tf, fs, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "vactor load:", err)
		return targetExit(err)
	}
	defer closeTarget(t, stderr)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	force, unforce := secondSignal(ctx)
	defer unforce()
	dial, cancel := context.WithTimeout(ctx, t.cfg.DialTimeout+5*time.Second)
	eng, err := newEngine(dial, t.cfg)
	cancel()
	if err != nil {
		fmt.Fprintln(stderr, "vactor load:", err)
		return exitFailed
	}
	defer func() { _ = eng.Close() }()
	if !t.cfg.ClusterMode && t.cfg.SentinelMasterName == "" {
		// A node of a cluster serves its own slots only: the other keys
		// failed one by one with MOVED, and SETs merged into an MSET with
		// CROSSSLOT (qa-AM). A user without INFO is not stopped.
		if info, err := serverInfo(ctx, eng, "cluster"); err == nil && info["cluster_enabled"] == "1" {
			fmt.Fprintln(stderr, "vactor load: this node belongs to a cluster: run with -cluster (or VALKEY_CLUSTER_MODE=true) to load into the whole cluster")
			return exitUsage
		}
		// A read-only replica refuses every write (READONLY): each
		// failed, one error line each, for the whole input (qa45c).
		if primary, ok := readOnlyReplica(ctx, eng); ok {
			fmt.Fprintf(stderr, "vactor load: this server is a read-only replica of %s: load into its primary (-addr %s)\n", primary, primary)
			return exitUsage
		}
	}

	s.db = t.cfg.DB
	sum, err := load(ctx, force, eng, in, size, s, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "vactor load:", err)
	}
	if !sum.started {
		// Nothing was loaded: no summary.
		if errors.Is(err, engine.ErrInvalidArgument) {
			return exitUsage
		}
		return exitFailed
	}
	sum.print(stdout, name, t.describe(), s.errorsPath)
	switch {
	case ctx.Err() != nil:
		return exitInterrupted
	case err != nil || !sum.ok():
		return exitFailed
	}
	return exitOK
}

// readOnlyReplica reports whether the server eng is connected to is a
// replica that refuses writes, and its primary. A replica made writable
// (replica-read-only no) is the operator's choice; a user without INFO
// or CONFIG GET is not stopped (a refused CONFIG GET: read-only, the
// default).
func readOnlyReplica(ctx context.Context, eng *engine.Engine) (string, bool) {
	info, err := serverInfo(ctx, eng, "replication")
	if err != nil || info["role"] != "slave" {
		return "", false
	}
	primary := net.JoinHostPort(info["master_host"], info["master_port"])
	r, err := eng.Do(ctx, "CONFIG", "GET", "replica-read-only").Await(ctx)
	if err != nil {
		return primary, true
	}
	m, err := r.Map()
	return primary, err != nil || m["replica-read-only"] != "no"
}

// utf8BOM is the UTF-8 encoding of U+FEFF, the byte order mark.
const utf8BOM = "\xef\xbb\xbf"

// maxConns is the batch writer's bound on ConnsPerNode.
const maxConns = 256

// sameFile reports whether the errors file exists and is the input
// (the file input names, or stdin when it is a file), by another path
// or the same.
func sameFile(errorsPath, input string, stdin io.Reader) bool {
	es, err := os.Stat(errorsPath)
	if err != nil {
		return false // it does not exist: it is not the input
	}
	var is os.FileInfo
	if input == "" || input == "-" {
		f, ok := stdin.(*os.File)
		if !ok {
			return false
		}
		is, err = f.Stat()
	} else {
		is, err = os.Stat(input)
	}
	return err == nil && os.SameFile(es, is)
}

// checkWritable checks that path can be written as a file, without
// changing it: a file that does not exist is created and removed; one
// that exists is opened for writing (not truncated). Devices and pipes
// (/dev/stderr) are not opened.
func checkWritable(path string) error {
	st, err := os.Stat(path)
	switch {
	case err == nil && st.IsDir():
		return errors.New("is a directory")
	case err == nil && !st.Mode().IsRegular():
		return nil
	case err == nil:
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		return f.Close()
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
	if err != nil {
		return err
	}
	_ = f.Close()
	return os.Remove(path)
}

// openInput opens the input: a file, or stdin for "" and "-". size is
// the file's size when known (for the progress bar), else -1.
func openInput(path string, stdin io.Reader) (r io.Reader, size int64, name string, closeFn func(), err error) {
	if path == "" || path == "-" {
		return stdin, -1, "stdin", func() {}, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, "", nil, err
	}
	size = -1
	st, err := f.Stat()
	switch {
	case err == nil && st.IsDir():
		// Found now, not by the first read after connecting (and a
		// summary of 0 commands).
		_ = f.Close()
		return nil, 0, "", nil, fmt.Errorf("%s is a directory: name a file, or - for standard input", path)
	case err == nil && st.Mode().IsRegular():
		size = st.Size()
	}
	return f, size, path, func() { _ = f.Close() }, nil
}

// ctxReader reads r until ctx ends: a Read blocked on r (a pipe with
// nothing to say, a terminal) returns ctx's error when ctx ends. The
// blocked read itself cannot be cancelled: it goes on in its goroutine,
// into a buffer of its own, until r returns (at the latest when the
// process exits), and every later Read returns ctx's error.
type ctxReader struct {
	ctx  context.Context
	r    io.Reader
	buf  []byte
	done chan readResult // capacity 1
	busy bool            // a read is in flight
}

type readResult struct {
	n   int
	err error
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if !c.busy {
		if err := c.ctx.Err(); err != nil {
			return 0, err
		}
		if cap(c.buf) < len(p) {
			c.buf = make([]byte, len(p))
		}
		buf := c.buf[:len(p)]
		c.busy = true
		go func() {
			n, err := c.r.Read(buf)
			c.done <- readResult{n, err}
		}()
	}
	select {
	case res := <-c.done:
		c.busy = false
		return copy(p, c.buf[:res.n]), res.err
	case <-c.ctx.Done():
		return 0, c.ctx.Err()
	}
}

// loadSummary is what vactor load did.
type loadSummary struct {
	format    string
	commands  uint64 // records parsed into commands
	malformed uint64
	// malformedLines counts the input lines malformed records took with
	// them beyond their first (a CSV quote not closed: the lines up to
	// where the parser found out): none of them was loaded.
	malformedLines uint64
	written        uint64 // accepted by the writer
	acked          uint64
	failed         uint64 // reported by the writer or refused by Write
	// unknown of them were written and lost their answer
	// (ErrOutcomeUnknown: a connection lost, an interrupt): the server
	// may have applied them (qa45c: 3,998 of one run's "failed" had).
	unknown   uint64
	elapsed   time.Duration
	stoppedAt int64 // -strict: the line of the first malformed record
	// gaveUp is -give-up when the load stopped because the server
	// answered nothing for that long (0 otherwise).
	gaveUp      time.Duration
	lastLine    int64 // of the last command handed to the writer
	interrupted bool
	// forced: a second interrupt stopped the flush after the first.
	forced     bool
	errorsFile bool  // there were errors for the errors file
	errorsErr  error // writing the errors file failed
	started    bool  // the writer started: the summary means something
	// orderedFrom is the line of the first command that needed the
	// input's order (see loadWriter), orderedFromName its name.
	orderedFrom     int64
	orderedFromName string
	// selectAt is the line of a SELECT of another database than the one
	// loaded into, where the load stopped (0: none), selectDB its
	// argument.
	selectAt int64
	selectDB string
}

func (s loadSummary) ok() bool {
	return s.malformed == 0 && s.failed == 0 && !s.interrupted && s.gaveUp == 0 && s.selectAt == 0 && s.acked == s.commands
}

func (s loadSummary) print(w io.Writer, input, target, errorsPath string) {
	r := 0.0
	if s.elapsed > 0 {
		r = float64(s.acked) / s.elapsed.Seconds()
	}
	fmt.Fprintf(w, "vactor load: %s (%s) into %s: %s commands in %s (%s/s): %s acknowledged, %s failed, %s malformed\n",
		input, s.format, target, groupDigits(float64(s.commands)), s.elapsed.Round(time.Millisecond), groupDigits(r),
		groupDigits(float64(s.acked)), groupDigits(float64(s.failed)), groupDigits(float64(s.malformed)))
	if s.unknown > 0 {
		fmt.Fprintf(w, "vactor load: %s of the failed commands were written and their answer lost (\"outcome unknown\" in the errors file): "+
			"the server may have applied them; check them, or load them again if resending is harmless (a SET is; an INCR or RPUSH is not)\n",
			groupDigits(float64(s.unknown)))
	}
	if s.malformedLines > 0 {
		fmt.Fprintf(w, "vactor load: the malformed records took %s more lines with them: none of those was loaded (see the errors file)\n",
			groupDigits(float64(s.malformedLines)))
	}
	if s.stoppedAt > 0 {
		fmt.Fprintf(w, "vactor load: stopped at the malformed record of line %d (-strict)\n", s.stoppedAt)
	}
	if s.selectAt > 0 {
		fmt.Fprintf(w, "vactor load: stopped at line %d: SELECT %s: the commands from there on are for database %s, not the one loaded into; "+
			"load the input from line %d on with a -url ending in /%s (or VALKEY_DB=%s)\n",
			s.selectAt, s.selectDB, s.selectDB, s.selectAt, s.selectDB, s.selectDB)
	}
	if s.orderedFrom > 0 {
		fmt.Fprintf(w, "vactor load: from line %d (%s) on, in the input's order over one connection: %s is not a plain write of one key\n",
			s.orderedFrom, s.orderedFromName, s.orderedFromName)
	}
	if s.interrupted {
		if s.lastLine > 0 {
			fmt.Fprintf(w, "vactor load: interrupted: nothing after line %d was sent, the rest of the input was not read\n", s.lastLine)
		} else {
			fmt.Fprintln(w, "vactor load: interrupted: the rest of the input was not read")
		}
		if s.forced {
			fmt.Fprintln(w, "vactor load: a second interrupt stopped the flush: any commands still queued were not sent "+
				"(in the errors file, \"batch writer closed\"): load the input again from the first of them")
		}
	}
	if s.gaveUp > 0 {
		sent := "nothing was sent"
		if s.lastLine > 0 {
			sent = fmt.Sprintf("nothing after line %d was sent", s.lastLine)
		}
		fmt.Fprintf(w, "vactor load: stopped: for %s every command failed without an answer from the server (see the errors file); "+
			"%s (load the input from there once the server is back)\n", s.gaveUp, sent)
	}
	switch {
	case s.errorsFile && s.errorsErr != nil:
		fmt.Fprintf(w, "vactor load: the errors could not all be written to %s: %v\n", errorsPath, s.errorsErr)
	case s.errorsFile:
		fmt.Fprintf(w, "vactor load: errors written to %s\n", errorsPath)
	}
}

// countingReader counts the bytes read through it, for the progress bar.
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// secondSignal returns a context that ends at a SIGINT or SIGTERM received
// after ctx ended (the first one ends ctx): an operator's second Ctrl-C,
// which stops the wait for the flush after the first. cancel releases it.
func secondSignal(ctx context.Context) (context.Context, context.CancelFunc) {
	force, cancel := context.WithCancel(context.Background())
	go func() {
		select {
		case <-ctx.Done():
		case <-force.Done():
			return
		}
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		defer signal.Stop(sig)
		select {
		case <-sig:
			cancel()
		case <-force.Done():
		}
	}()
	return force, cancel
}

// load reads every command of in and writes it through a batch writer
// of eng. It returns when every command written was acknowledged or
// reported, or ctx ended (then what was queued is still flushed, for up
// to 30s, or until force ends: a second interrupt). The error is for
// reading the input or a closed engine; failed commands and malformed
// records are counted and logged.
func load(ctx, force context.Context, eng *engine.Engine, in io.Reader, size int64, s loadSettings, stderr io.Writer) (loadSummary, error) {
	var sum loadSummary
	// wctx ends with ctx, or when the load gives up (see the watchdog
	// below): it ends a write waiting for room, and a read of a pipe.
	wctx, giveUp := context.WithCancel(ctx)
	defer giveUp()
	if size < 0 {
		// A pipe or a terminal may block for ever: an interrupt (or the
		// load giving up) must not wait for its next line.
		in = &ctxReader{ctx: wctx, r: in, done: make(chan readResult, 1)}
	}
	cr := &countingReader{r: in}
	br := bufio.NewReaderSize(cr, 1<<20)
	// A UTF-8 byte order mark (Excel's "CSV UTF-8") is no part of the
	// first record.
	if b, err := br.Peek(len(utf8BOM)); err == nil && string(b) == utf8BOM {
		_, _ = br.Discard(len(utf8BOM))
	}
	format := s.format
	if format == "" {
		format = formatOf(s.input)
	}
	if format == "" {
		format = sniff(br)
	}
	sum.format = format
	p, err := newParser(format, br)
	if err != nil {
		return sum, err
	}
	elog := &errorLog{path: s.errorsPath, stderr: stderr}
	idx := newLineIndex(windowSize)
	var answered, lost atomic.Uint64 // failures: with the server's answer, without one
	var unknown atomic.Uint64        // of lost: written, the answer lost
	w, err := newLoadWriter(eng, engine.BatchWriterOptions{
		MaxPending:   s.maxPending,
		ConnsPerNode: s.conns,
		Idempotent:   s.idempotent,
		OnError: func(cmd []string, err error) {
			countFailure(err, &answered, &lost)
			if errors.Is(err, engine.ErrOutcomeUnknown) {
				unknown.Add(1)
			}
			elog.record(idx.lookup(cmd), "failed", commandText(cmd)+": "+serverText(err))
		},
	})
	if err != nil {
		return sum, err
	}
	sum.started = true

	start := time.Now()
	prog := newLoadProgress(stderr, size, s.quiet, cr, w, start)
	if prog.bar != nil {
		elog.clear = func() { _ = prog.bar.Clear() }
	}
	var flushes sync.WaitGroup
	var refused uint64
	var readErr error
	// A server gone (killed, paused, unreachable) fails every command
	// without an answer: once no command has been answered (acknowledged,
	// or refused by the server) for -give-up (10 s) while commands failed
	// without one, the load stops reading instead of failing the rest of
	// the input one command at a time (qa-AM: 63-97 s and 700,000 error
	// lines for a million SETs), and says after which line it stopped. A
	// watchdog decides, and ends wctx, which a write waiting for room in
	// the writer was blocked on; the loop, the only writer of lastLine,
	// then has the last line it handed over (read by the watchdog before
	// its cancel took, the line could be a few commands early: a resume
	// from there sent them twice, review-32b B5).
	var lastLine atomic.Int64
	var gaveUp atomic.Bool
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		if s.giveUp <= 0 {
			return
		}
		t := time.NewTicker(min(s.giveUp/4, time.Second))
		defer t.Stop()
		var answers, lastLost uint64
		answeredAt := time.Now()
		for {
			select {
			case <-wctx.Done():
				return
			case <-t.C:
			}
			st := w.stats()
			a, l := st.Acknowledged+answered.Load(), lost.Load()
			switch {
			case a != answers:
				answers, lastLost, answeredAt = a, l, time.Now()
			case l > lastLost && time.Since(answeredAt) >= s.giveUp:
				// Commands failed without an answer since answeredAt (a
				// slow server that fails nothing is waited for).
				gaveUp.Store(true)
				giveUp()
				return
			}
		}
	}()
	for n := 0; ; n++ {
		if n&1023 == 0 && wctx.Err() != nil {
			sum.interrupted = !gaveUp.Load()
			break
		}
		c, err := p.next()
		if err != nil {
			if wctx.Err() != nil && errors.Is(err, wctx.Err()) {
				sum.interrupted = !gaveUp.Load() // a record cut short is not loaded
				break
			}
			var me *malformedError
			if errors.As(err, &me) {
				sum.malformed++
				sum.malformedLines += uint64(me.skipped())
				elog.recordLines(me.line, me.last, "malformed", me.reason)
				if s.strict {
					sum.stoppedAt = me.line
					break
				}
				continue
			}
			if !errors.Is(err, io.EOF) {
				readErr = fmt.Errorf("read %s: %w", s.inputName(), err)
				if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
					readErr = err // it names the file already ("read d: is a directory")
				}
			}
			break
		}
		if db, ok := selectOf(c.args); ok {
			// The engine's connections are shared: a SELECT cannot switch
			// them (it failed, and the commands after it, meant for
			// another database, went into this one). SELECT of the
			// database loaded into changes nothing: skipped. Another
			// stops the load here, saying where to resume and how.
			if db == strconv.Itoa(s.db) {
				continue
			}
			sum.selectAt, sum.selectDB = c.line, db
			elog.record(c.line, "failed", fmt.Sprintf("SELECT %s: vactor load writes to one database (%d: -url's /db, VALKEY_DB), the commands from here on are for database %s: "+
				"load the input from here on with a -url ending in /%s", db, s.db, db, db))
			break
		}
		sum.commands++
		idx.add(identity(c.args), c.line)
		if err = w.write(wctx, c); err != nil {
			if wctx.Err() != nil {
				sum.interrupted = !gaveUp.Load()
				sum.commands--
				break
			}
			if errors.Is(err, engine.ErrClosed) {
				readErr = err
				break
			}
			refused++
			lastLine.Store(c.line)
			countFailure(err, &answered, &lost)
			elog.record(c.line, "failed", commandText(c.args)+": "+serverText(err))
			continue
		}
		lastLine.Store(c.line) // handed to the writer
		if win := idx.seal(); win != nil {
			// The writer of the commands up to here: the fast one was
			// flushed when the ordered one started.
			cur := w.current()
			flushes.Go(func() {
				if cur.Flush(ctx) == nil {
					idx.release(win)
				}
			})
		}
	}
	sum.lastLine = lastLine.Load()
	giveUp() // the watchdog ends
	<-watched
	if gaveUp.Load() {
		sum.gaveUp = s.giveUp
	}
	closeCtx := context.Background()
	if sum.interrupted || sum.gaveUp > 0 {
		bound := 30 * time.Second
		if sum.gaveUp > 0 {
			bound = s.giveUp // what is queued fails: the server is gone
		}
		if sum.interrupted {
			// The flush may take a while (a slow or paused server):
			// say what the wait is, and that a second interrupt ends it
			// (before, further Ctrl-Cs were ignored, without a word,
			// for up to 30 s).
			closeCtx = force
			elog.note(fmt.Sprintf("interrupted: sending what was read (at most %s; interrupt again to stop waiting: what is still queued is then reported failed)", bound))
		}
		var cancel context.CancelFunc
		closeCtx, cancel = context.WithTimeout(closeCtx, bound)
		defer cancel()
	}
	cerr := w.close(closeCtx)
	sum.forced = sum.interrupted && force.Err() != nil
	flushes.Wait()
	sum.elapsed = time.Since(start)
	prog.stop()
	st := w.stats()
	sum.orderedFrom, sum.orderedFromName = w.orderedFrom, w.orderedFromName
	sum.written, sum.acked = st.Written, st.Acknowledged
	sum.failed = st.Failed + refused
	sum.unknown = unknown.Load()
	sum.errorsErr = elog.close()
	sum.errorsFile = elog.count() > 0
	if readErr == nil && cerr != nil && !sum.interrupted && sum.gaveUp == 0 {
		readErr = cerr
	}
	return sum, readErr
}

// selectOf returns the database a SELECT command names. A SELECT of
// no database number is not one (the server would refuse it and stay
// where it is: it fails as any command does).
func selectOf(args []string) (string, bool) {
	if len(args) != 2 || !strings.EqualFold(args[0], "SELECT") {
		return "", false
	}
	n, err := strconv.Atoi(args[1])
	if err != nil || n < 0 {
		return "", false
	}
	return strconv.Itoa(n), true
}

// countFailure counts a failed command for the watchdog: in answered when
// the server refused it (an error reply), in lost when it failed without
// an answer (a transport error, an open breaker, an outcome unknown). A
// command the client refused itself (ErrInvalidArgument: SELECT, MULTI,
// a BLPOP without a bound, keys of two slots) is neither: counted lost,
// a server paused 1.5 s ended a load that only such refusals had failed
// (review-32b B2).
func countFailure(err error, answered, lost *atomic.Uint64) {
	switch se := (*engine.ServerError)(nil); {
	case errors.As(err, &se):
		answered.Add(1)
	case errors.Is(err, engine.ErrInvalidArgument), errors.Is(err, engine.ErrCrossSlot):
	default:
		lost.Add(1)
	}
}

func (s loadSettings) inputName() string {
	if s.input == "" || s.input == "-" {
		return "stdin"
	}
	return s.input
}

// loadProgress shows the progress of a load on stderr: a progress bar
// on a terminal (bytes of the input, with its rate and ETA, and the
// commands acknowledged), plain lines every 10s elsewhere.
type loadProgress struct {
	done chan struct{}
	wg   sync.WaitGroup
	bar  *progressbar.ProgressBar
}

func newLoadProgress(stderr io.Writer, size int64, quiet bool, cr *countingReader, w *loadWriter, start time.Time) *loadProgress {
	p := &loadProgress{done: make(chan struct{})}
	if quiet {
		return p
	}
	tty := isTerminal(stderr)
	var line *liveLine
	if tty {
		p.bar = progressbar.NewOptions64(size,
			progressbar.OptionSetWriter(stderr),
			progressbar.OptionShowBytes(true),
			progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(200*time.Millisecond),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionClearOnFinish(),
			progressbar.OptionSetDescription("loading"),
		)
	} else {
		line = newLiveLine(stderr)
	}
	p.wg.Go(func() {
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-p.done:
				return
			case <-tick.C:
			}
			read := cr.n.Load()
			st := w.stats()
			elapsed := time.Since(start)
			r := float64(st.Acknowledged) / elapsed.Seconds()
			if p.bar != nil {
				p.bar.Describe(fmt.Sprintf("%s commands, %s/s", groupDigits(float64(st.Acknowledged)), groupDigits(r)))
				_ = p.bar.Set64(read)
				continue
			}
			text := fmt.Sprintf("vactor load: %s commands acknowledged, %s/s, %s read", groupDigits(float64(st.Acknowledged)), groupDigits(r), byteSize(read))
			if size > 0 && read > 0 {
				eta := time.Duration(float64(elapsed) * float64(size-read) / float64(read))
				text += fmt.Sprintf(" of %s (%.0f%%), ETA %s", byteSize(size), 100*float64(read)/float64(size), eta.Round(time.Second))
			}
			line.update(text)
		}
	})
	return p
}

// stop ends the display.
func (p *loadProgress) stop() {
	close(p.done)
	p.wg.Wait()
	if p.bar != nil {
		_ = p.bar.Finish()
	}
}

// byteSize formats n bytes.
func byteSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
