package config

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// TestConfigurationDocDefaults checks the default column of
// docs/configuration.md's Fields table against DefaultConfig(): the
// first code span of each row's default is the field's value as fmt
// prints it ("" for an empty string); a slice's default reads "empty"
// or "nil", a func's or pointer's "nil". TestConfigurationDoc checks
// the names, not the values.
func TestConfigurationDocDefaults(t *testing.T) {
	_, fields, _ := configTables(t)
	def := reflect.ValueOf(DefaultConfig())
	for _, row := range fields {
		names := codeSpans(row[0])
		if len(names) != 1 {
			continue
		}
		name := names[0]
		var v reflect.Value
		if strings.HasPrefix(name, "TLS.") {
			v = def.FieldByName("TLS").FieldByName(strings.TrimPrefix(name, "TLS."))
		} else {
			v = def.FieldByName(name)
		}
		if !v.IsValid() {
			t.Errorf("%s: no field", name)
			continue
		}
		cell := strings.TrimSpace(row[3])
		spans := codeSpans(cell)
		got := fmt.Sprint(v.Interface())
		switch {
		case v.Kind() == reflect.Slice:
			if v.Len() > 0 || !(strings.HasPrefix(cell, "empty") || strings.HasPrefix(cell, "nil")) {
				t.Errorf("%s: DefaultConfig has %v, doc says %q", name, got, cell)
			}
		case v.Kind() == reflect.Func || v.Kind() == reflect.Pointer:
			if !v.IsNil() || !strings.HasPrefix(cell, "nil") {
				t.Errorf("%s: DefaultConfig has %v, doc says %q", name, got, cell)
			}
		case len(spans) == 0:
			t.Errorf("%s: doc default %q has no code span; code %q", name, cell, got)
		default:
			want := spans[0]
			if want == `""` {
				want = ""
			}
			if got != want {
				t.Errorf("%s: DefaultConfig has %q, doc says %q", name, got, want)
			}
		}
	}
}
