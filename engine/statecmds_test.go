package engine_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/vactor-io/vactor/engine"
)

// Every command that changes its connection's state is refused on the
// shared connections with a *ConnectionStateError naming the alternative,
// in any letter case, CLIENT by its subcommand; the others pass, without
// allocating.
func TestCheckShared(t *testing.T) {
	refused := []struct {
		cmd       []string
		name, use string
		dedicated bool // Dedicated runs it
	}{
		{[]string{"MULTI"}, "MULTI", "Engine.Tx", true},
		{[]string{"exec"}, "EXEC", "Engine.Tx", true},
		{[]string{"Discard"}, "DISCARD", "Engine.Tx", true},
		{[]string{"watch", "k"}, "WATCH", "Engine.Watch", true},
		{[]string{"UNWATCH"}, "UNWATCH", "Engine.Watch", true},
		{[]string{"select", "1"}, "SELECT", "Config.DB", true},
		{[]string{"AUTH", "u", "p"}, "AUTH", "Config.Username", true},
		{[]string{"hello", "2"}, "HELLO", "Config.Username", true},
		{[]string{"RESET"}, "RESET", "Engine.Dedicated", true},
		{[]string{"client", "setname", "x"}, "CLIENT SETNAME", "Config.ClientName", true},
		{[]string{"CLIENT", "SETINFO", "LIB-NAME", "x"}, "CLIENT SETINFO", "Config.ClientName", true},
		{[]string{"CLIENT", "tracking", "on"}, "CLIENT TRACKING", "Engine.Dedicated", true},
		{[]string{"CLIENT", "CACHING", "yes"}, "CLIENT CACHING", "Engine.Dedicated", true},
		{[]string{"CLIENT", "NO-EVICT", "on"}, "CLIENT NO-EVICT", "Engine.Dedicated", true},
		{[]string{"CLIENT", "no-touch", "on"}, "CLIENT NO-TOUCH", "Engine.Dedicated", true},
		{[]string{"CLIENT", "CAPA", "redirect"}, "CLIENT CAPA", "Engine.Dedicated", true},
		{[]string{"CLIENT", "REPLY", "ON"}, "CLIENT REPLY", "Engine.Dedicated", true},
		{[]string{"CLIENT", "REPLY", "off"}, "CLIENT REPLY", "Engine.Dedicated", false},
		{[]string{"client", "reply", "SKIP"}, "CLIENT REPLY", "Engine.Dedicated", false},
		{[]string{"READONLY"}, "READONLY", "Config.ReadFrom", true},
		{[]string{"readwrite"}, "READWRITE", "Config.ReadFrom", true},
		{[]string{"ASKING"}, "ASKING", "ASK", true},
		{[]string{"quit"}, "QUIT", "Engine.Close", true},
		{[]string{"SUBSCRIBE", "c"}, "SUBSCRIBE", "Engine.Subscribe", false},
		{[]string{"psubscribe", "c*"}, "PSUBSCRIBE", "Engine.Subscribe", false},
		{[]string{"SSubscribe", "c"}, "SSUBSCRIBE", "Engine.Subscribe", false},
		{[]string{"UNSUBSCRIBE"}, "UNSUBSCRIBE", "Engine.Subscribe", false},
		{[]string{"punsubscribe"}, "PUNSUBSCRIBE", "Engine.Subscribe", false},
		{[]string{"SUNSUBSCRIBE", "c"}, "SUNSUBSCRIBE", "Engine.Subscribe", false},
		{[]string{"somethingsubscribe"}, "SOMETHINGSUBSCRIBE", "Engine.Subscribe", false},
		{[]string{"MONITOR"}, "MONITOR", "not supported", false},
		{[]string{"sync"}, "SYNC", "not supported", false},
		{[]string{"PSYNC", "?", "-1"}, "PSYNC", "not supported", false},
		{[]string{"REPLCONF", "listening-port", "1"}, "REPLCONF", "not supported", false},
		{[]string{"SCRIPT", "DEBUG", "YES"}, "SCRIPT DEBUG", "Lua debugger", false},
		{[]string{"script", "debug", "sync"}, "SCRIPT DEBUG", "Lua debugger", false},
		{[]string{"Script", "Debug"}, "SCRIPT DEBUG", "Lua debugger", false},
	}
	for _, c := range refused {
		err := engine.CheckShared(c.cmd[0], c.cmd[1:])
		var cse *engine.ConnectionStateError
		if !errors.As(err, &cse) || !errors.Is(err, engine.ErrConnectionState) || !errors.Is(err, engine.ErrInvalidArgument) {
			t.Errorf("%v: err = %v, want a *ConnectionStateError", c.cmd, err)
			continue
		}
		if cse.Command != c.name || !strings.Contains(cse.Use, c.use) || cse.Dedicated {
			t.Errorf("%v: %+v, want Command %q and Use naming %q", c.cmd, cse, c.name, c.use)
		}
		if !strings.Contains(err.Error(), c.name) || !strings.Contains(err.Error(), cse.Use) {
			t.Errorf("%v: message %q does not name the command and the alternative", c.cmd, err)
		}
		derr := engine.CheckDedicated(c.cmd[0], c.cmd[1:])
		if c.dedicated != (derr == nil) {
			t.Errorf("%v: CheckDedicated = %v, want refused %v", c.cmd, derr, !c.dedicated)
		}
		if derr != nil && (!errors.As(derr, &cse) || !cse.Dedicated || !errors.Is(derr, engine.ErrConnectionState)) {
			t.Errorf("%v: CheckDedicated = %#v", c.cmd, derr)
		}
	}
	passed := [][]string{
		{"GET", "k"}, {"SET", "k", "v"}, {"SWAPDB", "0", "1"}, {"FLUSHALL"},
		{"CLIENT", "LIST"}, {"CLIENT", "ID"}, {"client", "getname"}, {"CLIENT", "KILL", "ID", "1"},
		{"CLIENT"}, {"PUBLISH", "c", "m"}, {"SPUBLISH", "c", "m"}, {"EVAL", "return 1", "0"},
		{"WAIT", "0", "0"}, {"MULTIX"}, {"SELECTS"}, {"averyveryverylongcommandname"},
		{"XREAD", "STREAMS", "s", "0"}, {"SCRIPT", "DEBUG", "no"}, {"SCRIPT", "FLUSH"}, {"SCRIPT", "LOAD", "return 1"},
		{"SCRIPT"},
	}
	for _, c := range passed {
		if err := engine.CheckShared(c[0], c[1:]); err != nil {
			t.Errorf("%v: refused: %v", c, err)
		}
		if err := engine.CheckDedicated(c[0], c[1:]); err != nil {
			t.Errorf("%v: refused on Dedicated: %v", c, err)
		}
	}
	get, client := []string{"k"}, []string{"list"}
	if n := testing.AllocsPerRun(100, func() {
		_ = engine.CheckShared("get", get)
		_ = engine.CheckShared("CLIENT", client)
		_ = engine.CheckShared("averyveryverylongcommandname", nil)
		_ = engine.CheckShared("SCRIPT", client)
	}); n != 0 {
		t.Errorf("CheckShared of ordinary commands allocates %.1f times", n)
	}
}
