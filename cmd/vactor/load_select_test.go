package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vactor-io/vactor/valkeytest"
)

// A SELECT in RESP input (redis-rdb-tools' protocol output has one per
// database) cannot switch the engine's shared connections: it failed, and
// the commands after it, meant for that database, went on into the one
// the load writes to, merged with its keys (qa45c: SELECT 1, SET b ->
// b in database 0, where redis-cli --pipe puts it in 1). A SELECT of the
// database loaded into is skipped; one of another stops the load there,
// with the line to resume from and the database to give.
func TestLoadSelectStopsAtAnotherDatabase(t *testing.T) {
	srv := valkeytest.Start(t)
	dir := t.TempDir()
	in := respOf("SELECT", "2") + // line 1: the database loaded into (-url .../2)
		respOf("SET", "a", "1") + // 6
		respOf("select", "3") + // 13: another one
		respOf("SET", "b", "2") // 18
	path := filepath.Join(dir, "dbs.resp")
	if err := os.WriteFile(path, []byte(in), 0o644); err != nil {
		t.Fatal(err)
	}
	r := vactor(t, nil, "", "load", "-quiet", "-url", "redis://"+srv.Addr()+"/2", path)
	if r.code != exitFailed {
		t.Fatalf("exit %d, want %d\n%s%s", r.code, exitFailed, r.stdout, r.stderr)
	}
	summary(t, r.stdout, 1, 1, 0, 0)
	mustContain(t, "summary", r.stdout, "stopped at line 13: SELECT 3", "-url ending in /3")
	errs, err := os.ReadFile(path + ".errors")
	if err != nil {
		t.Fatal(err)
	}
	mustHaveLine(t, "errors file", string(errs), "line 13: failed: SELECT", "database 3")
	eng := connect(t, false, srv.Addr())
	for db, keys := range map[string]string{"0": "", "2": "a", "3": ""} {
		do(t, eng, "SWAPDB", "0", db) // look at database db as 0
		var got []string
		for _, k := range do(t, eng, "KEYS", "*").([]any) {
			got = append(got, k.(string))
		}
		do(t, eng, "SWAPDB", "0", db)
		if strings.Join(got, ",") != keys {
			t.Errorf("database %s holds %q, want %q", db, got, keys)
		}
	}
}
