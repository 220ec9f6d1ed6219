// Package projections builds the PostgreSQL read models from the event log: a Watermill
// Subscriber per projector, all fed by one shared global subscription of the event store
// (fanout), a ProjectionTx middleware that applies each event and advances the projector's
// checkpoint in one transaction, a Runner hosting one cqrs.EventGroupProcessor group per
// projector, read-your-writes waits, status and metrics, rebuilds, and the read-model schema
// migrations.
package projections

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/components/cqrs"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/litehost/litehost/events"
)

// Projector is one read model: its persistent name (the checkpoint key: renaming it means a
// rebuild), the tables it owns (truncated by a rebuild) and its event handlers, which write with
// Tx(ctx).
type Projector struct {
	Name     string
	Tables   []string
	Handlers []cqrs.GroupEventHandler
}

// ErrWaitTimeout is returned by WaitFor when the projectors did not reach the position within
// the Runner's WaitTimeout. The write is durable; only its read models are late.
var ErrWaitTimeout = errors.New("projections: wait for read models timed out")

// Defaults of the Runner's tunables.
const (
	DefaultWaitTimeout     = 5 * time.Second
	DefaultPollInterval    = 50 * time.Millisecond
	DefaultMaxRetries      = 3
	DefaultRetryInterval   = 100 * time.Millisecond
	DefaultMetricsInterval = 5 * time.Second
	DefaultFlushInterval   = 250 * time.Millisecond
	DefaultFlushEvents     = 200
	DefaultMaxBatch        = 50
)

// The shared subscription's buffer per projector (at least; twice MaxBatch when larger), and
// how long it waits for every live projector to (re)subscribe before it serves those that have.
const (
	fanoutMinBuffer = 64
	fanoutSettle    = 2 * resubscribeMax
)

// finalFlushTimeout bounds the checkpoint flush when Run stops.
const finalFlushTimeout = 5 * time.Second

// coverPage is how many events WaitFor reads from the log, when no projector runs in this
// process, to see whether a stored checkpoint lags only by events the projector skips.
const coverPage = 256

// Runner hosts the projectors in a Watermill router and tracks their progress.
type Runner struct {
	// WaitTimeout bounds WaitFor (default DefaultWaitTimeout).
	WaitTimeout time.Duration
	// PollInterval is how often WaitFor re-reads the checkpoints table, so that progress made
	// by another instance's runner releases waiters too (default DefaultPollInterval).
	PollInterval time.Duration
	// MaxRetries and RetryInterval configure the bounded Retry middleware: after that many
	// failed retries the projector stops in state failed.
	MaxRetries    int
	RetryInterval time.Duration
	// MetricsInterval is how often Run refreshes the lag gauges.
	MetricsInterval time.Duration
	// FlushInterval and FlushEvents bound how long a projector's checkpoint may stay unsaved
	// while it only skips events (types it has no handler for): those advance the projector in
	// memory at once, so this runner's WaitFor releases without a commit per event, and the
	// checkpoint is persisted every FlushInterval (default DefaultFlushInterval), after
	// FlushEvents skipped events (default DefaultFlushEvents), with the projector's next applied
	// event (its transaction writes the checkpoint anyway) and when Run stops. Another
	// instance polling the checkpoints table could see such a checkpoint late; WaitFor covers
	// that from the log when it runs no projectors itself (see WaitFor).
	FlushInterval time.Duration
	FlushEvents   int
	// MaxBatch is the most events a projector applies in one transaction (default
	// DefaultMaxBatch; 1 turns batching off). Only events that are already waiting are
	// batched, so a projector that keeps up still commits each event as it comes, while one
	// that is behind catches up with one commit per batch instead of per event.
	MaxBatch int

	pool       *pgxpool.Pool
	store      events.Store
	logger     *slog.Logger
	projectors []Projector
	interest   map[string]map[string]bool // projector → event types it handles
	metrics    *metrics

	flushKick chan struct{} // a projector has FlushEvents unsaved skipped events
	// skipFinalFlush makes Run stop without persisting skipped events' checkpoints, the way a
	// crash would: for tests only.
	skipFinalFlush bool

	mu      sync.Mutex
	procs   map[string]*procState
	changed chan struct{} // closed and replaced whenever a checkpoint advances or a state changes
	started bool
	running bool
}

type procState struct {
	// pos is how far the projector's read model is known to be complete: this runner's
	// commits and skips, the checkpoints table, and (when not running) the log (cover).
	pos events.Position
	// last is the newest event this runner's projector has handled (applied, found applied, or
	// skipped), or the checkpoint its subscription started after: every event in between was
	// delivered here in order.
	last events.Position
	// unsaved is the newest skipped event whose checkpoint is not stored yet (when dirty), and
	// base is last before the first of those skips: every event in (base, unsaved] is one the
	// projector has no handler for. skips counts the skipped events since the last flush began.
	dirty          bool
	base           events.Position
	unsaved        events.Position
	unsavedCreated time.Time
	skips          int
	failed         bool
	lastErr        string
	dbFailed       bool // another instance recorded a failure
}

func (p *procState) clearUnsaved() {
	p.dirty, p.base, p.unsaved, p.unsavedCreated, p.skips = false, events.Position{}, events.Position{}, time.Time{}, 0
}

// NewRunner returns a Runner for projectors. Call Run to start them; WaitFor and Status work
// with or without Run (reading the checkpoints table).
func NewRunner(pool *pgxpool.Pool, store events.Store, logger *slog.Logger, projectors ...Projector) *Runner {
	r := &Runner{
		pool:       pool,
		store:      store,
		logger:     logger,
		projectors: projectors,
		interest:   map[string]map[string]bool{},
		metrics:    newMetrics(),
		procs:      map[string]*procState{},
		changed:    make(chan struct{}),
		flushKick:  make(chan struct{}, 1),
	}
	for _, p := range projectors {
		types := map[string]bool{}
		for _, h := range p.Handlers {
			types[marshaler{}.Name(h.NewEvent())] = true
		}
		r.interest[p.Name] = types
		r.procs[p.Name] = &procState{}
	}
	return r
}

var projectorName = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

// validate checks the projectors once at start: a bad one is a programming error in wiring.
func validate(projectors []Projector) error {
	var errs []error
	seen := map[string]bool{}
	for _, p := range projectors {
		if !projectorName.MatchString(p.Name) {
			errs = append(errs, fmt.Errorf("projector %q: name must be kebab-case", p.Name))
		}
		if seen[p.Name] {
			errs = append(errs, fmt.Errorf("projector %q: duplicate name", p.Name))
		}
		seen[p.Name] = true
		if len(p.Handlers) == 0 {
			errs = append(errs, fmt.Errorf("projector %q: no handlers", p.Name))
		}
		for _, h := range p.Handlers {
			if _, ok := h.NewEvent().(events.Event); !ok {
				errs = append(errs, fmt.Errorf("projector %q: handler event %T is not an events.Event", p.Name, h.NewEvent()))
			}
		}
		for _, t := range p.Tables {
			if !tableName.MatchString(t) {
				errs = append(errs, fmt.Errorf("projector %q: bad table name %q", p.Name, t))
			}
		}
	}
	return errors.Join(errs...)
}

var tableName = regexp.MustCompile(`^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$`)

// Run applies events to the projectors until ctx ends. A projector that fails (its handler
// keeps erroring after the bounded retries, or panics) stops in state failed without skipping
// the event; the others keep running, and a restart retries it. Run returns nil after ctx ends
// and an error if the router stops while ctx is live.
func (r *Runner) Run(ctx context.Context) error {
	err := r.run(ctx)
	if err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return nil // cancelled while starting: a normal shutdown
	}
	return err
}

func (r *Runner) run(ctx context.Context) error {
	if err := validate(r.projectors); err != nil {
		return fmt.Errorf("run projections: %w", err)
	}
	r.mu.Lock()
	if r.started {
		r.mu.Unlock()
		return errors.New("run projections: runner already started")
	}
	r.started = true
	r.mu.Unlock()

	for _, p := range r.projectors {
		// A (re)start retries a failed projector: that is how an operator resumes it after a fix.
		if err := setState(ctx, r.pool, p.Name, StateRunning, ""); err != nil {
			return fmt.Errorf("run projections: %w", err)
		}
	}
	if err := r.refresh(ctx); err != nil {
		return fmt.Errorf("run projections: %w", err)
	}

	wlogger := watermill.NewSlogLogger(r.logger)
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 10 * time.Second}, wlogger)
	if err != nil {
		return fmt.Errorf("run projections: %w", err)
	}
	retry := middleware.Retry{
		MaxRetries:          orDefault(r.MaxRetries, DefaultMaxRetries),
		InitialInterval:     orDefault(r.RetryInterval, DefaultRetryInterval),
		MaxInterval:         10 * orDefault(r.RetryInterval, DefaultRetryInterval),
		Multiplier:          2,
		RandomizationFactor: 0.2,
		ResetContextOnRetry: true,
		Logger:              wlogger,
	}
	router.AddMiddleware(
		r.stopOnFailure,
		middleware.Recoverer,
		retry.Middleware,
		ProjectionTx{Pool: r.pool, Interested: r.interested, Advanced: r.advanced, Skipped: r.skipped}.Middleware,
	)
	// One store subscription serves every projector (see fanout); each still reads from its
	// own checkpoint.
	batch := orDefault(r.MaxBatch, DefaultMaxBatch)
	fan := newFanout(r.store, r.liveProjectors, max(2*batch, fanoutMinBuffer), fanoutSettle)
	proc, err := cqrs.NewEventGroupProcessorWithConfig(router, cqrs.EventGroupProcessorConfig{
		GenerateSubscribeTopic: func(p cqrs.EventGroupProcessorGenerateSubscribeTopicParams) (string, error) {
			return p.EventGroupName, nil
		},
		SubscriberConstructor: func(p cqrs.EventGroupProcessorSubscriberConstructorParams) (message.Subscriber, error) {
			s := NewSubscriber(r.pool, fan, r.logger)
			s.halted, s.started, s.batch = r.failed, r.subscribed, batch
			return s, nil
		},
		AckOnUnknownEvent: true,
		Marshaler:         marshaler{},
		Logger:            wlogger,
	})
	if err != nil {
		return fmt.Errorf("run projections: %w", err)
	}
	for _, p := range r.projectors {
		if err := proc.AddHandlersGroup(p.Name, p.Handlers...); err != nil {
			return fmt.Errorf("run projections: %w", err)
		}
	}

	r.setRunning(true)
	defer r.setRunning(false)
	// Runs last: the router and the flush loop have stopped, so nothing is skipped after it.
	defer r.finalFlush(ctx)
	mctx, stopMetrics := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { r.refreshMetrics(mctx) })
	wg.Go(func() { r.flushLoop(mctx) })
	wg.Go(func() { fan.run(mctx) })
	defer wg.Wait()
	defer stopMetrics()

	if err := router.Run(ctx); err != nil {
		return fmt.Errorf("run projections: %w", err)
	}
	if ctx.Err() == nil {
		return errors.New("run projections: router stopped while the context is live")
	}
	return nil
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

func (r *Runner) setRunning(b bool) {
	r.mu.Lock()
	r.running = b
	r.notifyLocked()
	r.mu.Unlock()
}

func (r *Runner) notifyLocked() {
	close(r.changed)
	r.changed = make(chan struct{})
}

// interested reports whether projector name has a handler for eventType.
func (r *Runner) interested(name, eventType string) bool {
	return r.interest[name][eventType]
}

// advanced records a committed checkpoint and wakes WaitFor callers. The stored checkpoint is
// at least pos now, so skipped events up to pos need no flush of their own.
func (r *Runner) advanced(name string, pos events.Position, _ time.Time, applied bool) {
	if applied {
		r.metrics.applied.WithLabelValues(name).Inc()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	p, ok := r.procs[name]
	if !ok {
		return
	}
	if p.dirty && p.unsaved.Compare(pos) <= 0 {
		p.clearUnsaved()
	}
	if pos.Compare(p.last) > 0 {
		p.last = pos
	}
	if pos.Compare(p.pos) <= 0 {
		return
	}
	p.pos = pos
	r.notifyLocked()
}

// skipped records n events up to pos that projector name has no handler for: the projector is
// past them at once (every event before them was applied or skipped in order), and its
// checkpoint is saved later by flush.
func (r *Runner) skipped(name string, pos events.Position, created time.Time, n int) {
	r.mu.Lock()
	p, ok := r.procs[name]
	if !ok {
		r.mu.Unlock()
		return
	}
	if !p.dirty {
		p.dirty, p.base = true, p.last
	}
	if pos.Compare(p.unsaved) > 0 {
		p.unsaved, p.unsavedCreated = pos, created
	}
	if pos.Compare(p.last) > 0 {
		p.last = pos
	}
	every := orDefault(r.FlushEvents, DefaultFlushEvents)
	kick := p.skips < every && p.skips+n >= every
	p.skips += n
	if pos.Compare(p.pos) > 0 {
		p.pos = pos
		r.notifyLocked()
	}
	r.mu.Unlock()
	if kick {
		select {
		case r.flushKick <- struct{}{}:
		default: // a flush is already due
		}
	}
}

// subscribed records where a subscription of projector name starts: the stored checkpoint, the
// base of the first skips that follow.
func (r *Runner) subscribed(name string, from events.Position) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p, ok := r.procs[name]; ok && from.Compare(p.last) > 0 {
		p.last = from
	}
}

// flushLoop persists skipped events' checkpoints every FlushInterval, or sooner when a
// projector has skipped FlushEvents events, until ctx ends.
func (r *Runner) flushLoop(ctx context.Context) {
	t := time.NewTicker(orDefault(r.FlushInterval, DefaultFlushInterval))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-r.flushKick:
		}
		if err := r.flush(ctx); err != nil && ctx.Err() == nil {
			// Kept unsaved: the next flush retries, and skipping again after a crash is harmless.
			r.logger.Warn("save projector checkpoints", "error", err)
		}
	}
}

// finalFlush saves what is unsaved when Run stops; ctx is already cancelled by then.
func (r *Runner) finalFlush(ctx context.Context) {
	if r.skipFinalFlush {
		return
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finalFlushTimeout)
	defer cancel()
	if err := r.flush(fctx); err != nil {
		r.logger.Warn("save projector checkpoints at stop", "error", err)
	}
}

// flush stores the checkpoint of every projector with unsaved skipped events (skipCheckpoint:
// only over the stretch of skipped events, so never past an event a rebuild has not applied).
// It does no I/O when nothing is unsaved.
func (r *Runner) flush(ctx context.Context) error {
	type save struct {
		name      string
		base, pos events.Position
		created   time.Time
	}
	var saves []save
	r.mu.Lock()
	for _, p := range r.projectors {
		if s := r.procs[p.Name]; s.dirty {
			saves = append(saves, save{p.Name, s.base, s.unsaved, s.unsavedCreated})
			s.skips = 0
		}
	}
	r.mu.Unlock()
	var errs []error
	for _, sv := range saves {
		if _, err := skipCheckpoint(ctx, r.pool, sv.name, sv.base, sv.pos, sv.created); err != nil {
			errs = append(errs, err)
			continue
		}
		r.mu.Lock()
		if s := r.procs[sv.name]; s.dirty && s.unsaved == sv.pos {
			// Nothing skipped since the snapshot; otherwise keep the newer one for next time.
			s.clearUnsaved()
		}
		r.mu.Unlock()
	}
	return errors.Join(errs...)
}

// liveProjectors counts the projectors that have not failed in this runner: the consumers the
// shared subscription waits for.
func (r *Runner) liveProjectors() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, p := range r.procs {
		if !p.failed {
			n++
		}
	}
	return n
}

// failed reports whether projector name has stopped on a failure in this runner.
func (r *Runner) failed(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, ok := r.procs[name]
	return ok && p.failed
}

// stopOnFailure is the outermost middleware: an error that survived Recoverer and Retry stops
// the projector (the Subscriber sees the state on the Nack and stops delivering) instead of
// skipping the event, which would silently corrupt the read model.
func (r *Runner) stopOnFailure(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		produced, err := h(msg)
		if err == nil || msg.Context().Err() != nil {
			return produced, err // success, or shutdown: neither is the projector's failure
		}
		name := message.HandlerNameFromCtx(msg.Context())
		r.logger.Error("projector failed; stopped until restart",
			"projector", name, "error", err,
			"event_type", msg.Metadata.Get(MetaName), "stream", msg.Metadata.Get(MetaStream),
			"position", msg.Metadata.Get(MetaPosition))
		r.metrics.failures.WithLabelValues(name).Inc()
		r.metrics.failed.WithLabelValues(name).Set(1)
		r.mu.Lock()
		if p, ok := r.procs[name]; ok {
			p.failed, p.lastErr = true, err.Error()
		}
		r.notifyLocked()
		r.mu.Unlock()
		if serr := setState(msg.Context(), r.pool, name, StateFailed, err.Error()); serr != nil {
			r.logger.Error("record projector failure", "projector", name, "error", serr)
		}
		return produced, err
	}
}

// refresh merges the checkpoints table into the in-memory positions: progress made by another
// instance counts for WaitFor too.
func (r *Runner) refresh(ctx context.Context) error {
	names := make([]string, 0, len(r.projectors))
	for _, p := range r.projectors {
		names = append(names, p.Name)
	}
	const q = `SELECT name, commit_pos, prepare_pos, state FROM projection_checkpoints WHERE name = ANY($1)`
	rows, err := r.pool.Query(ctx, q, names)
	if err != nil {
		return fmt.Errorf("read checkpoints: %w", err)
	}
	defer rows.Close()
	r.mu.Lock()
	defer r.mu.Unlock()
	moved := false
	for rows.Next() {
		var (
			name, state string
			c, pr       int64
		)
		if err := rows.Scan(&name, &c, &pr, &state); err != nil {
			return fmt.Errorf("read checkpoints: %w", err)
		}
		p := r.procs[name]
		if pos := fromDB(c, pr); pos.Compare(p.pos) > 0 {
			p.pos, moved = pos, true
		}
		if f := state == StateFailed; f != p.dbFailed {
			p.dbFailed, moved = f, true
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read checkpoints: %w", err)
	}
	if moved {
		r.notifyLocked()
	}
	return nil
}

// pending returns the projectors that have not reached pos (failed ones excluded: they are
// reported unhealthy instead of holding every write for the full timeout) and the channel that
// is closed at the next change.
func (r *Runner) pending(pos events.Position) ([]string, <-chan struct{}, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var behind []string
	for _, p := range r.projectors {
		s := r.procs[p.Name]
		if s.failed || s.dbFailed {
			continue
		}
		if s.pos.Compare(pos) < 0 {
			behind = append(behind, p.Name)
		}
	}
	return behind, r.changed, r.running
}

// cover raises the known position of the projectors behind pos over the events after their
// stored checkpoints that they have no handler for: their read models are complete up to the
// first event they handle. A running instance saves the checkpoint of such skipped events
// only every FlushInterval, so without this a runner that runs no projectors itself would
// wait that long for a write no read model of the lagging projector cares about. It reads at
// most coverPage events (one query for all projectors); ReadAll never later gains an event
// before the end of a page it returned, so what it shows is final.
func (r *Runner) cover(ctx context.Context, pos events.Position) error {
	behind, _, _ := r.pending(pos)
	if len(behind) == 0 {
		return nil
	}
	from := make(map[string]events.Position, len(behind))
	var low events.Position
	r.mu.Lock()
	for i, name := range behind {
		from[name] = r.procs[name].pos
		if i == 0 || from[name].Compare(low) < 0 {
			low = from[name]
		}
	}
	r.mu.Unlock()
	recs, err := r.store.ReadAll(ctx, low, coverPage)
	if err != nil {
		return fmt.Errorf("read log: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	moved := false
	for _, name := range behind {
		known := from[name]
		for _, rec := range recs {
			if rec.Position.Compare(known) <= 0 {
				continue
			}
			if rec.Position.Compare(pos) > 0 ||
				((events.Filter{}).Match(rec.Stream, rec.Type) && r.interested(name, rec.Type)) {
				break
			}
			known = rec.Position
		}
		if p := r.procs[name]; known.Compare(p.pos) > 0 {
			p.pos, moved = known, true
		}
	}
	if moved {
		r.notifyLocked()
	}
	return nil
}

// WaitFor returns once every projector that has not failed has applied the event at pos (or
// passed it: projectors advance over events they have no handler for too). It wakes on this
// runner's own commits and skips, and re-reads the checkpoints table every PollInterval, so
// progress made by another instance also counts. A runner that is not running also reads the
// log after the stored checkpoints (cover), because a running instance saves the checkpoint
// of events a projector merely skips only every FlushInterval; a running runner needs no such
// read, since its own projectors skip those events in memory. It gives up after WaitTimeout
// with an error matching ErrWaitTimeout, and returns ctx's error when ctx ends first.
func (r *Runner) WaitFor(ctx context.Context, pos events.Position) error {
	if pos.IsZero() {
		return nil
	}
	ctx, cancel := context.WithTimeoutCause(ctx, orDefault(r.WaitTimeout, DefaultWaitTimeout), ErrWaitTimeout)
	defer cancel()
	poll := time.NewTicker(orDefault(r.PollInterval, DefaultPollInterval))
	defer poll.Stop()
	// refresh reads the stored checkpoints and, when nothing in this process runs the
	// projectors, the log after them.
	refresh := func(running bool) error {
		err := r.refresh(ctx)
		if err == nil && !running {
			err = r.cover(ctx, pos)
		}
		if err != nil && ctx.Err() == nil {
			return fmt.Errorf("wait for %s: %w", pos, err)
		}
		return nil
	}
	behind, changed, running := r.pending(pos)
	if len(behind) > 0 && !running {
		// Nothing in this process will wake us: start from the table rather than a tick later.
		if err := refresh(running); err != nil {
			return err
		}
		behind, changed, _ = r.pending(pos)
	}
	for len(behind) > 0 {
		select {
		case <-changed:
		case <-poll.C:
			_, _, running := r.pending(pos)
			if err := refresh(running); err != nil {
				return err
			}
		case <-ctx.Done():
			if errors.Is(context.Cause(ctx), ErrWaitTimeout) {
				return fmt.Errorf("%w: %s not at %s", ErrWaitTimeout, strings.Join(behind, ", "), pos)
			}
			return ctx.Err()
		}
		behind, changed, _ = r.pending(pos)
	}
	return nil
}

// Status reports every projector of this runner: state (running, failed, or stopped when this
// runner is not running it), checkpoint, last error and lag. It also refreshes the lag gauges.
func (r *Runner) Status(ctx context.Context) ([]ProjectorStatus, error) {
	stored, err := StatusFromDB(ctx, r.pool)
	if err != nil {
		return nil, err
	}
	byName := map[string]ProjectorStatus{}
	for _, s := range stored {
		byName[s.Name] = s
	}
	out := make([]ProjectorStatus, 0, len(r.projectors))
	r.mu.Lock()
	for _, p := range r.projectors {
		s, ok := byName[p.Name]
		if !ok {
			s = ProjectorStatus{Name: p.Name, Checkpoint: events.Start.String()}
		}
		ps := r.procs[p.Name]
		if ps.pos.Compare(s.Position) > 0 {
			// Skipped events this runner has not saved yet (or the log showed) count as passed.
			s.Position, s.Checkpoint = ps.pos, ps.pos.String()
		}
		switch {
		case ps.failed:
			s.State, s.LastError = StateFailed, ps.lastErr
		case r.running:
			s.State = StateRunning
		default:
			s.State = StateStopped
		}
		out = append(out, s)
	}
	r.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	if err := FillLag(ctx, r.store, time.Now(), out); err != nil {
		return nil, err
	}
	for _, s := range out {
		r.metrics.lagEvents.WithLabelValues(s.Name).Set(float64(s.LagEvents))
		r.metrics.lagSeconds.WithLabelValues(s.Name).Set(s.LagSeconds)
		r.metrics.failed.WithLabelValues(s.Name).Set(boolGauge(s.State == StateFailed))
	}
	return out, nil
}

// Healthy reports whether no projector of this runner has failed, with the failed names.
func (r *Runner) Healthy() (bool, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var failed []string
	for name, p := range r.procs {
		if p.failed {
			failed = append(failed, name)
		}
	}
	slices.Sort(failed)
	return len(failed) == 0, failed
}

func (r *Runner) refreshMetrics(ctx context.Context) {
	t := time.NewTicker(orDefault(r.MetricsInterval, DefaultMetricsInterval))
	defer t.Stop()
	for {
		if _, err := r.Status(ctx); err != nil && ctx.Err() == nil {
			r.logger.Warn("refresh projector metrics", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
