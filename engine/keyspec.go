package engine

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/valkey-io/valkey-go"

	"github.com/vactor-io/vactor/drivers"
)

// Do sends commands the engine knows nothing about. To route one by its
// keys (its hash slot in cluster mode, its connection actor with
// PoolSize > 1) the engine reads the server's command table once, when it
// starts (COMMAND): each command's key specs (Redis 7 and Valkey: where the
// keys begin, by position or after a keyword, and how many follow: a range
// or a count given by an argument), or, from servers without key specs,
// the legacy first key, last key and step. commandTable holds what routing
// needs of it.

// commandTable maps a command name, in upper and in lower case, to where
// its keys are. It is read-only once built: safe for concurrent use.
type commandTable map[string]*commandKeys

// commandKeys says where one command's keys are.
type commandKeys struct {
	specs []keySpec
	// first, last and step are the legacy fields, used when the server
	// gives no key specs: keys at argv[first], argv[first+step], ... up to
	// argv[last] (negative: counted from the end). first 0: no keys.
	first, last, step int
	// subs, for a container command (OBJECT, XINFO, MEMORY, ...), maps its
	// subcommands (upper and lower case) to their keys.
	subs commandTable
}

// keySpec is one of a command's key specs: begin_search then find_keys,
// with argv positions counted from the command name (argv[0]).
type keySpec struct {
	begin     uint8  // beginIndex, beginKeyword or 0: unknown
	index     int    // beginIndex: position of the first key
	keyword   string // beginKeyword: the keys follow this argument ...
	startFrom int    // ... searched from here (negative: from the end, backwards)

	find      uint8 // findRange, findKeynum or 0: unknown
	lastKey   int   // findRange: last key relative to the first (negative: from the end)
	keyStep   int   // findRange, findKeynum: distance between keys
	limit     int   // findRange with lastKey < 0: only 1/limit of the rest are keys
	keyNumIdx int   // findKeynum: position of the key count, relative to the first
	firstKey  int   // findKeynum: first key, relative to the first
}

const (
	beginIndex uint8 = 1 + iota
	beginKeyword
)

const (
	findRange uint8 = 1 + iota
	findKeynum
)

// maxCommandName bounds the names lookup lower-cases on the stack.
const maxCommandName = 64

// get returns the entry of name in any letter case; nil when unknown. It
// does not allocate.
func (t commandTable) get(name string) *commandKeys {
	if c, ok := t[name]; ok {
		return c
	}
	if len(name) > maxCommandName {
		return nil
	}
	var buf [maxCommandName]byte
	for i := 0; i < len(name); i++ {
		b := name[i]
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		buf[i] = b
	}
	return t[string(buf[:len(name)])]
}

// keys appends to dst the positions in args (the arguments after the
// command name) of the keys of command name, in the order the server
// finds them (a key may appear twice). known is false when the table does
// not hold the command: dst is then returned as it is.
func (t commandTable) keys(dst []int, name string, args []string) (_ []int, known bool) {
	c := t.get(name)
	if c == nil {
		return dst, false
	}
	if c.subs != nil && len(args) > 0 {
		if s := c.subs.get(args[0]); s != nil {
			c = s
		}
	}
	return c.appendKeys(dst, args), true
}

// appendKeys appends the positions in args of the command's keys.
func (c *commandKeys) appendKeys(dst []int, args []string) []int {
	if len(c.specs) == 0 {
		return c.appendLegacy(dst, args)
	}
	for i := range c.specs {
		dst = c.specs[i].appendKeys(dst, args)
	}
	return dst
}

// appendLegacy applies first, last and step.
func (c *commandKeys) appendLegacy(dst []int, args []string) []int {
	argc := len(args) + 1
	if c.first <= 0 {
		return dst
	}
	last := c.last
	if last < 0 {
		last += argc
	}
	step := min(max(c.step, 1), argc) // a bigger step would overflow i
	for i := c.first; i <= last && i < argc; i += step {
		dst = append(dst, i-1)
	}
	return dst
}

// appendKeys finds the spec's keys as the server does (getKeysUsingKeySpecs
// in Redis 7 and Valkey). A spec that does not match the arguments (a
// keyword missing, a bad key count: the server refuses the command or
// finds no key there) adds nothing; nor does one whose numbers no server
// sends (a broken one's: an offset past any argument list, a negative
// first key): the positions it appends are always inside args.
func (s *keySpec) appendKeys(dst []int, args []string) []int {
	argc := len(args) + 1 // argv = name + args
	first := 0
	switch s.begin {
	case beginIndex:
		first = s.index
	case beginKeyword:
		start, end, dir := s.startFrom, argc-1, 1
		if s.startFrom <= 0 {
			start, end, dir = argc+s.startFrom, 0, -1
		}
		for i := start; i != end && i >= 1 && i < argc; i += dir {
			if strings.EqualFold(args[i-1], s.keyword) {
				first = i + 1
				break
			}
		}
	}
	if first < 1 || first >= argc {
		return dst
	}
	var last int
	switch s.find {
	case findRange:
		switch {
		case s.lastKey >= argc: // first + lastKey could overflow
			return dst
		case s.lastKey >= 0:
			last = first + s.lastKey
		case s.limit <= 0:
			last = argc + s.lastKey
		default:
			last = first + (argc-first)/s.limit + s.lastKey
		}
	case findKeynum:
		if s.keyNumIdx < 0 || s.keyNumIdx >= argc-first || s.firstKey > argc {
			return dst
		}
		n, err := strconv.Atoi(args[first+s.keyNumIdx-1])
		if err != nil || n < 0 || n > argc {
			return dst
		}
		first += s.firstKey
		last = first + n - 1
	default:
		return dst
	}
	if first < 1 || first >= argc || last >= argc || last < first {
		return dst
	}
	step := min(max(s.keyStep, 1), argc) // a bigger step would overflow i
	for i := first; i <= last; i += step {
		dst = append(dst, i-1)
	}
	return dst
}

// parseCommandTable reads the reply of COMMAND (or COMMAND INFO): one
// entry per command, [name, arity, flags, first key, last key, step, ACL
// categories, tips, key specs, subcommands] (servers before Redis 7 send
// the first six). Entries it cannot read are skipped; a reply that is not
// an array is an error.
func parseCommandTable(m valkey.ValkeyMessage) (commandTable, error) {
	entries, err := m.ToArray()
	if err != nil {
		return nil, fmt.Errorf("COMMAND reply: %w", err)
	}
	t := make(commandTable, 2*len(entries))
	for i := range entries {
		name, c, ok := parseCommandEntry(&entries[i])
		if !ok {
			continue
		}
		t.put(name, c)
	}
	return t, nil
}

// put adds c under name in lower and upper case.
func (t commandTable) put(name string, c *commandKeys) {
	t[strings.ToLower(name)] = c
	t[strings.ToUpper(name)] = c
}

// parseCommandEntry reads one command; a subcommand's name is its part
// after '|' ("object|encoding" -> "encoding").
func parseCommandEntry(m *valkey.ValkeyMessage) (string, *commandKeys, bool) {
	f, err := m.ToArray()
	if err != nil || len(f) < 6 {
		return "", nil, false
	}
	name, err := f[0].ToString()
	if err != nil || name == "" {
		return "", nil, false
	}
	if _, sub, ok := strings.Cut(name, "|"); ok {
		name = sub
	}
	c := &commandKeys{first: msgInt(&f[3]), last: msgInt(&f[4]), step: msgInt(&f[5])}
	if len(f) > 8 {
		specs, _ := f[8].ToArray()
		for i := range specs {
			if s, ok := parseKeySpec(&specs[i]); ok {
				c.specs = append(c.specs, s)
			}
		}
	}
	if len(f) > 9 {
		subs, _ := f[9].ToArray()
		for i := range subs {
			sname, sc, ok := parseCommandEntry(&subs[i])
			if !ok {
				continue
			}
			if c.subs == nil {
				c.subs = commandTable{}
			}
			c.subs.put(sname, sc)
		}
	}
	return name, c, true
}

// parseKeySpec reads one key spec: a map (RESP3) or a flat array of
// field/value pairs (RESP2). A spec whose begin_search or find_keys is of
// a type this parser does not know is kept and finds no key.
func parseKeySpec(m *valkey.ValkeyMessage) (keySpec, bool) {
	var s keySpec
	fields, err := m.AsMap()
	if err != nil {
		return s, false
	}
	if bs, ok := fields["begin_search"]; ok {
		typ, spec := typedSpec(&bs)
		switch typ {
		case "index":
			s.begin, s.index = beginIndex, mapInt(spec, "index")
		case "keyword":
			s.begin = beginKeyword
			kw := spec["keyword"]
			s.keyword, _ = kw.ToString()
			s.startFrom = mapInt(spec, "startfrom")
		}
	}
	if fk, ok := fields["find_keys"]; ok {
		typ, spec := typedSpec(&fk)
		switch typ {
		case "range":
			s.find = findRange
			s.lastKey, s.keyStep, s.limit = mapInt(spec, "lastkey"), mapInt(spec, "keystep"), mapInt(spec, "limit")
		case "keynum":
			s.find = findKeynum
			s.keyNumIdx, s.firstKey, s.keyStep = mapInt(spec, "keynumidx"), mapInt(spec, "firstkey"), mapInt(spec, "keystep")
		}
	}
	return s, true
}

// typedSpec reads {type: ..., spec: {...}}.
func typedSpec(m *valkey.ValkeyMessage) (string, map[string]valkey.ValkeyMessage) {
	f, err := m.AsMap()
	if err != nil {
		return "", nil
	}
	t := f["type"]
	typ, _ := t.ToString()
	sm := f["spec"]
	spec, _ := sm.AsMap()
	return typ, spec
}

func mapInt(m map[string]valkey.ValkeyMessage, k string) int {
	v, ok := m[k]
	if !ok {
		return 0
	}
	return msgInt(&v)
}

// msgInt reads an integer reply (or a string holding one); 0 otherwise.
func msgInt(m *valkey.ValkeyMessage) int {
	if n, err := m.ToInt64(); err == nil {
		return int(n)
	}
	if n, err := m.AsInt64(); err == nil {
		return int(n)
	}
	return 0
}

// loadCommands reads the server's command table over conn for Do's
// routing. It is needed only where routing picks among connections:
// cluster mode, or PoolSize > 1. A server that refuses COMMAND (an ACL
// rule) leaves the table empty: Do then routes by its first argument.
func (e *Engine) loadCommands(ctx context.Context, conn drivers.ValkeyConn, log *slog.Logger) {
	if !e.cfg.ClusterMode && e.cfg.PoolSize == 1 {
		return
	}
	t, err := fetchCommandTable(ctx, conn)
	if err != nil {
		log.Warn("vactor: reading the command table failed: Do routes by its first argument", "error", err)
		return
	}
	e.cmds = t
}

// fetchCommandTable sends COMMAND on conn and parses the reply.
func fetchCommandTable(ctx context.Context, conn drivers.ValkeyConn) (commandTable, error) {
	msg, err := conn.Do(ctx, conn.B().Command().Build()).ToMessage()
	if err != nil {
		return nil, err
	}
	return parseCommandTable(msg)
}

// doKeys appends to dst the positions in args of the keys of the command
// name args sent through Do: as the server's command table says, or, for
// a command the table does not hold (or without a table), its first
// argument.
func (e *Engine) doKeys(dst []int, name string, args []string) []int {
	if len(args) == 0 {
		return dst
	}
	if e.cmds != nil {
		if keys, ok := e.cmds.keys(dst, name, args); ok {
			return keys
		}
	}
	return append(dst, 0)
}

// buildDo builds Do's command with its first key marked, so that its slot
// is the key's, and returns that key as its route ("" for a keyless
// command). In cluster mode a command whose keys hash to different slots
// fails with ErrCrossSlot: no node would run it.
func (e *Engine) buildDo(name string, args []string, pos []int) (valkey.Completed, string, error) {
	if len(pos) == 0 {
		return e.b.Arbitrary(name).Args(args...).Build(), "", nil
	}
	k := pos[0]
	key := args[k]
	if e.cl != nil && len(pos) > 1 {
		slot := e.slotOf(key)
		for _, p := range pos[1:] {
			if s := e.slotOf(args[p]); s != slot {
				return valkey.Completed{}, "", fmt.Errorf("%w: %s keys %q (slot %d) and %q (slot %d); use a hash tag",
					ErrCrossSlot, name, key, slot, args[p], s)
			}
		}
	}
	return e.b.Arbitrary(name).Args(args[:k]...).Keys(key).Args(args[k+1:]...).Build(), key, nil
}
