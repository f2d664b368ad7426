package engine_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/vactor-io/vactor/engine"
)

// Every typed command of the Engine has a Pipeline and a Tx twin with the
// same arguments after ctx and the same future type (qa-AN AN4: a
// pipeline had 30 of them), except those that cannot go in one.
func TestPipelineCoversEngineCommands(t *testing.T) {
	not := map[string]string{
		"BLPop": "blocking", "BRPop": "blocking", "BLMove": "blocking",
		"PingFuture":   "the Engine's health check; Do(\"PING\")",
		"ScanPage":     "a cursor walk over every node",
		"ScriptLoad":   "loads on every node",
		"WaitReplicas": "bounded by the shared connection's read timeout; Do(\"WAIT\")",
	}
	eng := reflect.TypeFor[*engine.Engine]()
	for _, of := range []reflect.Type{reflect.TypeFor[*engine.Pipeline](), reflect.TypeFor[*engine.Tx]()} {
		n := 0
		for i := range eng.NumMethod() {
			m := eng.Method(i)
			if m.Type.NumOut() != 1 || !strings.HasPrefix(m.Type.Out(0).String(), "*futures.Future[") {
				continue
			}
			if _, ok := not[m.Name]; ok {
				continue
			}
			tw, ok := of.MethodByName(m.Name)
			if !ok {
				t.Errorf("Engine.%s has no %s twin", m.Name, of)
				continue
			}
			// Engine: receiver, ctx, args...; twin: receiver, args...
			want, got := m.Type, tw.Type
			same := got.NumIn() == want.NumIn()-1 && got.IsVariadic() == want.IsVariadic() && got.Out(0) == want.Out(0)
			for a := 1; same && a < got.NumIn(); a++ {
				same = got.In(a) == want.In(a+1)
			}
			if !same {
				t.Errorf("%s.%s is %s; want the Engine's %s without its ctx", of, m.Name, got, want)
			}
			n++
		}
		if n < 60 {
			t.Errorf("%s: %d twins checked; the Engine's typed commands were not found", of, n)
		}
	}
	for name := range not {
		if _, ok := eng.MethodByName(name); !ok {
			t.Errorf("excluded Engine.%s does not exist", name)
		}
	}
}
