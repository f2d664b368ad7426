package config

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// configDoc is the page TestConfigurationDoc checks against the code.
const configDoc = "../docs/configuration.md"

// TestConfigurationDoc keeps docs/configuration.md from drifting: every
// Config field (TLS's included), every VALKEY_* variable LoadFromEnv
// reads and every URL parameter ParseURL accepts must be in the page, and
// the page must name none that does not exist.
func TestConfigurationDoc(t *testing.T) {
	doc, fields, params := configTables(t)

	t.Run("fields", func(t *testing.T) {
		documented := map[string]bool{}
		for _, row := range fields {
			for _, name := range codeSpans(row[0]) {
				documented[name] = true
			}
		}
		code := configFields(reflect.TypeFor[Config](), "")
		for _, f := range code {
			if !documented[f] {
				t.Errorf("Config field %s is missing from the Fields table of %s", f, configDoc)
			}
		}
		for name := range documented {
			if !slices.Contains(code, name) {
				t.Errorf("%s's Fields table names %s, which is not a Config field", configDoc, name)
			}
		}
	})

	t.Run("env", func(t *testing.T) {
		read := envNamesInSource(t)
		for _, v := range EnvVars {
			if !slices.Contains(read, v) {
				read = append(read, v)
			}
		}
		envName := regexp.MustCompile(`VALKEY_[A-Z0-9_]+`)
		inColumn := envName.FindAllString(column(fields, 1), -1)
		for _, name := range read {
			if !slices.Contains(inColumn, name) {
				t.Errorf("%s, read by LoadFromEnv, is missing from the env var column of %s", name, configDoc)
			}
		}
		// Named by the doc as variables LoadFromEnv does not read (other
		// modules' names a migrating user may have set).
		notRead := []string{"VALKEY_MIN_IDLE_CONNS", "VALKEY_MAX_IDLE_CONNS", "VALKEY_SENTINEL_MODE"}
		for _, name := range notRead {
			if slices.Contains(read, name) {
				t.Errorf("%s is read by LoadFromEnv, but %s says it is not", name, configDoc)
			}
		}
		for _, name := range envName.FindAllString(doc, -1) {
			if !slices.Contains(read, name) && !slices.Contains(notRead, name) {
				t.Errorf("%s names %s, which LoadFromEnv does not read", configDoc, name)
			}
		}
		// Each variable is on its field's row.
		for _, v := range envVars {
			if v.field == "" {
				continue
			}
			row := rowOf(fields, v.field)
			if row == nil {
				continue // reported by the fields subtest
			}
			if !slices.Contains(codeSpans(row[1]), v.name) {
				t.Errorf("%s: the row of %s does not name %s", configDoc, v.field, v.name)
			}
		}
	})

	t.Run("url", func(t *testing.T) {
		accepted := urlParamsInSource(t)
		for _, p := range urlParams {
			if !slices.Contains(accepted, p) {
				accepted = append(accepted, p)
			}
		}
		documented := map[string][]string{}
		for _, row := range params {
			for _, name := range codeSpans(row[0]) {
				documented[name] = row
			}
		}
		for _, p := range accepted {
			if documented[p] == nil {
				t.Errorf("URL parameter %s, accepted by ParseURL, is missing from the URL parameters table of %s", p, configDoc)
			}
		}
		for p := range documented {
			if !slices.Contains(accepted, p) {
				t.Errorf("%s's URL parameters table names %s, which ParseURL refuses", configDoc, p)
			}
		}
		// The parameter is on its field's rows, in both tables.
		for field, p := range urlFields {
			if row := documented[p]; row != nil && !slices.Contains(codeSpans(row[1]), field) {
				t.Errorf("%s: URL parameter %s should name the field %s", configDoc, p, field)
			}
			if row := rowOf(fields, field); row != nil && !slices.Contains(codeSpans(row[2]), p) {
				t.Errorf("%s: the row of %s should name the URL parameter %s", configDoc, field, p)
			}
		}
	})
}

// The rows of docs/configuration.md say what the user cannot guess from
// the code's behaviour alone (qa-AX): that standalone mode dials only the
// first address (AX-2: Addrs, VALKEY_ADDRS and ?addr= read as a failover
// list), the floor of the refresh intervals (AX-1), the bound of DB in
// every form (AX-6) and that JSON output is redacted (AX-3).
func TestConfigurationDocLimits(t *testing.T) {
	doc, fields, params := configTables(t)
	paramRow := func(name string) []string {
		for _, row := range params {
			if slices.Contains(codeSpans(row[0]), name) {
				return row
			}
		}
		t.Fatalf("%s: no URL parameter %s", configDoc, name)
		return nil
	}
	minRefresh := "at least `" + minRefreshInterval.String() + "`"
	for _, tc := range []struct {
		what string
		row  []string
		want string
	}{
		{"the Addrs row", rowOf(fields, "Addrs"), "in standalone mode (neither cluster nor sentinel mode) only the first is dialled"},
		{"the addr parameter", paramRow("addr"), "in standalone mode only the URL's own host is dialled"},
		{"the addr parameter", paramRow("addr"), "`addr=a,b` is refused"},
		{"the ClusterRefreshInterval row", rowOf(fields, "ClusterRefreshInterval"), minRefresh},
		{"the SentinelRefreshInterval row", rowOf(fields, "SentinelRefreshInterval"), minRefresh},
		{"the DB row", rowOf(fields, "DB"), "0 to " + strconv.Itoa(maxDB) + " in every form"},
		{"the db parameter", paramRow("db"), "0 to " + strconv.Itoa(maxDB)},
		{"the Host row", rowOf(fields, "Host"), "a `,`, `/`, `#`, `%` or any other character is refused"},
	} {
		if tc.row == nil {
			t.Errorf("%s: %s is missing", configDoc, tc.what)
			continue
		}
		if !strings.Contains(strings.Join(tc.row, "|"), tc.want) {
			t.Errorf("%s: %s does not say %q", configDoc, tc.what, tc.want)
		}
	}
	env := strings.Join(strings.Fields(doc[strings.Index(doc, "## Environment variables"):]), " ")
	if !strings.Contains(env, "without it (standalone mode) only its first address is dialled") {
		t.Errorf("%s: the Environment variables section does not say that VALKEY_ADDRS dials only its first address in standalone mode", configDoc)
	}
	if !strings.Contains(doc, "encode `cfg.Redacted()`") {
		t.Errorf("%s does not say that JSON output of a Config needs Redacted", configDoc)
	}
}

// configFields returns the exported fields of t, those of its struct
// fields of this package's types as "Field.Sub" (TLS.Enabled, ...).
func configFields(t reflect.Type, prefix string) []string {
	var names []string
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		ft := f.Type
		if ft.Kind() == reflect.Struct && ft.PkgPath() == t.PkgPath() {
			names = append(names, configFields(ft, prefix+f.Name+".")...)
			continue
		}
		names = append(names, prefix+f.Name)
	}
	return names
}

// docTable returns the rows (cells trimmed, header and separator left out)
// of the first table under the "## heading" of doc.
func docTable(t *testing.T, doc, heading string) [][]string {
	t.Helper()
	lines := strings.Split(doc, "\n")
	i := slices.Index(lines, "## "+heading)
	if i < 0 {
		t.Fatalf("%s has no heading %q", configDoc, "## "+heading)
	}
	var rows [][]string
	for _, l := range lines[i+1:] {
		if strings.HasPrefix(l, "#") {
			break
		}
		if !strings.HasPrefix(l, "|") {
			if len(rows) > 0 {
				break // the table ended
			}
			continue
		}
		rows = append(rows, splitRow(l))
	}
	if len(rows) < 3 {
		t.Fatalf("%s: no table under %q", configDoc, "## "+heading)
	}
	width := len(rows[0])
	for _, r := range rows {
		if len(r) != width {
			t.Fatalf("%s: under %q, a row of %d cells in a table of %d: %q", configDoc, heading, len(r), width, r)
		}
	}
	return rows[2:]
}

// splitRow splits a markdown table row into its cells; "\|" is a pipe
// inside a cell.
func splitRow(l string) []string {
	l = strings.TrimSpace(l)
	l = strings.TrimPrefix(l, "|")
	l = strings.TrimSuffix(l, "|")
	l = strings.ReplaceAll(l, `\|`, "\x00")
	cells := strings.Split(l, "|")
	for i, c := range cells {
		cells[i] = strings.TrimSpace(strings.ReplaceAll(c, "\x00", "|"))
	}
	return cells
}

var codeSpan = regexp.MustCompile("`([^`]+)`")

// codeSpans returns the texts in backquotes in cell.
func codeSpans(cell string) []string {
	var out []string
	for _, m := range codeSpan.FindAllStringSubmatch(cell, -1) {
		out = append(out, m[1])
	}
	return out
}

// column returns column i of rows, joined.
func column(rows [][]string, i int) string {
	var b strings.Builder
	for _, r := range rows {
		b.WriteString(r[i])
		b.WriteByte('\n')
	}
	return b.String()
}

// rowOf returns the row whose first cell names field alone, or nil.
func rowOf(rows [][]string, field string) []string {
	for _, r := range rows {
		if slices.Equal(codeSpans(r[0]), []string{field}) {
			return r
		}
	}
	return nil
}

// sourceFiles parses the package's non-test Go files.
func sourceFiles(t *testing.T) []*ast.File {
	t.Helper()
	paths, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var files []*ast.File
	for _, p := range paths {
		if strings.HasSuffix(p, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, p, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	if len(files) == 0 {
		t.Fatal("no Go files in the package directory")
	}
	return files
}

// envNamesInSource returns every "VALKEY_*" string literal of the
// package's code: the variables it can read.
func envNamesInSource(t *testing.T) []string {
	var names []string
	env := regexp.MustCompile(`^VALKEY_[A-Z0-9_]+$`)
	for _, f := range sourceFiles(t) {
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			s, err := strconv.Unquote(lit.Value)
			if err == nil && env.MatchString(s) && !slices.Contains(names, s) {
				names = append(names, s)
			}
			return true
		})
	}
	if len(names) == 0 {
		t.Fatal("found no VALKEY_* literal in the package's code")
	}
	return names
}

// urlParamsInSource returns the string cases of applyURLParam's switch:
// the query parameters it applies.
func urlParamsInSource(t *testing.T) []string {
	var names []string
	for _, f := range sourceFiles(t) {
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Name.Name != "applyURLParam" {
				continue
			}
			ast.Inspect(fn, func(n ast.Node) bool {
				cc, ok := n.(*ast.CaseClause)
				if !ok {
					return true
				}
				for _, e := range cc.List {
					if lit, ok := e.(*ast.BasicLit); ok && lit.Kind == token.STRING {
						if s, err := strconv.Unquote(lit.Value); err == nil {
							names = append(names, s)
						}
					}
				}
				return true
			})
		}
	}
	if len(names) == 0 {
		t.Fatal("found no case of applyURLParam in the package's code")
	}
	return names
}

// configTables reads docs/configuration.md and returns its text and the
// rows of its Fields and URL parameters tables.
func configTables(t *testing.T) (doc string, fields, params [][]string) {
	t.Helper()
	text, err := os.ReadFile(configDoc)
	if err != nil {
		t.Fatal(err)
	}
	doc = string(text)
	return doc, docTable(t, doc, "Fields"), docTable(t, doc, "URL parameters")
}
