package engine

import "strings"

// Commands that change the state of the connection they run on.
//
// The engine's connections are shared: one pipelined connection carries
// the commands of every caller (the connection actors), a transaction
// connection goes back to a pool after each Tx or Watch, a batch writer's
// connection carries every Write. A command that changes its connection's
// state would change it under the other callers: after MULTI they read
// "QUEUED", after SELECT 1 they read another database, after CLIENT REPLY
// OFF they get no replies at all. Do, Pipeline.Do, Tx.Do, TxReader.Do and
// BatchWriter.Write refuse these commands with a *ConnectionStateError,
// sending nothing; Engine.Dedicated runs most of them on a connection of
// the caller's own (see the table for those it cannot).
//
// The commands (case-insensitive; CLIENT by its subcommand):
//
//	MULTI EXEC DISCARD WATCH UNWATCH    use Tx, Watch/WatchRetry or Dedicated
//	SELECT                              set Config.DB, or Dedicated
//	AUTH HELLO RESET                    set Config.Username/Password, or Dedicated
//	CLIENT SETNAME CLIENT SETINFO       set Config.ClientName, or Dedicated
//	CLIENT TRACKING CLIENT CACHING      Dedicated
//	CLIENT NO-EVICT CLIENT NO-TOUCH     Dedicated
//	CLIENT CAPA                         Dedicated
//	READONLY READWRITE                  set Config.ReadFrom, or Dedicated
//	ASKING                              (the engine follows ASK itself), or Dedicated
//	QUIT                                Engine.Close, or Dedicated
//	SUBSCRIBE PSUBSCRIBE SSUBSCRIBE and their UNSUBSCRIBE
//	                                    Subscribe, PSubscribe, SSubscribe (not Dedicated)
//	CLIENT REPLY                        Dedicated (ON only: OFF and SKIP leave
//	                                    commands without the reply the driver waits for)
//	MONITOR SYNC PSYNC REPLCONF         not supported (a stream of replies
//	                                    without commands)
//	SCRIPT DEBUG YES, SCRIPT DEBUG SYNC not supported: the connection's next
//	                                    EVAL enters the Lua debugger, whose
//	                                    replies follow its own protocol
//	                                    (SCRIPT DEBUG NO is let through)
//
// Dedicated gives its connection back to its pool after RESET, which ends
// all of the above but CLIENT NO-EVICT (on Redis 7.0), NO-TOUCH, SETINFO
// and CAPA: after any of those it closes the connection instead.
//
// CLIENT SETNAME changes only the connection's name, but that name is
// Config.ClientName's, the one CLIENT LIST and CLIENT KILL show, and it
// would change on one connection of the pool only: it is refused too.
// Commands that change the server's state rather than the connection's
// (SWAPDB, FLUSHALL, CONFIG SET, CLIENT KILL, CLIENT PAUSE, ...) are not
// refused.

// stateCmd is a command that changes its connection's state.
type stateCmd struct {
	use       string // what to use instead, for the error
	dedicated bool   // Dedicated runs it
	// sticky: RESET does not undo it on every server (Redis 7.0 keeps
	// NO-EVICT; no version resets SETINFO's library name), so Dedicated
	// closes the connection instead of reusing it.
	sticky bool
}

const (
	useTx       = "use Engine.Tx for MULTI/EXEC, Engine.Watch or WatchRetry for WATCH, or Engine.Dedicated"
	useDB       = "set Config.DB (every connection of the engine selects it), or use Engine.Dedicated"
	useAuth     = "set Config.Username and Config.Password (the engine speaks RESP3), or use Engine.Dedicated"
	useName     = "set Config.ClientName, or use Engine.Dedicated"
	useDed      = "use Engine.Dedicated"
	useReadFrom = "set Config.ReadFrom for reads from replicas, or use Engine.Dedicated"
	useAsk      = "the engine follows ASK redirects itself; or use Engine.Dedicated"
	useClose    = "use Engine.Close, or Engine.Dedicated"
	useSub      = "use Engine.Subscribe, PSubscribe or SSubscribe (or SubscribeWith)"
	useNone     = "not supported: the server answers with a stream of replies no command asked for"
	useReply    = "use Engine.Dedicated (CLIENT REPLY ON only: OFF and SKIP leave commands without the reply the driver waits for)"
	useDebug    = "not supported: the connection's next EVAL would enter the Lua debugger (its replies follow the debugger's protocol); debug scripts with valkey-cli --ldb"
)

// stateCmds are the commands by upper-case name; CLIENT's by subcommand
// in clientStateCmds.
var stateCmds = map[string]stateCmd{
	"MULTI":        {useTx, true, false},
	"EXEC":         {useTx, true, false},
	"DISCARD":      {useTx, true, false},
	"WATCH":        {useTx, true, false},
	"UNWATCH":      {useTx, true, false},
	"SELECT":       {useDB, true, false},
	"AUTH":         {useAuth, true, false},
	"HELLO":        {useAuth, true, false},
	"RESET":        {useDed, true, false},
	"READONLY":     {useReadFrom, true, false},
	"READWRITE":    {useReadFrom, true, false},
	"ASKING":       {useAsk, true, false},
	"QUIT":         {useClose, true, false},
	"SUBSCRIBE":    {useSub, false, false},
	"PSUBSCRIBE":   {useSub, false, false},
	"SSUBSCRIBE":   {useSub, false, false},
	"UNSUBSCRIBE":  {useSub, false, false},
	"PUNSUBSCRIBE": {useSub, false, false},
	"SUNSUBSCRIBE": {useSub, false, false},
	"MONITOR":      {useNone, false, false},
	"SYNC":         {useNone, false, false},
	"PSYNC":        {useNone, false, false},
	"REPLCONF":     {useNone, false, false},
}

var clientStateCmds = map[string]stateCmd{
	"SETNAME":  {useName, true, false},
	"SETINFO":  {useName, true, true},
	"TRACKING": {useDed, true, false},
	"CACHING":  {useDed, true, false},
	"NO-EVICT": {useDed, true, true},
	"NO-TOUCH": {useDed, true, true},
	"CAPA":     {useDed, true, true},
	"REPLY":    {useReply, false, false}, // ON is fine on Dedicated: see lookupStateCmd
}

// maxStateName is the longest name in the tables.
const maxStateName = len("PUNSUBSCRIBE")

// upper copies s upper-cased (ASCII) into buf; false when s is longer than
// any name in the tables.
func upper(buf *[maxStateName]byte, s string) ([]byte, bool) {
	if len(s) > len(buf) {
		return nil, false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		buf[i] = c
	}
	return buf[:len(s)], true
}

// lookupStateCmd returns the entry of name/args when the command changes
// its connection's state. It does not allocate.
func lookupStateCmd(name string, args []string) (stateCmd, bool) {
	var buf [maxStateName]byte
	b, ok := upper(&buf, name)
	if !ok {
		return subscribeLike(name)
	}
	if string(b) == "SCRIPT" {
		return scriptDebug(args)
	}
	if string(b) != "CLIENT" {
		if c, ok := stateCmds[string(b)]; ok {
			return c, true
		}
		return subscribeLike(name)
	}
	if len(args) == 0 {
		return stateCmd{}, false
	}
	if b, ok = upper(&buf, args[0]); !ok {
		return stateCmd{}, false
	}
	c, ok := clientStateCmds[string(b)]
	if ok && string(b) == "REPLY" {
		// ON (or no mode: a syntax error) keeps one reply per command.
		c.dedicated = len(args) < 2 || isOn(args[1])
	}
	return c, ok
}

// scriptDebug reports SCRIPT DEBUG with a mode other than NO (YES, SYNC,
// or a mode the server refuses) as changing the connection's state: after
// YES or SYNC the connection's next EVAL runs in the Lua debugger, which
// answers with its own protocol; on a shared connection another caller's
// EVAL got the debugger's log as its reply, and the next commands its
// error replies (QA-AA 1).
func scriptDebug(args []string) (stateCmd, bool) {
	var buf [maxStateName]byte
	if len(args) == 0 {
		return stateCmd{}, false
	}
	if b, ok := upper(&buf, args[0]); !ok || string(b) != "DEBUG" {
		return stateCmd{}, false
	}
	if len(args) >= 2 {
		if b, ok := upper(&buf, args[1]); ok && string(b) == "NO" {
			return stateCmd{}, false
		}
	}
	return stateCmd{use: useDebug}, true
}

// subscribeLike reports any other name ending in SUBSCRIBE as the
// SUBSCRIBE family: no such command exists, and valkey-go refuses to
// build one (it panics).
func subscribeLike(name string) (stateCmd, bool) {
	const suffix = "SUBSCRIBE"
	if len(name) < len(suffix) {
		return stateCmd{}, false
	}
	tail := name[len(name)-len(suffix):]
	for i := 0; i < len(suffix); i++ {
		c := tail[i]
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c != suffix[i] {
			return stateCmd{}, false
		}
	}
	return stateCmd{use: useSub}, true
}

func isOn(s string) bool {
	return len(s) == 2 && (s[0] == 'o' || s[0] == 'O') && (s[1] == 'n' || s[1] == 'N')
}

// checkShared returns a *ConnectionStateError when name/args must not run
// on a shared connection (the connection actors, a pooled transaction
// connection, a batch writer's), nil otherwise. It does not allocate for
// other commands.
func checkShared(name string, args []string) error {
	c, ok := lookupStateCmd(name, args)
	if !ok {
		return nil
	}
	return newConnectionStateError(name, args, c.use)
}

// checkDedicated returns a *ConnectionStateError when name/args cannot run
// even on a connection of its own (Engine.Dedicated): its replies do not
// follow one per command. sticky reports a command whose effect RESET
// does not undo: the connection must not be reused.
func checkDedicated(name string, args []string) (sticky bool, err error) {
	c, ok := lookupStateCmd(name, args)
	if !ok {
		return false, nil
	}
	if c.dedicated {
		return c.sticky, nil
	}
	use := c.use
	if use == useReply {
		use = "not supported: OFF and SKIP leave commands without the reply the driver waits for"
	}
	return false, &ConnectionStateError{Command: commandName(name, args), Use: use, Dedicated: true}
}

func newConnectionStateError(name string, args []string, use string) *ConnectionStateError {
	return &ConnectionStateError{Command: commandName(name, args), Use: use}
}

// commandName returns the upper-case command name, with CLIENT's and
// SCRIPT's subcommand.
func commandName(name string, args []string) string {
	if (strings.EqualFold(name, "CLIENT") || strings.EqualFold(name, "SCRIPT")) && len(args) > 0 {
		return strings.ToUpper(name) + " " + strings.ToUpper(args[0])
	}
	return strings.ToUpper(name)
}
