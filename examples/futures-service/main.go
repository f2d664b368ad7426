// Command futures-service is an HTTP service that fires several Valkey
// commands per request and awaits them together.
//
//	GET  /user/{id}   reads the user's hash, like counter and recent events,
//	                  and counts the view: four commands in flight at once,
//	                  so the request costs one round trip, not four.
//	POST /user/{id}   (form fields name, email) writes the profile and an
//	                  event atomically in a transaction (MULTI/EXEC).
//
// It connects to $VALKEY_URL or $VALKEY_ADDR (and the other VALKEY_*
// variables, see the README), or starts a throwaway server when none names
// a server (config.EnvNamesServer), seeds -users users with one
// pipeline, and listens on -listen. Its keys all start with
// "{vactor-example:user:" (one hash tag per user), so a server's own keys
// are never touched; the seeded users are left on the server.
//
//	go run ./examples/futures-service
//	go run ./examples/futures-service -load 64 -requests 20000
//
// With -load N it also runs N concurrent HTTP clients against itself for
// -requests GETs in all, prints the rate and the p50/p99 latencies, and
// exits.
//
//	GET  /metrics     the engine's metrics in the Prometheus text format:
//	                  the otelvactor hook records them through an
//	                  OpenTelemetry MeterProvider read by the OTel
//	                  Prometheus exporter.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/vactor-io/vactor/config"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/otelvactor"
	"github.com/vactor-io/vactor/valkeytest"
)

func main() {
	var o options
	flag.StringVar(&o.listen, "listen", "127.0.0.1:8080", "address to serve HTTP on (port 0: a free port)")
	flag.IntVar(&o.users, "users", 1000, "users to seed")
	flag.IntVar(&o.load, "load", 0, "run this many concurrent clients against the service, print the figures and exit (0: serve until interrupted)")
	flag.IntVar(&o.requests, "requests", 20000, "GET requests in all for -load")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

type options struct {
	listen   string
	users    int
	load     int
	requests int
}

// run connects (or starts a throwaway server), seeds, serves, and runs the
// load when asked; it returns when ctx ends or the load is done.
func run(ctx context.Context, o options, out io.Writer) error {
	cfg, err := config.LoadFromEnv()
	if err != nil {
		return err
	}
	if !config.EnvNamesServer() {
		srv, err := valkeytest.StartServer(valkeytest.Options{Name: "futures-service"})
		if err != nil {
			return fmt.Errorf("start a throwaway server: %w", err)
		}
		defer srv.Stop()
		cfg = cfg.WithAddrs(srv.Addr())
		fmt.Fprintln(out, "started a throwaway server on", srv.Addr())
	}
	m, err := newMetrics()
	if err != nil {
		return err
	}
	defer m.close()
	nctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	eng, err := engine.New(nctx, cfg.WithHooks(m.hook))
	cancel()
	if err != nil {
		return err
	}
	defer eng.Close()
	if err := m.observe(eng); err != nil {
		return err
	}
	if err := seed(ctx, eng, o.users); err != nil {
		return err
	}

	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: newService(eng).routes(m.handler), ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	base := "http://" + ln.Addr().String()
	fmt.Fprintf(out, "serving on %s (try %s/user/1 and %s/metrics)\n", base, base, base)

	if o.load > 0 {
		r, err := runLoad(ctx, base, o.load, o.requests, o.users)
		if err == nil {
			fmt.Fprintln(out, r)
		}
		shutdown(hs)
		<-served
		return err
	}
	select {
	case <-ctx.Done():
	case err := <-served:
		return err
	}
	shutdown(hs)
	<-served
	return nil
}

func shutdown(hs *http.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = hs.Shutdown(ctx)
}

// Keys of one user. The hash tag keeps them in one cluster slot, so a
// user's transaction works in cluster mode too; the vactor-example: prefix
// keeps them apart from the keys of the server the example is pointed at.
func userKey(id string) string   { return "{vactor-example:user:" + id + "}" }
func viewsKey(id string) string  { return userKey(id) + ":views" }
func likesKey(id string) string  { return userKey(id) + ":likes" }
func eventsKey(id string) string { return userKey(id) + ":events" }

// seed writes users 1..n with one pipeline: every command is queued, then
// sent together; Exec returns once every reply is in.
func seed(ctx context.Context, eng *engine.Engine, n int) error {
	p := eng.Pipeline()
	for i := 1; i <= n; i++ {
		id := strconv.Itoa(i)
		p.HSet(userKey(id), "name", "user "+id, "email", "user"+id+"@example.com")
		p.Set(likesKey(id), strconv.Itoa(i%50), 0)
		p.Del(eventsKey(id))
		p.RPush(eventsKey(id), "signed up", "logged in")
	}
	return p.Exec(ctx)
}

type service struct {
	eng *engine.Engine
}

func newService(eng *engine.Engine) *service { return &service{eng: eng} }

// routes serves the users, and metrics at /metrics when not nil.
func (s *service) routes(metrics http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /user/{id}", s.getUser)
	mux.HandleFunc("POST /user/{id}", s.postUser)
	if metrics != nil {
		mux.Handle("GET /metrics", metrics)
	}
	return mux
}

// metrics is the OpenTelemetry side: the otelvactor hook over a
// MeterProvider whose reader is the OTel Prometheus exporter, registered
// in a registry of its own that handler serves. The per-command histogram
// (db.client.operation.duration) is aggregated by the hook itself and
// read by the exporter through an otelvactor.Producer: the cheap way at
// high command rates.
type metrics struct {
	hook     *otelvactor.Hook
	provider *sdkmetric.MeterProvider
	handler  http.Handler
	reg      metric.Registration
}

func newMetrics() (*metrics, error) {
	registry := prometheus.NewRegistry()
	producer := otelvactor.NewProducer()
	exporter, err := otelprom.New(otelprom.WithRegisterer(registry), otelprom.WithProducer(producer))
	if err != nil {
		return nil, err
	}
	m := &metrics{provider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter))}
	// Metrics only: with a TracerProvider (WithTracerProvider, or the
	// global one) each command also gets a span.
	if m.hook, err = otelvactor.New(otelvactor.WithMeterProvider(m.provider), otelvactor.WithoutTracing(),
		otelvactor.WithProducer(producer)); err != nil {
		return nil, err
	}
	m.handler = promhttp.HandlerFor(registry, promhttp.HandlerOpts{})
	return m, nil
}

// observe adds the gauges that read eng's state (connections, mailboxes,
// breakers).
func (m *metrics) observe(eng *engine.Engine) (err error) {
	m.reg, err = m.hook.Observe(eng)
	return err
}

func (m *metrics) close() {
	if m.reg != nil {
		_ = m.reg.Unregister()
	}
	_ = m.provider.Shutdown(context.Background())
}

// User is the GET /user/{id} response.
type User struct {
	ID     string            `json:"id"`
	Fields map[string]string `json:"fields"`
	Views  int64             `json:"views"`
	Likes  int64             `json:"likes"`
	Recent []string          `json:"recent"`
}

func (s *service) getUser(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	id := r.PathValue("id")
	// Fire: four commands, four futures, nothing waited for yet.
	fields := s.eng.HGetAll(ctx, userKey(id))
	likes := s.eng.Get(ctx, likesKey(id))
	recent := s.eng.LRange(ctx, eventsKey(id), 0, 9)
	views := s.eng.Incr(ctx, viewsKey(id))
	// Await them together: the slowest reply sets the latency.
	if err := awaitAll(ctx, fields, recent, views); err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	u := User{ID: id}
	u.Fields, _ = fields.Await(ctx)
	if len(u.Fields) == 0 {
		http.Error(w, "no such user", http.StatusNotFound)
		return
	}
	u.Recent, _ = recent.Await(ctx)
	u.Views, _ = views.Await(ctx)
	switch v, err := likes.Await(ctx); {
	case errors.Is(err, engine.ErrNil): // no likes yet
	case err != nil:
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	default:
		u.Likes, _ = strconv.ParseInt(v, 10, 64)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(u)
}

// postUser writes the profile and an event in one transaction: both or
// neither.
func (s *service) postUser(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	id := r.PathValue("id")
	name, email := r.FormValue("name"), r.FormValue("email")
	if name == "" || email == "" {
		http.Error(w, "name and email are required", http.StatusBadRequest)
		return
	}
	tx := s.eng.Tx()
	tx.HSet(userKey(id), "name", name, "email", email)
	tx.LPush(eventsKey(id), "profile updated")
	tx.LTrim(eventsKey(id), 0, 99)
	if err := tx.Exec(ctx); err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// awaitAll waits for every future (of any type) and returns the first
// error, or ctx's.
func awaitAll(ctx context.Context, fs ...interface{ Err(context.Context) error }) error {
	var first error
	for _, f := range fs {
		if err := f.Err(ctx); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// loadResult is what runLoad measured.
type loadResult struct {
	Requests, Errors int
	Elapsed          time.Duration
	P50, P99         time.Duration
}

func (r loadResult) String() string {
	return fmt.Sprintf("%d GET /user/{id} in %s: %.0f req/s, p50 %s, p99 %s, %d errors",
		r.Requests, r.Elapsed.Round(time.Millisecond), float64(r.Requests)/r.Elapsed.Seconds(),
		r.P50.Round(time.Microsecond), r.P99.Round(time.Microsecond), r.Errors)
}

// runLoad sends requests GETs of random users from workers goroutines and
// measures each.
func runLoad(ctx context.Context, base string, workers, requests, users int) (loadResult, error) {
	if workers < 1 || requests < 1 || users < 1 {
		return loadResult{}, errors.New("load: workers, requests and users must be at least 1")
	}
	client := &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: workers, MaxConnsPerHost: workers},
	}
	defer client.CloseIdleConnections()
	var next, errs atomic.Int64
	lat := make([][]time.Duration, workers)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range workers {
		wg.Go(func() {
			for next.Add(1) <= int64(requests) && ctx.Err() == nil {
				url := fmt.Sprintf("%s/user/%d", base, 1+rand.IntN(users))
				t := time.Now()
				resp, err := client.Get(url)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != http.StatusOK {
						err = errors.New(resp.Status)
					}
				}
				if err != nil {
					errs.Add(1)
					continue
				}
				lat[w] = append(lat[w], time.Since(t))
			}
		})
	}
	wg.Wait()
	r := loadResult{Elapsed: time.Since(start), Errors: int(errs.Load())}
	all := slices.Concat(lat...)
	slices.Sort(all)
	r.Requests = len(all) + r.Errors
	if len(all) > 0 {
		r.P50 = all[len(all)/2]
		r.P99 = all[min(len(all)-1, len(all)*99/100)]
	}
	return r, ctx.Err()
}
