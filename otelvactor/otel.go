package otelvactor

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"weak"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/embedded"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/vactor-io/vactor/actors"
	"github.com/vactor-io/vactor/engine"
	"github.com/vactor-io/vactor/hooks"
	"github.com/vactor-io/vactor/policies"
)

// ScopeName is the instrumentation scope of the hook's meter and tracer.
const ScopeName = "github.com/vactor-io/vactor/otelvactor"

// The operation duration metric, recorded through the MeterProvider or
// produced by a Producer.
const (
	opDurationName = "db.client.operation.duration"
	opDurationDesc = "Duration of database client operations."
)

// DurationBuckets are the bucket boundaries (seconds) of
// db.client.operation.duration: the stable database semantic conventions'.
var DurationBuckets = []float64{0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10}

// PipelineSizeBuckets are the bucket boundaries of vactor.pipeline.size.
var PipelineSizeBuckets = []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096}

// rttBuckets are the bucket boundaries (seconds) of vactor.pipeline.duration
// and db.client.connection.create_time.
var rttBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5}

// Option configures New.
type Option func(*options)

type options struct {
	mp        metric.MeterProvider
	tp        trace.TracerProvider
	system    string
	tracing   bool
	queryText bool
	late      bool
	producer  *Producer
}

// WithMeterProvider sets the meter provider. Default: otel's global one
// (otel.GetMeterProvider) at the time New is called.
func WithMeterProvider(mp metric.MeterProvider) Option { return func(o *options) { o.mp = mp } }

// WithTracerProvider sets the tracer provider. Default: otel's global one
// (otel.GetTracerProvider) at the time New is called.
func WithTracerProvider(tp trace.TracerProvider) Option { return func(o *options) { o.tp = tp } }

// WithSystemName sets db.system.name: "valkey" by default; "redis" suits
// dashboards built on that value.
func WithSystemName(name string) Option { return func(o *options) { o.system = name } }

// WithoutTracing turns the spans off: the hook then records metrics only
// and starts no span.
func WithoutTracing() Option { return func(o *options) { o.tracing = false } }

// WithProducer makes the hook aggregate db.client.operation.duration
// itself, read through p by the reader p is given to
// (sdkmetric.WithProducer), instead of recording each command through the
// MeterProvider's histogram: the cheaper way at high command rates (see
// Producer). The hook then creates no db.client.operation.duration
// instrument of its own, so the metric is not reported twice. Default:
// recorded through the MeterProvider.
func WithProducer(p *Producer) Option { return func(o *options) { o.producer = p } }

// WithQueryText adds db.query.text to the spans: the command's name
// followed by one "?" per argument (keys and values never appear). Default
// off.
func WithQueryText() Option { return func(o *options) { o.queryText = true } }

// WithoutSamplerAttributes sets each span's attributes once it has
// started (span.SetAttributes) instead of giving them to Start
// (trace.WithAttributes), where the sampler sees them. The spans carry
// the same attributes, and the SDK copies them once less: 2-3 allocations
// and ~490 bytes less per span, and none for a span the sampler drops.
// The sampler and the span processors' OnStart then see no attribute:
// it suits samplers that do not read attributes, as none of the SDK's do
// (AlwaysSample, NeverSample, TraceIDRatioBased, ParentBased), and
// processors that read a span's attributes at its end (the batch
// processor and the exporters). The OpenTelemetry database
// conventions ask for db.system.name, db.operation.name, db.namespace,
// server.address and server.port at span creation, for the samplers
// that do: that is the default. docs/performance.md says what it saves
// at 100% sampling.
func WithoutSamplerAttributes() Option { return func(o *options) { o.late = true } }

// Hook is the OpenTelemetry hook: register it in config.Config.Hooks, and
// call Observe with the engine for the gauges that read its state. It
// records the metrics listed in the package documentation and, unless
// WithoutTracing, one span per command. Safe for concurrent use; one Hook
// may serve several engines.
type Hook struct {
	system    attribute.KeyValue
	tracer    trace.Tracer // nil: no spans
	meter     metric.Meter
	queryText bool
	late      bool      // WithoutSamplerAttributes
	producer  *Producer // nil: db.client.operation.duration through opDuration

	opDuration   metric.Float64Histogram // nil with a producer
	createTime   metric.Float64Histogram
	pipeSize     metric.Int64Histogram
	pipeDuration metric.Float64Histogram
	retries      metric.Int64Counter
	redirects    metric.Int64Counter
	transitions  metric.Int64Counter
	lost         metric.Int64Counter
	restarts     metric.Int64Counter
	full         metric.Int64Counter
	slotMaps     metric.Int64Counter
	switches     metric.Int64Counter
	subReconn    metric.Int64Counter
	subGap       metric.Float64Histogram
	subDropped   metric.Int64Counter
	subRefused   metric.Int64Counter
	redelivered  metric.Int64Counter
	entries      metric.Int64Counter

	// Observed (Observe, and the consumer lag kept from events).
	connCount   metric.Int64ObservableUpDownCounter
	pending     metric.Int64ObservableUpDownCounter
	depth       metric.Int64ObservableGauge
	breakers    metric.Int64ObservableGauge
	hookDropped metric.Int64ObservableCounter
	lag         metric.Int64ObservableGauge
	pendingEnts metric.Int64ObservableGauge

	lastOp atomic.Pointer[opSeries]
	// lastSpan is the span options last used (spanOptions), read as
	// lastOp is.
	lastSpan atomic.Pointer[spanOpts]

	// The error reply codes taken as error.type so far (at most
	// maxReplyCodes): read without a lock, added under mu.
	codes  sync.Map // string -> struct{}
	ncodes int

	mu    sync.Mutex
	names map[string]struct{} // the operation names taken so far (opNameLocked)
	ops   map[opKey]*opSeries
	spans map[spanKey]*spanOpts
	nodes map[string]*nodeAttrs // at most maxNodes (nodeLocked)
	other *nodeAttrs            // server.address _OTHER: the nodes past maxNodes
	swept time.Time             // the last sweep of the nodes (sweepLocked)
	lags  map[lagKey]*lagValue
	lagOf map[consumerKey]lagKey // where each consumer's latest Lag went

	// The engines Observe reads.
	obsMu       sync.Mutex
	engines     map[any]*observed
	droppedGone uint64 // HookDropped of the engines unregistered
	// counted is, per engine unregistered (a weak pointer: it does not
	// keep the engine alive), its HookDropped already in droppedGone: an
	// engine observed again reports only what it drops after that.
	counted   map[any]uint64
	sweepFrom int // len(counted) at which the next sweep of dead engines runs
}

// nodeAttrs are a node's attributes (server.address, server.port) and the
// record option made of them.
type nodeAttrs struct {
	attrs []attribute.KeyValue
	opt   metric.MeasurementOption
	used  bool        // since the last sweep (h.mu)
	gone  atomic.Bool // forgotten by a sweep: its series are no longer kept
}

// opKey is what the attributes of one db.client.operation.duration series
// depend on.
type opKey struct {
	name, node, errType, status string
	db                          int
}

// lagKey is a stream read by a group: the stream is the one of that name
// on node (streams of the same name on two servers are two streams).
type lagKey struct{ node, stream, group string }

// consumerKey is one consumer: its hooks.Consumer.Instance, and for
// events that carry none (made by hand: Instance 0) its names.
type consumerKey struct {
	instance            uint64
	stream, group, name string
}

func consumerOf(ev hooks.Consumer) consumerKey {
	if ev.Instance != 0 {
		return consumerKey{instance: ev.Instance}
	}
	return consumerKey{stream: ev.Stream, group: ev.Group, name: ev.Consumer}
}

// lagValue is the latest lag and pending count of a (node, stream,
// group), and the consumers whose latest Lag it was and that have not
// stopped: the series ends with the last of them.
type lagValue struct {
	lag, pending int64
	consumers    map[consumerKey]struct{}
}

// New returns a Hook over the given providers (the global ones by
// default). It fails when an instrument cannot be created.
func New(opts ...Option) (*Hook, error) {
	o := options{system: "valkey", tracing: true}
	for _, opt := range opts {
		opt(&o)
	}
	if o.mp == nil {
		o.mp = otel.GetMeterProvider()
	}
	if o.tp == nil {
		o.tp = otel.GetTracerProvider()
	}
	h := &Hook{
		system:    semconv.DBSystemNameKey.String(o.system),
		queryText: o.queryText,
		late:      o.late,
		producer:  o.producer,
		ops:       map[opKey]*opSeries{},
		spans:     map[spanKey]*spanOpts{},
		nodes:     map[string]*nodeAttrs{},
		other:     otherNode(),
		lags:      map[lagKey]*lagValue{},
		lagOf:     map[consumerKey]lagKey{},
		engines:   map[any]*observed{},
	}
	if o.tracing {
		h.tracer = o.tp.Tracer(ScopeName, trace.WithSchemaURL(semconv.SchemaURL))
	}
	m := o.mp.Meter(ScopeName, metric.WithSchemaURL(semconv.SchemaURL))
	h.meter = m
	if err := h.instruments(m); err != nil {
		return nil, err
	}
	return h, nil
}

// instruments creates every instrument of m.
func (h *Hook) instruments(m metric.Meter) error {
	var errs []error
	f64h := func(name, unit, desc string, buckets []float64) metric.Float64Histogram {
		i, err := m.Float64Histogram(name, metric.WithUnit(unit), metric.WithDescription(desc), metric.WithExplicitBucketBoundaries(buckets...))
		errs = append(errs, err)
		return i
	}
	ctr := func(name, unit, desc string) metric.Int64Counter {
		i, err := m.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return i
	}
	if h.producer == nil {
		h.opDuration = f64h(opDurationName, "s", opDurationDesc, DurationBuckets)
	}
	h.createTime = f64h("db.client.connection.create_time", "s", "The time it took to create a new connection.", rttBuckets)
	sizes := make([]float64, len(PipelineSizeBuckets))
	copy(sizes, PipelineSizeBuckets)
	var err error
	h.pipeSize, err = m.Int64Histogram("vactor.pipeline.size", metric.WithUnit("{command}"),
		metric.WithDescription("Commands per pipeline a connection actor wrote (db.operation.batch.size of the pipeline)."),
		metric.WithExplicitBucketBoundaries(sizes...))
	errs = append(errs, err)
	h.pipeDuration = f64h("vactor.pipeline.duration", "s", "Round trip of one pipeline, from its write to its last reply.", rttBuckets)
	h.retries = ctr("vactor.retries", "{command}", "Commands kept to be sent again after their connection failed.")
	h.redirects = ctr("vactor.redirects", "{redirect}", "Cluster redirects followed (MOVED, ASK, TRYAGAIN, CLUSTERDOWN).")
	h.transitions = ctr("vactor.breaker.transitions", "{transition}", "Circuit breaker state changes.")
	h.lost = ctr("vactor.connection.lost", "{connection}", "Connection actors' connections that failed.")
	h.restarts = ctr("vactor.actor.restarts", "{restart}", "Connection actor restarts.")
	h.full = ctr("vactor.mailbox.full", "{command}", "Commands that found their mailbox full (waited or rejected).")
	h.slotMaps = ctr("vactor.slotmap.loads", "{load}", "Cluster slot-map loads.")
	h.switches = ctr("vactor.sentinel.switches", "{switch}", "Switches to a new primary named by the sentinels (sentinel mode).")
	h.subReconn = ctr("vactor.pubsub.reconnects", "{reconnect}", "Subscriber connections that resubscribed after a disconnect.")
	h.subGap = f64h("vactor.pubsub.gap", "s", "Time a subscription was not subscribed, from the disconnect to the resubscription.", DurationBuckets)
	h.subDropped = ctr("vactor.pubsub.dropped", "{message}", "Pub/sub messages dropped by OverflowDrop.")
	h.subRefused = ctr("vactor.pubsub.refused", "{refusal}", "Resubscribes the server refused (NOPERM, WRONGPASS, ...), once per distinct error of an outage; in cluster mode also once per distinct error of each moved shard channel its new owner refused.")
	h.redelivered = ctr("vactor.stream.consumer.redeliveries", "{entry}", "Stream entries handed to a handler again (own pending after a reconnect, claimed).")
	h.entries = ctr("vactor.stream.consumer.entries", "{entry}", "Stream consumer entries by event: claimed, acked, handler_failed.")

	h.connCount, err = m.Int64ObservableUpDownCounter("db.client.connection.count", metric.WithUnit("{connection}"),
		metric.WithDescription("The number of connections that are currently in the state described by the state attribute."))
	errs = append(errs, err)
	h.pending, err = m.Int64ObservableUpDownCounter("db.client.connection.pending_requests", metric.WithUnit("{request}"),
		metric.WithDescription("The number of current pending requests for an open connection: queued in its mailbox, written and awaiting replies, or held to be sent again after a reconnect."))
	errs = append(errs, err)
	h.depth, err = m.Int64ObservableGauge("vactor.mailbox.depth", metric.WithUnit("{command}"),
		metric.WithDescription("Commands queued in a connection actor's mailbox."))
	errs = append(errs, err)
	h.breakers, err = m.Int64ObservableGauge("vactor.breaker.state", metric.WithUnit("{state}"),
		metric.WithDescription("Circuit breaker state per node: 0 closed, 1 half-open, 2 open."))
	errs = append(errs, err)
	h.hookDropped, err = m.Int64ObservableCounter("vactor.hooks.dropped", metric.WithUnit("{event}"),
		metric.WithDescription("Hook events dropped because the hooks fell behind."))
	errs = append(errs, err)
	h.lag, err = m.Int64ObservableGauge("vactor.stream.consumer.lag", metric.WithUnit("{entry}"),
		metric.WithDescription("Entries of the stream not yet delivered to the group (XINFO GROUPS lag), after the latest reclaim round."))
	errs = append(errs, err)
	h.pendingEnts, err = m.Int64ObservableGauge("vactor.stream.consumer.pending", metric.WithUnit("{entry}"),
		metric.WithDescription("Entries delivered to the group and not acknowledged, after the latest reclaim round."))
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if _, err := m.RegisterCallback(h.observeLag, h.lag, h.pendingEnts); err != nil {
		return err
	}
	_, err = m.RegisterCallback(h.observeEngines, h.connCount, h.pending, h.depth, h.breakers, h.hookDropped)
	return err
}

// maxQueryArgs bounds the "?" in db.query.text.
const maxQueryArgs = 32

// queryText is the command's name with one "?" per argument.
func queryText(name string, args int) string {
	var b strings.Builder
	b.WriteString(name)
	for i := range args {
		if i == maxQueryArgs {
			b.WriteString(" …")
			break
		}
		b.WriteString(" ?")
	}
	return b.String()
}

// PostExecution records db.client.operation.duration and, with tracing,
// the command's span: kind CLIENT, named after the operation, a child of
// the span in the command's context, from its firing (ev.Done less
// ev.Duration) to its completion. The span is made here, on the hook
// goroutine, rather than started when the command is fired: the caller
// pays nothing for it. Every attribute is given at the start (unless
// WithoutSamplerAttributes), the pipeline as vactor.pipeline.seq and
// vactor.pipeline.size: a span event for the pipeline cost 7 allocations
// and about a third of the span. The attribute set of each (operation,
// node, error, DB) is built once and kept.
func (h *Hook) PostExecution(ctx context.Context, ev hooks.Executed) {
	// The name as given to Do may be in any case: one series and span
	// name per command, whatever the case ("get" and "GET" are GET).
	// ToUpper returns an upper-case name as it is, without allocating.
	ev.Name = strings.ToUpper(ev.Name)
	var errType, status string
	if ev.Err != nil && !errors.Is(ev.Err, engine.ErrNil) {
		errType, status = errorType(ev.Err)
		if status != "" && !h.replyCodeKept(status) {
			errType, status = semconv.ErrorTypeOther.Value.AsString(), ""
		}
	}
	if s := h.opSeries(opKey{ev.Name, ev.Node, errType, status, ev.DB}); s.point != nil {
		s.point.record(ev.Duration.Seconds())
	} else {
		h.opDuration.Record(ctx, ev.Duration.Seconds(), s.opts...)
	}
	if h.tracer == nil {
		return
	}
	so := h.spanOptions(ev.Name, ev.Node, ev.DB)
	start := trace.WithTimestamp(ev.Done.Add(-ev.Duration))
	// The options and attributes are built in a pooled scratch: through
	// the Tracer and Span interfaces, arrays of them on the stack escape,
	// two allocations per span.
	sc := spanScratches.Get().(*spanScratch)
	defer sc.release()
	var span trace.Span
	if h.late {
		// The attributes are built only for a span that records (one a
		// ratio sampler drops costs none of them).
		sc.start[0], sc.start[1] = so.kind, start
		_, span = h.tracer.Start(ctx, ev.Name, sc.start[:2]...)
		if !span.IsRecording() {
			return
		}
	}
	attrs := append(sc.attrs[:0], so.list...)
	if ev.Pipeline != 0 {
		attrs = append(attrs, attribute.Int64("vactor.pipeline.seq", int64(ev.Pipeline)), attribute.Int("vactor.pipeline.size", ev.PipelineSize))
	}
	if ev.Retries > 0 || ev.Redirects > 0 {
		attrs = append(attrs, attribute.Int("vactor.retries", ev.Retries), attribute.Int("vactor.redirects", ev.Redirects))
	}
	if errType != "" {
		attrs = append(attrs, semconv.ErrorTypeKey.String(errType))
		if status != "" {
			attrs = append(attrs, semconv.DBResponseStatusCode(status))
		}
	}
	if h.queryText {
		attrs = append(attrs, semconv.DBQueryText(queryText(ev.Name, ev.Args)))
	}
	if h.late {
		// The SDK's span copies them (recordingSpan.SetAttributes appends
		// each to its own slice); the API does not promise it of every
		// implementation: TestWithoutSamplerAttributes checks the SDK's.
		span.SetAttributes(attrs...)
	} else {
		// Start copies them (trace.NewSpanStartConfig), whatever the
		// implementation.
		sc.start[0], sc.start[1], sc.start[2] = so.kind, trace.WithAttributes(attrs...), start
		_, span = h.tracer.Start(ctx, ev.Name, sc.start[:3]...)
	}
	sc.attrs = attrs[:0] // the buffer, grown, serves the next span
	if !span.IsRecording() {
		return
	}
	if errType != "" {
		span.SetStatus(codes.Error, errType)
	}
	sc.end[0] = trace.WithTimestamp(ev.Done)
	span.End(sc.end[:]...)
}

// spanScratch is what PostExecution builds a span's start and end
// options and attributes in, pooled (spanScratches). The SDK reads the
// options while Start and End run and copies the attributes (Start's, or
// SetAttributes' with WithoutSamplerAttributes: see there), keeping none
// of these slices; release clears them before the next span.
type spanScratch struct {
	attrs []attribute.KeyValue
	start [3]trace.SpanStartOption
	end   [1]trace.SpanEndOption
}

var spanScratches = sync.Pool{New: func() any { return &spanScratch{attrs: make([]attribute.KeyValue, 0, 16)} }}

// release clears sc's options and returns it to the pool. The
// attributes' buffer is not cleared (what it holds is the hook's own
// long-lived attribute values, and one query text): the next span
// overwrites it.
func (sc *spanScratch) release() {
	sc.attrs = sc.attrs[:0]
	sc.start = [3]trace.SpanStartOption{}
	sc.end = [1]trace.SpanEndOption{}
	spanScratches.Put(sc)
}

// spanOpts are the start options of the spans of one (operation, node,
// DB): made once.
type spanOpts struct {
	key  spanKey // as made: the operation and node names as kept
	list []attribute.KeyValue
	kind trace.SpanStartOption
	node *nodeAttrs
}

type spanKey struct {
	name, node string
	db         int
}

// spanOptions returns the start options of the spans of (name, node, db).
// The options last used are checked first, without a lock, as opSeries
// does.
func (h *Hook) spanOptions(name, node string, db int) *spanOpts {
	k := spanKey{name, node, db}
	if last := h.lastSpan.Load(); last != nil && last.key == k && !last.node.gone.Load() {
		return last
	}
	o := h.spanOptionsLocked(k)
	h.lastSpan.Store(o)
	return o
}

func (h *Hook) spanOptionsLocked(k spanKey) *spanOpts {
	name, node, db := k.name, k.node, k.db
	h.mu.Lock()
	defer h.mu.Unlock()
	if o, ok := h.spans[k]; ok {
		o.node.used = true
		return o
	}
	raw := k
	k.name = h.opNameLocked(name)
	n := h.nodeLocked(node) // may sweep h.spans
	if n == h.other {
		k.node = otherNodeKey
	}
	if k != raw {
		if o, ok := h.spans[k]; ok {
			return o
		}
	}
	list := []attribute.KeyValue{h.system, semconv.DBOperationName(k.name), semconv.DBNamespace(strconv.Itoa(db))}
	list = append(list, n.attrs...)
	o := &spanOpts{key: k, list: list, kind: trace.WithSpanKind(trace.SpanKindClient), node: n}
	h.spans[k] = o
	return o
}

// opSeries is a db.client.operation.duration series: its record options,
// or its point in the producer.
type opSeries struct {
	key   opKey
	node  *nodeAttrs
	opts  []metric.RecordOption
	point *durationPoint // with a producer
}

// opSeries returns the series k, made once. The series last used is
// checked first, without a lock: a workload of one command kind skips the
// map.
func (h *Hook) opSeries(k opKey) *opSeries {
	if last := h.lastOp.Load(); last != nil && last.key == k && !last.node.gone.Load() {
		return last
	}
	o := h.series(k)
	h.lastOp.Store(o)
	return o
}

// series returns the series k, made once.
func (h *Hook) series(k opKey) *opSeries {
	h.mu.Lock()
	defer h.mu.Unlock()
	if o, ok := h.ops[k]; ok {
		o.node.used = true
		return o
	}
	raw := k
	k.name = h.opNameLocked(k.name)
	node := h.nodeLocked(k.node) // may sweep h.ops
	if node == h.other {
		k.node = otherNodeKey
	}
	if k != raw {
		if o, ok := h.ops[k]; ok {
			return o
		}
	}
	attrs := []attribute.KeyValue{h.system, semconv.DBOperationName(k.name), semconv.DBNamespace(strconv.Itoa(k.db))}
	attrs = append(attrs, node.attrs...)
	if k.errType != "" {
		attrs = append(attrs, semconv.ErrorTypeKey.String(k.errType))
	}
	if k.status != "" {
		attrs = append(attrs, semconv.DBResponseStatusCode(k.status))
	}
	set := attribute.NewSet(attrs...)
	o := &opSeries{key: k, node: node, opts: []metric.RecordOption{metric.WithAttributeSet(set)}}
	if h.producer != nil {
		o.point = h.producer.point(set)
	}
	h.ops[k] = o
	return o
}

// node returns the attributes of node ("host:port"): server.address and
// server.port, made once.
func (h *Hook) node(node string) *nodeAttrs {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.nodeLocked(node)
}

func (h *Hook) nodeLocked(node string) *nodeAttrs {
	if a, ok := h.nodes[node]; ok {
		a.used = true
		return a
	}
	if node == otherNodeKey || len(h.nodes) >= maxNodes && !h.sweepLocked() {
		return h.other
	}
	a := &nodeAttrs{used: true}
	if host, port, err := net.SplitHostPort(node); err == nil {
		a.attrs = append(a.attrs, semconv.ServerAddress(host))
		if p, err := strconv.Atoi(port); err == nil {
			a.attrs = append(a.attrs, semconv.ServerPort(p))
		}
	}
	a.opt = metric.WithAttributeSet(attribute.NewSet(a.attrs...))
	h.nodes[node] = a
	return a
}

// maxNodes bounds the node addresses a Hook keeps attributes and series
// for: a cluster whose nodes are replaced over weeks, each under a new
// address, would otherwise make the hook keep every address it ever saw
// (and a db.client.operation.duration series per operation and each of
// them). A variable for the tests.
var maxNodes = 1024

// nodeSweepEvery is the shortest time between two sweeps (sweepLocked).
var nodeSweepEvery = time.Minute

// otherNodeKey is the node of the series of the nodes past maxNodes.
const otherNodeKey = "_OTHER"

// otherNode returns the attributes of the nodes past maxNodes:
// server.address "_OTHER", no server.port.
func otherNode() *nodeAttrs {
	a := &nodeAttrs{attrs: []attribute.KeyValue{semconv.ServerAddress(semconv.ErrorTypeOther.Value.AsString())}}
	a.opt = metric.WithAttributeSet(attribute.NewSet(a.attrs...))
	return a
}

// sweepLocked makes room for a new node when the hook keeps maxNodes: it
// forgets the nodes not used since the previous sweep (no command, event
// or collection of an observed engine's state named them), with their
// db.client.operation.duration series and span options, and their
// points in the Producer (which the hooks sharing it no longer use). It
// runs at most once per nodeSweepEvery, and reports whether it forgot
// some node; until one is forgotten, new nodes are reported as
// server.address _OTHER. h.mu is held.
func (h *Hook) sweepLocked() bool {
	now := time.Now()
	if !h.swept.IsZero() && now.Sub(h.swept) < nodeSweepEvery {
		return false
	}
	h.swept = now
	if last := h.lastOp.Load(); last != nil {
		last.node.used = true // used without the lock, perhaps
	}
	if last := h.lastSpan.Load(); last != nil {
		last.node.used = true
	}
	forgot := false
	for k, a := range h.nodes {
		if a.used {
			a.used = false
			continue
		}
		a.gone.Store(true)
		delete(h.nodes, k)
		forgot = true
	}
	if !forgot {
		return false
	}
	var points []*durationPoint
	for k, o := range h.ops {
		if o.node.gone.Load() {
			delete(h.ops, k)
			if o.point != nil {
				points = append(points, o.point)
			}
		}
	}
	for k, o := range h.spans {
		if o.node.gone.Load() {
			delete(h.spans, k)
		}
	}
	if len(points) > 0 {
		h.producer.release(points)
	}
	return true
}

// errorType returns error.type and db.response.status_code for err: the
// server's error prefix for an error reply, a short name for the engine's
// own errors, "_OTHER" for the rest (transport errors). Each error of
// package engine a command can fail with has a name here (TestErrorKinds):
// not ErrNil (no failure), nor ErrNoPrimary, ErrScanNodeChanged and
// ErrInOnError, which fail no command.
func errorType(err error) (typ, status string) {
	if se, ok := err.(*engine.ServerError); ok { // the common case, without errors.As's allocation
		return replyCode(se.Prefix)
	}
	var se *engine.ServerError
	switch {
	case errors.As(err, &se):
		return replyCode(se.Prefix)
	case errors.Is(err, engine.ErrOutcomeUnknown):
		// Before the ctx's errors it may wrap: a command its ctx cut
		// after it was sent may have run (qa-AR AR1: labelled timeout).
		return "outcome_unknown", ""
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout", ""
	case errors.Is(err, context.Canceled):
		return "canceled", ""
	case errors.Is(err, engine.ErrCircuitOpen):
		return "circuit_open", ""
	case errors.Is(err, engine.ErrBackpressure):
		return "backpressure", ""
	case errors.Is(err, engine.ErrClosed):
		return "closed", ""
	case errors.Is(err, actors.ErrTooManyRedirects):
		return "too_many_redirects", ""
	case errors.Is(err, engine.ErrInvalidArgument):
		return "invalid_argument", ""
	case errors.Is(err, engine.ErrTxAborted):
		return "tx_aborted", ""
	case errors.Is(err, engine.ErrDiscarded):
		return "discarded", ""
	case errors.Is(err, engine.ErrPoolExhausted):
		return "pool_exhausted", ""
	case errors.Is(err, engine.ErrNoSlotOwner):
		return "no_slot_owner", ""
	case errors.Is(err, engine.ErrNodeRemoved):
		return "node_removed", ""
	case errors.Is(err, engine.ErrNotPrimary):
		return "not_primary", ""
	case errors.Is(err, engine.ErrPrimaryChanged):
		return "primary_changed", ""
	}
	return semconv.ErrorTypeOther.Value.AsString(), ""
}

// maxOperationNames bounds the distinct db.operation.name values of a
// Hook: the servers' commands are about 250, modules add some, but a
// program passing made-up names to Do (each an "unknown command" error)
// would make a series per name, in the histogram and the span options,
// for ever.
const maxOperationNames = 1024

// opNameLocked returns name if it is one of the first maxOperationNames
// operation names seen, "_OTHER" otherwise. h.mu is held.
func (h *Hook) opNameLocked(name string) string {
	if _, ok := h.names[name]; ok {
		return name
	}
	if len(h.names) >= maxOperationNames {
		return semconv.ErrorTypeOther.Value.AsString()
	}
	if h.names == nil {
		h.names = map[string]struct{}{}
	}
	h.names[name] = struct{}{}
	return name
}

// maxReplyCodes bounds the error reply codes a Hook takes as error.type
// and db.response.status_code: the server's and its modules' are a few
// dozen, but a script's error_reply whose first word has the shape of a
// code and holds a value ("ORDER-4711 missing") would make a series per
// value, in every operation's histogram, for ever.
const maxReplyCodes = 64

// replyCodeKept reports whether code may be an attribute: it is one of the
// first maxReplyCodes codes seen. Later ones are "_OTHER" without a status
// code.
func (h *Hook) replyCodeKept(code string) bool {
	if _, ok := h.codes.Load(code); ok {
		return true
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.codes.Load(code); ok {
		return true
	}
	if h.ncodes >= maxReplyCodes {
		return false
	}
	h.codes.Store(code, struct{}{})
	h.ncodes++
	return true
}

// maxReplyCode bounds the length of an error reply's prefix taken as its
// code.
const maxReplyCode = 32

// replyCode returns error.type and db.response.status_code for an error
// reply whose first word is prefix: the prefix itself when it has the
// shape of an error code (an upper-case letter, then upper-case letters,
// digits, '_' or '-': "WRONGTYPE", "ERR", a module's "MYMOD_ERR"), which
// the server and modules use; "_OTHER" and no status code otherwise. A
// script's error_reply (or a module's error) can begin with anything,
// "user:4711 not found" say: taking its first word as a metric attribute
// would put a key or value there, and make a series per value.
func replyCode(prefix string) (typ, status string) {
	if n := len(prefix); n == 0 || n > maxReplyCode || prefix[0] < 'A' || prefix[0] > 'Z' {
		return semconv.ErrorTypeOther.Value.AsString(), ""
	}
	for i := 1; i < len(prefix); i++ {
		switch c := prefix[i]; {
		case c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
		default:
			return semconv.ErrorTypeOther.Value.AsString(), ""
		}
	}
	return prefix, prefix
}

// PostConnection records db.client.connection.create_time for connections
// made (to the data nodes: not those to sentinels).
func (h *Hook) PostConnection(ev hooks.Dialed) {
	if ev.Err != nil || ev.Sentinel {
		return
	}
	h.createTime.Record(context.Background(), ev.Duration.Seconds(), metric.WithAttributes(
		semconv.DBClientConnectionPoolName(ev.Node), h.system, attribute.Bool("vactor.dedicated", ev.Dedicated)))
}

// OnConnectionLost counts vactor.connection.lost.
func (h *Hook) OnConnectionLost(ev hooks.Lost) {
	h.lost.Add(context.Background(), 1, h.node(ev.Node).opt)
}

// OnActorRestarted counts vactor.actor.restarts.
func (h *Hook) OnActorRestarted(ev hooks.Restart) {
	h.restarts.Add(context.Background(), 1, h.node(ev.Node).opt)
}

// OnPipelineAnswered records vactor.pipeline.size and
// vactor.pipeline.duration (with error.type for a round trip a transport
// error ended).
func (h *Hook) OnPipelineAnswered(ev hooks.Pipeline) {
	n := h.node(ev.Node)
	h.pipeSize.Record(context.Background(), int64(ev.Size), n.opt)
	if ev.Err == nil {
		h.pipeDuration.Record(context.Background(), ev.RTT.Seconds(), n.opt)
		return
	}
	// A round trip a transport error ended (a timeout, a reset): its time
	// to the failure, under error.type, so that a dashboard of round trips
	// does not go quiet while a node fails them all. Not a pipeline that
	// was never written (no round trip).
	if policies.NotSent(ev.Err) {
		return
	}
	typ, _ := errorType(ev.Err)
	attrs := append([]attribute.KeyValue{semconv.ErrorTypeKey.String(typ)}, n.attrs...)
	h.pipeDuration.Record(context.Background(), ev.RTT.Seconds(), metric.WithAttributes(attrs...))
}

// OnMailboxFull counts vactor.mailbox.full.
func (h *Hook) OnMailboxFull(ev hooks.Backpressure) {
	attrs := append([]attribute.KeyValue{attribute.Bool("vactor.rejected", ev.Rejected)}, h.node(ev.Node).attrs...)
	h.full.Add(context.Background(), int64(ev.Commands), metric.WithAttributes(attrs...))
}

// OnBreakerChanged counts vactor.breaker.transitions.
func (h *Hook) OnBreakerChanged(ev hooks.BreakerChange) {
	attrs := append([]attribute.KeyValue{attribute.String("vactor.breaker.from", ev.From), attribute.String("vactor.breaker.to", ev.To)}, h.node(ev.Node).attrs...)
	h.transitions.Add(context.Background(), 1, metric.WithAttributes(attrs...))
}

// OnRetryScheduled counts vactor.retries.
func (h *Hook) OnRetryScheduled(ev hooks.Retry) {
	h.retries.Add(context.Background(), int64(ev.Commands), h.node(ev.Node).opt)
}

// OnRedirected counts vactor.redirects.
func (h *Hook) OnRedirected(ev hooks.Redirect) {
	h.redirects.Add(context.Background(), 1, metric.WithAttributes(attribute.String("vactor.redirect.kind", ev.Kind)))
}

// OnSlotMapLoaded counts vactor.slotmap.loads.
func (h *Hook) OnSlotMapLoaded(ev hooks.SlotMap) {
	result := "loaded"
	if ev.Err != nil {
		result = "failed"
	}
	h.slotMaps.Add(context.Background(), 1, metric.WithAttributes(attribute.String("vactor.result", result), attribute.Bool("vactor.changed", ev.Moved > 0)))
}

// OnSentinelSwitched counts vactor.sentinel.switches (attribute
// vactor.sentinel.master, the name the sentinels monitor; the first
// primary found is not a switch).
func (h *Hook) OnSentinelSwitched(ev hooks.SentinelSwitch) {
	if ev.From == "" {
		return
	}
	h.switches.Add(context.Background(), 1, metric.WithAttributes(attribute.String("vactor.sentinel.master", ev.Master)))
}

// OnSubscriberEvent counts vactor.pubsub.reconnects, vactor.pubsub.refused
// (with error.type) and vactor.pubsub.dropped and records vactor.pubsub.gap.
func (h *Hook) OnSubscriberEvent(ev hooks.Subscriber) {
	ctx := context.Background()
	switch ev.Kind {
	case hooks.Resubscribed:
		if ev.ShardChannel == "" {
			h.subReconn.Add(ctx, 1, h.node(ev.Node).opt)
		}
		h.subGap.Record(ctx, ev.Gap.Seconds(), h.node(ev.Node).opt)
	case hooks.MessagesDropped:
		h.subDropped.Add(ctx, int64(ev.Count))
	case hooks.Refused:
		typ, _ := errorType(ev.Err)
		attrs := append([]attribute.KeyValue{semconv.ErrorTypeKey.String(typ)}, h.node(ev.Node).attrs...)
		h.subRefused.Add(ctx, 1, metric.WithAttributes(attrs...))
	}
}

// OnConsumerEvent counts vactor.stream.consumer.redeliveries and
// vactor.stream.consumer.entries, and keeps the lag for
// vactor.stream.consumer.lag and .pending: the latest Lag event's per
// (node, stream, group), reported until every consumer whose latest Lag
// event it was has stopped (hooks.Stopped) or reported from another node
// (the stream's primary changed). Consumers are told apart by
// hooks.Consumer.Instance, so that two with the same names (on two
// servers, or started twice) do not end each other's series.
func (h *Hook) OnConsumerEvent(ev hooks.Consumer) {
	ctx := context.Background()
	switch ev.Kind {
	case hooks.Redelivered:
		h.redelivered.Add(ctx, int64(ev.Count), h.consumerAttrs(ev, ""))
	case hooks.Claimed:
		h.entries.Add(ctx, int64(ev.Count), h.consumerAttrs(ev, "claimed"))
	case hooks.Acked:
		h.entries.Add(ctx, int64(ev.Count), h.consumerAttrs(ev, "acked"))
	case hooks.HandlerFailed:
		h.entries.Add(ctx, 1, h.consumerAttrs(ev, "handler_failed"))
	case hooks.Lag:
		k, c := lagKey{ev.Node, ev.Stream, ev.Group}, consumerOf(ev)
		h.mu.Lock()
		if old, ok := h.lagOf[c]; ok && old != k {
			h.leaveLocked(c, old)
		}
		v := h.lags[k]
		if v == nil {
			v = &lagValue{consumers: map[consumerKey]struct{}{}}
			h.lags[k] = v
		}
		v.lag, v.pending = ev.Lag, ev.Pending
		v.consumers[c] = struct{}{}
		h.lagOf[c] = k
		h.mu.Unlock()
	case hooks.Stopped:
		c := consumerOf(ev)
		h.mu.Lock()
		if k, ok := h.lagOf[c]; ok {
			h.leaveLocked(c, k)
			delete(h.lagOf, c)
		}
		h.mu.Unlock()
	}
}

// leaveLocked takes consumer c off the series k, and ends k when c was
// the last consumer on it.
func (h *Hook) leaveLocked(c consumerKey, k lagKey) {
	if v := h.lags[k]; v != nil {
		delete(v.consumers, c)
		if len(v.consumers) == 0 {
			delete(h.lags, k)
		}
	}
}

// consumerAttrs returns the attributes of a consumer counter: the group,
// the node (server.address, server.port) and, unless "", vactor.event.
func (h *Hook) consumerAttrs(ev hooks.Consumer, event string) metric.MeasurementOption {
	attrs := make([]attribute.KeyValue, 0, 4)
	attrs = append(attrs, attribute.String("vactor.stream.group", ev.Group))
	attrs = append(attrs, h.node(ev.Node).attrs...)
	if event != "" {
		attrs = append(attrs, attribute.String("vactor.event", event))
	}
	return metric.WithAttributes(attrs...)
}

// observeLag reports the latest lags, one point per (node, group): the
// stream's name is a key and stays out of the attributes, so the streams
// of one server read by groups of the same name are summed (one
// observation per attribute set: the semantic of duplicates is undefined,
// and the SDK keeps one of them); the node is server.address and
// server.port, so that the groups of two servers (two engines, or a
// cluster's shards) are two series. A stream whose lag the server does
// not report adds nothing to the lag.
func (h *Hook) observeLag(_ context.Context, o metric.Observer) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	type total struct {
		lag, pending int64
		known        bool // some stream's lag is known
	}
	// By the node's attributes: the nodes past maxNodes share theirs.
	type groupKey struct {
		node  *nodeAttrs
		group string
	}
	groups := make(map[groupKey]*total, len(h.lags))
	for k, v := range h.lags {
		gk := groupKey{h.nodeLocked(k.node), k.group}
		g := groups[gk]
		if g == nil {
			g = &total{}
			groups[gk] = g
		}
		if v.lag >= 0 {
			g.lag += v.lag
			g.known = true
		}
		g.pending += v.pending
	}
	for gk, g := range groups {
		attrs := append([]attribute.KeyValue{attribute.String("vactor.stream.group", gk.group)}, gk.node.attrs...)
		opt := metric.WithAttributes(attrs...)
		if g.known {
			o.ObserveInt64(h.lag, g.lag, opt)
		}
		o.ObserveInt64(h.pendingEnts, g.pending, opt)
	}
	return nil
}

// Observe adds eng to the engines whose state the hook's gauges read at
// each collection: db.client.connection.count (state idle: no pipeline in
// flight, or kept in a dedicated pool; used),
// db.client.connection.pending_requests, vactor.mailbox.depth (per
// connection pool, that is per node), vactor.breaker.state (per node) and
// vactor.hooks.dropped. Call it after engine.New; Unregister the result
// when the engine is closed (Unregister is idempotent). It fails for a nil
// engine.
//
// One Hook may observe several engines, and each series is then reported
// once, for all of them: the connection counts, pending requests, mailbox
// depths and dropped events of engines connected to the same node are
// summed (they are the application's connections to that node, which is
// what db.client.connection.pool.name names), and a node's breaker state
// is the worst of the engines' (open, then half-open, then closed). The
// dropped events of an engine unregistered stay counted, and each is
// counted once: observed again, the engine adds only the events it
// dropped since (the hook remembers what it counted through a weak
// pointer, which does not keep a closed engine alive). Observing the
// same engine again counts it once (until each registration is
// unregistered).
func (h *Hook) Observe(eng *engine.Engine) (metric.Registration, error) {
	if eng == nil {
		return nil, errors.New("otelvactor: Observe: nil engine")
	}
	return h.observe(weak.Make(eng), eng.Stats), nil
}

// observed is an engine whose state the gauges read.
type observed struct {
	stats func() engine.Stats
	refs  int    // registrations not unregistered
	base  uint64 // its HookDropped counted in droppedGone already (an earlier registration's)
}

// dropped returns the engine's dropped events not in droppedGone.
func (o *observed) dropped(st engine.Stats) uint64 {
	if st.HookDropped < o.base {
		return 0
	}
	return st.HookDropped - o.base
}

// observe adds the engine known as key, read through stats.
func (h *Hook) observe(key any, stats func() engine.Stats) metric.Registration {
	h.obsMu.Lock()
	defer h.obsMu.Unlock()
	o := h.engines[key]
	if o == nil {
		o = &observed{stats: stats, base: h.counted[key]}
		delete(h.counted, key)
		h.engines[key] = o
	}
	o.refs++
	return &registration{h: h, key: key}
}

// registration is what Observe returns.
type registration struct {
	embedded.Registration
	h    *Hook
	key  any
	once sync.Once
}

// Unregister stops reading the engine (once the engine's every
// registration is unregistered); its dropped events stay counted.
func (r *registration) Unregister() error {
	r.once.Do(func() {
		h := r.h
		h.obsMu.Lock()
		o := h.engines[r.key]
		h.obsMu.Unlock()
		if o == nil {
			return
		}
		dropped := o.stats().HookDropped // outside the lock: Stats takes the engine's
		h.obsMu.Lock()
		defer h.obsMu.Unlock()
		if h.engines[r.key] != o {
			return
		}
		if o.refs--; o.refs == 0 {
			delete(h.engines, r.key)
			h.droppedGone += o.dropped(engine.Stats{HookDropped: dropped})
			h.countedLocked(r.key, max(dropped, o.base))
		}
	})
	return nil
}

// countedLocked notes that the dropped events of the engine known as key
// are counted up to n; now and then it forgets the engines collected
// since (weak pointers that are nil). h.obsMu is held.
func (h *Hook) countedLocked(key any, n uint64) {
	if h.counted == nil {
		h.counted = map[any]uint64{}
	}
	h.counted[key] = n
	if len(h.counted) < h.sweepFrom {
		return
	}
	for k := range h.counted {
		if w, ok := k.(weak.Pointer[engine.Engine]); ok && w.Value() == nil {
			delete(h.counted, k)
		}
	}
	h.sweepFrom = max(64, 2*len(h.counted))
}

// Pool name suffixes of the engine's dedicated pools (engine.PoolStats).
var poolSuffix = map[string]string{engine.PoolTx: "/tx", engine.PoolDedicated: "/dedicated"}

// observeEngines reports the state of the observed engines: one
// observation per attribute set, summed over the engines (a breaker state:
// the worst).
func (h *Hook) observeEngines(_ context.Context, o metric.Observer) error {
	h.obsMu.Lock()
	type reader struct {
		stats func() engine.Stats
		o     *observed
	}
	stats := make([]reader, 0, len(h.engines))
	for _, e := range h.engines {
		stats = append(stats, reader{e.stats, e})
	}
	dropped := h.droppedGone
	h.obsMu.Unlock()
	if len(stats) == 0 && dropped == 0 {
		return nil
	}
	type pool struct {
		idle, used, pending, queued int64
		pipelined                   bool // the connection actors' pool: pending and depth reported
	}
	pools := map[string]*pool{}
	poolOf := func(name string) *pool {
		p := pools[name]
		if p == nil {
			p = &pool{}
			pools[name] = p
		}
		return p
	}
	breakers := map[string]int64{}
	for _, read := range stats {
		st := read.stats()
		for _, c := range st.Conns {
			p := poolOf(c.Addr)
			p.pipelined = true
			switch {
			case !c.Connected: // failed and not replaced yet, or closed: none
			case c.InFlight > 0:
				p.used++
			default:
				p.idle++
			}
			p.pending += c.InFlight + int64(c.Mailbox.Queued+c.Mailbox.Waiting+c.Held)
			p.queued += int64(c.Mailbox.Queued)
		}
		for _, d := range st.DedicatedConns {
			suffix, ok := poolSuffix[d.Pool]
			if !ok {
				suffix = "/" + d.Pool
			}
			p := poolOf(d.Addr + suffix)
			p.idle += int64(d.Idle)
			p.used += int64(d.Used)
		}
		for _, n := range st.Nodes {
			v := int64(0)
			switch n.Breaker {
			case hooks.BreakerHalfOpen:
				v = 1
			case hooks.BreakerOpen:
				v = 2
			}
			if w, ok := breakers[n.Addr]; !ok || v > w {
				breakers[n.Addr] = v
			}
		}
		dropped += read.o.dropped(st) // base does not change once observed
	}
	for addr, p := range pools {
		name := semconv.DBClientConnectionPoolName(addr)
		o.ObserveInt64(h.connCount, p.idle, metric.WithAttributes(name, semconv.DBClientConnectionStateIdle, h.system))
		o.ObserveInt64(h.connCount, p.used, metric.WithAttributes(name, semconv.DBClientConnectionStateUsed, h.system))
		if p.pipelined {
			o.ObserveInt64(h.pending, p.pending, metric.WithAttributes(name, h.system))
			o.ObserveInt64(h.depth, p.queued, metric.WithAttributes(name))
		}
	}
	// By the node's attributes: the nodes past maxNodes share theirs.
	worst := make(map[*nodeAttrs]int64, len(breakers))
	for addr, v := range breakers {
		n := h.node(addr)
		if w, ok := worst[n]; !ok || v > w {
			worst[n] = v
		}
	}
	for n, v := range worst {
		o.ObserveInt64(h.breakers, v, n.opt)
	}
	o.ObserveInt64(h.hookDropped, int64(dropped))
	return nil
}

var (
	_ hooks.PostExecution    = (*Hook)(nil)
	_ hooks.PostConnection   = (*Hook)(nil)
	_ hooks.ConnectionLost   = (*Hook)(nil)
	_ hooks.ActorRestarted   = (*Hook)(nil)
	_ hooks.PipelineAnswered = (*Hook)(nil)
	_ hooks.MailboxFull      = (*Hook)(nil)
	_ hooks.BreakerChanged   = (*Hook)(nil)
	_ hooks.RetryScheduled   = (*Hook)(nil)
	_ hooks.Redirected       = (*Hook)(nil)
	_ hooks.SlotMapLoaded    = (*Hook)(nil)
	_ hooks.SentinelSwitched = (*Hook)(nil)
	_ hooks.SubscriberEvents = (*Hook)(nil)
	_ hooks.ConsumerEvents   = (*Hook)(nil)
)
