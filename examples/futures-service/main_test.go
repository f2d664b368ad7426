package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/valkeytest"
)

// The service on a free port against a throwaway server: GET reads the
// seeded user and counts views; an unknown user is 404; POST writes the
// profile and an event in one transaction.
func TestFuturesServiceRequests(t *testing.T) {
	srv := valkeytest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	eng, err := engine.New(ctx, config.DefaultConfig().WithAddrs(srv.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	if err := seed(ctx, eng, 10); err != nil {
		t.Fatal(err)
	}
	base := serve(t, eng, nil)

	get := func(id string) (User, int) {
		t.Helper()
		resp, err := http.Get(base + "/user/" + id)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var u User
		if resp.StatusCode == http.StatusOK {
			if err := json.NewDecoder(resp.Body).Decode(&u); err != nil {
				t.Fatal(err)
			}
		}
		return u, resp.StatusCode
	}
	u, code := get("7")
	if code != http.StatusOK {
		t.Fatalf("GET /user/7: %d", code)
	}
	if u.Fields["name"] != "user 7" || u.Likes != 7 || u.Views != 1 ||
		strings.Join(u.Recent, ",") != "signed up,logged in" {
		t.Fatalf("GET /user/7 = %+v", u)
	}
	if u, _ = get("7"); u.Views != 2 {
		t.Fatalf("second GET: views %d, want 2", u.Views)
	}
	if _, code = get("999"); code != http.StatusNotFound {
		t.Fatalf("GET /user/999: %d, want 404", code)
	}

	resp, err := http.PostForm(base+"/user/7", url.Values{"name": {"Ada"}, "email": {"ada@example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("POST /user/7: %d", resp.StatusCode)
	}
	if u, _ = get("7"); u.Fields["name"] != "Ada" || u.Recent[0] != "profile updated" || u.Views != 3 {
		t.Fatalf("after POST: %+v", u)
	}
	resp, err = http.PostForm(base+"/user/7", url.Values{"name": {"no email"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("POST without email: %d, want 400", resp.StatusCode)
	}
}

// The whole program in load mode: seeds, serves on a free port, runs a
// short load against itself with no errors.
func TestFuturesServiceLoad(t *testing.T) {
	srv := valkeytest.Start(t)
	for _, v := range config.ServerEnvVars {
		t.Setenv(v, "")
	}
	t.Setenv("VALKEY_ADDR", srv.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, options{listen: "127.0.0.1:0", users: 50, load: 8, requests: 400}, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "400 GET /user/{id}") || !strings.Contains(out.String(), " 0 errors") {
		t.Fatalf("load output:\n%s", out.String())
	}
	t.Log(strings.TrimSpace(out.String()))
}

// GET /metrics serves the engine's metrics through the OTel Prometheus
// exporter: command durations by operation, connections, pipelines.
func TestFuturesServiceMetrics(t *testing.T) {
	srv := valkeytest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, err := newMetrics()
	if err != nil {
		t.Fatal(err)
	}
	defer m.close()
	eng, err := engine.New(ctx, config.DefaultConfig().WithAddrs(srv.Addr()).WithHooks(m.hook))
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	if err := m.observe(eng); err != nil {
		t.Fatal(err)
	}
	if err := seed(ctx, eng, 10); err != nil {
		t.Fatal(err)
	}
	base := serve(t, eng, m.handler)
	resp, err := http.Get(base + "/user/3")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// The hooks run on the engine's hook goroutine, just after the
	// commands complete: wait for the GET's HGETALL to be counted.
	deadline := time.Now().Add(10 * time.Second)
	var text string
	for {
		resp, err := http.Get(base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		resp.Body.Close()
		text = b.String()
		if strings.Contains(text, `db_operation_name="HGETALL"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no HGETALL in /metrics:\n%s", text)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, want := range []string{
		"# TYPE db_client_operation_duration_seconds histogram",
		`db_system_name="valkey"`,
		`server_port="` + strconv.Itoa(srv.Port()) + `"`,
		`db_client_operation_duration_seconds_bucket{`,
		`le="0.001"`,
		`db_client_connection_count{`,
		`db_client_connection_state="idle"`,
		"vactor_pipeline_size",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if t.Failed() {
		t.Log(text)
	}
}

// Pointed at a server of one's own (VALKEY_ADDR), the example must not
// overwrite or delete its keys: seeding leaves keys such as "{user:1}"
// and "{user:1}:events" as they were, and the service reads its own.
func TestFuturesServiceKeepsTheServersKeys(t *testing.T) {
	srv := valkeytest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	eng, err := engine.New(ctx, config.DefaultConfig().WithAddrs(srv.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	mine := []string{"{user:1}", "{user:1}:likes", "{user:1}:events", "{user:1}:views"}
	for _, k := range mine {
		if _, err := eng.Set(ctx, k, "mine", 0).Await(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := seed(ctx, eng, 3); err != nil {
		t.Fatal(err)
	}
	base := serve(t, eng, nil)
	resp, err := http.Get(base + "/user/1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /user/1: %d", resp.StatusCode)
	}
	for _, k := range mine {
		if v, err := eng.Get(ctx, k).Await(ctx); err != nil || v != "mine" {
			t.Errorf("the server's own key %q is now %q, %v; want \"mine\"", k, v, err)
		}
	}
}

// serve runs the service over eng on a free loopback port until the test
// ends and returns its base URL.
func serve(t *testing.T, eng *engine.Engine, metrics http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: newService(eng).routes(metrics)}
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { shutdown(hs) })
	return "http://" + ln.Addr().String()
}
