package commands

import (
	"context"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/google/uuid"

	"github.com/litehost/litehost/domain"
	"github.com/litehost/litehost/domain/account"
	"github.com/litehost/litehost/domain/customdomain"
	"github.com/litehost/litehost/domain/project"
	"github.com/litehost/litehost/domain/slug"
	"github.com/litehost/litehost/events"
	"github.com/litehost/litehost/events/secret"
)

// DefaultTempTTL is how long an unclaimed temporary project lives (LITEHOST_TEMP_TTL).
const DefaultTempTTL = 15 * time.Minute

// autoSlugTries bounds the -2, -3, … suffixes tried for a slug derived from a title before a
// random suffix is used instead.
const autoSlugTries = 20

// Upload is a checked upload: the manifest its files have (or will have) in the blob store,
// summarised. ManifestHash is known before anything is stored, so the decision and the event use
// the real hash.
type Upload struct {
	ManifestHash string
	Type         string // project.TypeHTML or project.TypeFiles
	IndexPath    string
	FileCount    int
	SizeBytes    int64
	// Store writes the files and the manifest into the blob store, the second phase of an
	// upload. The commands call it only once every field, rule and quota has passed and the slug
	// is reserved, so a rejected write stores nothing. nil: the files are stored already.
	Store func(ctx context.Context) error
}

// store runs the upload's second phase. A failure after it (the project append losing a race)
// leaves blobs no event references: that is acceptable only because the blob collector
// (cmd/litehost app.collectBlobs) removes unreferenced blobs after their grace period (2 h).
func (u Upload) store(ctx context.Context) error {
	if u.Store == nil {
		return nil
	}
	if err := u.Store(ctx); err != nil {
		return fmt.Errorf("store upload: %w", err)
	}
	return nil
}

func (u Upload) deployment(id string) events.Deployment {
	return events.Deployment{DeploymentID: id, ManifestHash: u.ManifestHash, Type: u.Type,
		IndexPath: u.IndexPath, FileCount: u.FileCount, SizeBytes: u.SizeBytes}
}

// ProjectLookup answers the questions the project commands ask of the projects read model:
// the caller's quota usage and which project a claim token belongs to.
type ProjectLookup interface {
	Usage(ctx context.Context, accountID string) (project.Usage, error)
	// ByClaimHash returns the project whose claim token has that keyed hash, ErrNotFound if none.
	ByClaimHash(ctx context.Context, hash string) (string, error)
}

// Scopes says whether the caller may put a project in a workspace or on a custom domain. The
// workspace and domain read models implement it; without it both fields are refused.
type Scopes interface {
	WorkspaceOwned(ctx context.Context, accountID, workspaceID string) (bool, error)
	// DomainAssignable returns nil for the caller's domain in an assignable status,
	// customdomain.ErrNotActive for one that is not active yet, customdomain.ErrNotFound otherwise.
	DomainAssignable(ctx context.Context, accountID, domainID string) error
}

// Projects handles the project commands: create, temporary create, push, rollback, settings,
// archive, unarchive, claim, expire and delete. Slugs are reserved in slug-<slug> streams before
// the project stream is written, and released again if the project write fails.
type Projects struct {
	store   EventStore
	exec    *Executor
	lookup  ProjectLookup
	scopes  Scopes
	gate    QuotaGate
	keys    *secret.Keyring
	tempTTL time.Duration
	now     func() time.Time
	logger  *slog.Logger
}

// NewProjects returns the project command handlers. scopes may be nil (no workspaces or domains
// can be used then); tempTTL <= 0 means DefaultTempTTL.
func NewProjects(store EventStore, lookup ProjectLookup, scopes Scopes, keys *secret.Keyring, tempTTL time.Duration, now func() time.Time, logger *slog.Logger) *Projects {
	if tempTTL <= 0 {
		tempTTL = DefaultTempTTL
	}
	return &Projects{store: store, exec: NewExecutor(store), lookup: lookup, scopes: scopes, keys: keys,
		tempTTL: tempTTL, now: now, logger: logger}
}

// WithQuotaGate makes the quota-checked commands (create, claim, unarchive, push, rollback) take
// turns per account through g, so concurrent ones cannot together exceed the plan. Without a gate
// two commands racing at the very limit may both pass. It returns p; call it before p is used.
func (p *Projects) WithQuotaGate(g QuotaGate) *Projects {
	p.gate = g
	return p
}

// hold takes accountID's quota turn (a no-op without a gate). Every quota-checked command reads
// the usage only after hold, and defers the release with the position it appended.
func (p *Projects) hold(ctx context.Context, accountID string) (func(context.Context, events.Position), error) {
	if p.gate == nil {
		return noRelease, nil
	}
	release, err := p.gate.Hold(ctx, accountID)
	if err != nil {
		return nil, fmt.Errorf("quota turn: %w", err)
	}
	return release, nil
}

// subID derives a stable ID for one part of a command (the project ID, a deployment ID) so that a
// retried command produces the same IDs.
func subID(commandID uuid.UUID, part string) string {
	return uuid.NewSHA1(commandID, []byte(part)).String()
}

// Plan returns the caller's plan rules and current usage.
func (p *Projects) Plan(ctx context.Context, accountID string) (project.Plan, project.Usage, error) {
	s, err := Load(ctx, p.store, "account-"+accountID)
	if err != nil {
		return project.Plan{}, project.Usage{}, err
	}
	a := account.Replay(s.Events)
	if !a.Registered {
		return project.Plan{}, project.Usage{}, ErrNotFound
	}
	plan := project.Plan{
		Paid:            account.IsPaid(a.Plan),
		MaxProjects:     int64(a.Limits.MaxProjects),
		MaxStorageBytes: a.Limits.MaxStorageBytes,
		MaxFiles:        int64(a.Limits.MaxFilesPerProject),
	}
	u, err := p.lookup.Usage(ctx, accountID)
	if err != nil {
		return plan, u, fmt.Errorf("usage of %s: %w", accountID, err)
	}
	return plan, u, nil
}

// CreateInput is POST /v1/projects after its upload was stored.
type CreateInput struct {
	Title       string
	Slug        string // "" = derived from the title
	DomainID    string
	WorkspaceID string
	Access      string
	Password    *string
	ExpiresIn   string
	Upload      Upload
}

// Created is the outcome of a create.
type Created struct {
	ProjectID string
	Settings  events.ProjectSettings
	Type      string
	CreatedAt time.Time
	Plan      project.Plan
	Usage     project.Usage // after the create
	Position  events.Position
}

// PrecheckCreate fails early, before an upload is received, when the caller could not create a
// project at all (project count at the limit).
func (p *Projects) PrecheckCreate(ctx context.Context, accountID string) error {
	plan, u, err := p.Plan(ctx, accountID)
	if err != nil {
		return err
	}
	if plan.MaxProjects >= 0 && u.ActiveProjects >= plan.MaxProjects {
		return project.ErrProjectLimit
	}
	return nil
}

// Create creates a project with its first deployment for accountID.
func (p *Projects) Create(ctx context.Context, commandID uuid.UUID, accountID string, in CreateInput) (out Created, err error) {
	release, err := p.hold(ctx, accountID)
	if err != nil {
		return Created{}, err
	}
	defer func() { release(ctx, out.Position) }()
	now := p.now().UTC()
	plan, usage, err := p.Plan(ctx, accountID)
	if err != nil {
		return Created{}, err
	}
	bad := domain.Invalid{}
	if in.Slug != "" {
		if msg := slug.Validate(in.Slug); msg != "" {
			bad["slug"] = msg
		}
	}
	notActive := p.checkScopes(ctx, accountID, in.WorkspaceID, in.DomainID, bad)
	hash, err := p.passwordHash(in.Password, bad)
	if err != nil {
		return Created{}, err
	}
	if len(bad) > 0 {
		return Created{}, bad
	}
	if notActive {
		return Created{}, customdomain.ErrNotActive
	}
	projectID := subID(commandID, "project")
	cmd := project.Create{
		ProjectID: projectID, OwnerID: accountID, WorkspaceID: in.WorkspaceID, DomainID: in.DomainID,
		Title: in.Title, Access: in.Access, PasswordHash: hash, ExpiresIn: in.ExpiresIn,
		Deployment: in.Upload.deployment(subID(commandID, "deployment")),
	}
	// Decide once against an empty project before reserving a slug, so a request that breaks a
	// rule never touches a slug stream.
	if _, err := cmd.Decide(project.State{}, plan, usage, now); err != nil {
		return Created{}, err
	}
	s, err := p.reserve(ctx, commandID, projectID, in.Slug, slug.FromTitle(in.Title), now)
	if err != nil {
		return Created{}, err
	}
	cmd.Slug = s
	// Only now, with the rules passed and the slug held, are the files stored.
	if err := in.Upload.store(ctx); err != nil {
		p.release(ctx, commandID, projectID, s, now)
		return Created{}, err
	}
	res, err := p.exec.Execute(ctx, commandID, project.Stream(projectID), func(st Stream) ([]events.Event, error) {
		return cmd.Decide(project.Replay(st.Events), plan, usage, now)
	})
	if err != nil {
		p.release(ctx, commandID, projectID, s, now)
		return Created{}, err
	}
	if err := p.replayedPassword(res, in.Password); err != nil {
		return Created{}, err
	}
	ev, ok := firstOf[events.ProjectCreated](res.Events)
	if !ok {
		return Created{}, fmt.Errorf("create %s: no created event", projectID)
	}
	usage.ActiveProjects++
	usage.StorageBytes += ev.Deployment.SizeBytes
	return Created{ProjectID: projectID, Settings: ev.Settings, Type: ev.Deployment.Type, CreatedAt: ev.At,
		Plan: plan, Usage: usage, Position: res.Position}, nil
}

func firstOf[T events.Event](evs []events.Event) (T, bool) {
	for _, e := range evs {
		if t, ok := e.(T); ok {
			return t, true
		}
	}
	var zero T
	return zero, false
}

func (p *Projects) checkScopes(ctx context.Context, accountID, workspaceID, domainID string, bad domain.Invalid) (notActive bool) {
	valid := func(field, id string) bool {
		if uuid.Validate(id) != nil {
			bad[field] = "must be a UUID"
			return false
		}
		if p.scopes == nil {
			bad[field] = "is not one of yours"
			return false
		}
		return true
	}
	if workspaceID != "" && valid("workspaceId", workspaceID) {
		ok, err := p.scopes.WorkspaceOwned(ctx, accountID, workspaceID)
		if err != nil {
			p.logger.Error("scope check", "field", "workspaceId", "error", err)
		}
		if !ok {
			bad["workspaceId"] = "is not one of yours"
		}
	}
	if domainID != "" && valid("domainId", domainID) {
		switch err := p.scopes.DomainAssignable(ctx, accountID, domainID); {
		case err == nil:
		case errors.Is(err, customdomain.ErrNotActive):
			return true
		default:
			if !errors.Is(err, customdomain.ErrNotFound) {
				p.logger.Error("scope check", "field", "domainId", "error", err)
			}
			bad["domainId"] = "is not one of yours"
		}
	}
	return false
}

// passwordHash validates and hashes a site password; nil gives "".
func (p *Projects) passwordHash(pw *string, bad domain.Invalid) (string, error) {
	if pw == nil {
		return "", nil
	}
	if n := len([]rune(*pw)); n == 0 || n > project.MaxTitle {
		bad["password"] = "must be 1 to 255 characters"
		return "", nil
	}
	return p.sealSitePassword(*pw)
}

// reserve takes an explicit slug (ErrTaken when another project holds it) or the first free
// candidate derived from base.
func (p *Projects) reserve(ctx context.Context, commandID uuid.UUID, projectID, explicit, base string, now time.Time) (string, error) {
	if explicit != "" {
		return explicit, p.reserveOne(ctx, commandID, projectID, explicit, now)
	}
	for n := 1; n <= autoSlugTries; n++ {
		c := slug.Candidate(base, n)
		err := p.reserveOne(ctx, commandID, projectID, c, now)
		if !errors.Is(err, slug.ErrTaken) {
			return c, err
		}
	}
	// A crowded base: a random four-digit suffix is as readable and almost never taken.
	for range autoSlugTries {
		c := slug.Candidate(base, 1000+rand.IntN(9000))
		err := p.reserveOne(ctx, commandID, projectID, c, now)
		if !errors.Is(err, slug.ErrTaken) {
			return c, err
		}
	}
	return "", slug.ErrTaken
}

func (p *Projects) reserveOne(ctx context.Context, commandID uuid.UUID, projectID, s string, now time.Time) error {
	_, err := p.exec.Execute(ctx, commandID, slug.Stream(s), func(st Stream) ([]events.Event, error) {
		return slug.Reserve(slug.Replay(st.Events), s, projectID, now)
	})
	return err
}

// release frees a slug projectID holds. Failures are logged, not returned: the caller is already
// answering with its own error or has succeeded, and a leftover reservation only costs a slug.
func (p *Projects) release(ctx context.Context, commandID uuid.UUID, projectID, s string, now time.Time) {
	releaseID := uuid.NewSHA1(commandID, []byte("release:"+s))
	_, err := p.exec.Execute(ctx, releaseID, slug.Stream(s), func(st Stream) ([]events.Event, error) {
		return slug.Release(slug.Replay(st.Events), s, projectID, now), nil
	})
	if err != nil {
		p.logger.Error("release slug", "slug", s, "project_id", projectID, "error", err)
	}
}

// TempCreated is the outcome of a temporary create; ClaimToken is shown once and never stored:
// it is derived from the project ID with the server secret.
type TempCreated struct {
	ProjectID  string
	Slug       string
	ClaimToken string
	ExpiresAt  time.Time
	Position   events.Position
}

// claimTokenLen is the length of a claim token: the project ID and a 128-bit keyed MAC of it,
// hex. Tokens of claimTokenLenV1 (32 alphanumerics) were random-looking and are checked by
// their recorded hash.
const (
	claimTokenLen   = 64
	claimTokenLenV1 = 32
)

// claimToken derives the claim token of a temporary project from its ID with the server secret:
// a replayed create shows the same token without storing it anywhere, a claim finds its
// project from the token itself, and nobody without the secret can make one.
func (p *Projects) claimToken(projectID uuid.UUID) string {
	mac := p.keys.Sum(secret.PurposeClaimIssue, projectID.String())
	return hex.EncodeToString(projectID[:]) + hex.EncodeToString(mac[:16])
}

// claimTarget finds the project a presented claim token names, and the check of the token
// against that project's state: a derived token is re-derived and compared in constant time,
// an older token by its keyed hash recorded in the project's creation.
func (p *Projects) claimTarget(ctx context.Context, token string) (string, func(project.State) bool, error) {
	switch len(token) {
	case claimTokenLen:
		raw, err := hex.DecodeString(token[:32])
		if err != nil {
			return "", nil, project.ErrNotFound
		}
		id, err := uuid.FromBytes(raw)
		if err != nil {
			return "", nil, project.ErrNotFound
		}
		ok := subtle.ConstantTimeCompare([]byte(p.claimToken(id)), []byte(token)) == 1
		if !ok {
			return "", nil, project.ErrNotFound
		}
		return id.String(), func(st project.State) bool { return st.ClaimTokenHash == "" }, nil
	case claimTokenLenV1:
		hash := p.keys.Hash(secret.PurposeClaim, token)
		projectID, err := p.lookup.ByClaimHash(ctx, hash)
		if errors.Is(err, ErrNotFound) {
			return "", nil, project.ErrNotFound
		}
		if err != nil {
			return "", nil, err
		}
		return projectID, func(st project.State) bool { return st.ClaimTokenMatches(hash) }, nil
	}
	return "", nil, project.ErrNotFound
}

// CreateTemp creates an anonymous project that expires after the temporary TTL. A repeat of the
// same command (same Idempotency-Key and request) answers from the project's creation event, so
// its answer, which holds the claim token, is never stored (WriteRoute.SecretAnswer).
func (p *Projects) CreateTemp(ctx context.Context, commandID uuid.UUID, up Upload) (TempCreated, error) {
	now := p.now().UTC()
	projectID := subID(commandID, "project")
	token := p.claimToken(uuid.MustParse(projectID))
	// A replay reserves no new slug and stores no files: Execute recognises the command's own
	// creation (or refuses another request under its key) before anything is decided.
	res, err := p.exec.Execute(ctx, commandID, project.Stream(projectID), func(Stream) ([]events.Event, error) { return nil, nil })
	if err != nil {
		return TempCreated{}, err
	}
	if res.Replayed {
		return tempCreated(projectID, token, res)
	}
	cmd := project.CreateTemp{ProjectID: projectID, TTL: p.tempTTL, Deployment: up.deployment(subID(commandID, "deployment"))}
	var s string
	for range autoSlugTries {
		s = slug.Random(rand.IntN)
		if err = p.reserveOne(ctx, commandID, projectID, s, now); !errors.Is(err, slug.ErrTaken) {
			break
		}
	}
	if err != nil {
		return TempCreated{}, err
	}
	cmd.Slug = s
	// The temporary limits were checked when the upload was received; the files are stored only
	// once the slug is held.
	if err := up.store(ctx); err != nil {
		p.release(ctx, commandID, projectID, s, now)
		return TempCreated{}, err
	}
	res, err = p.exec.Execute(ctx, commandID, project.Stream(projectID), func(st Stream) ([]events.Event, error) {
		return cmd.Decide(project.Replay(st.Events), now)
	})
	if err != nil {
		p.release(ctx, commandID, projectID, s, now)
		return TempCreated{}, err
	}
	return tempCreated(projectID, token, res)
}

func tempCreated(projectID, token string, res Result) (TempCreated, error) {
	ev, ok := firstOf[events.ProjectCreated](res.Events)
	if !ok || ev.Settings.ExpiresAt == nil {
		return TempCreated{}, fmt.Errorf("create temp %s: no created event", projectID)
	}
	return TempCreated{ProjectID: projectID, Slug: ev.Settings.Slug, ClaimToken: token,
		ExpiresAt: *ev.Settings.ExpiresAt, Position: res.Position}, nil
}

// Pushed is the outcome of a push or rollback.
type Pushed struct {
	DeploymentID string
	Slug         string
	Position     events.Position
}

// Push makes the upload the project's new active version.
func (p *Projects) Push(ctx context.Context, commandID uuid.UUID, accountID, projectID string, up Upload) (out Pushed, err error) {
	if uuid.Validate(projectID) != nil {
		return Pushed{}, project.ErrNotFound
	}
	release, err := p.hold(ctx, accountID)
	if err != nil {
		return Pushed{}, err
	}
	defer func() { release(ctx, out.Position) }()
	plan, usage, err := p.Plan(ctx, accountID)
	if err != nil {
		return Pushed{}, err
	}
	d := up.deployment(subID(commandID, "deployment"))
	decide := func(s project.State, now time.Time) ([]events.Event, error) {
		return project.Push(s, accountID, plan, usage, d, now)
	}
	// Decide once against the current project before storing the files, so a refused push (not
	// the owner, free tier, archived, over quota) stores nothing. A retry of a push that was
	// already applied skips both: its files are stored and Execute replays it.
	stream := project.Stream(projectID)
	st, err := Load(ctx, p.store, stream)
	if err != nil {
		return Pushed{}, err
	}
	_, done, err := replayed(st, commandID, EventID(commandID, stream, 0), RequestFingerprintFrom(ctx))
	if err != nil {
		return Pushed{}, err
	}
	if !done {
		if _, err := decide(project.Replay(st.Events), p.now().UTC()); err != nil {
			return Pushed{}, err
		}
		if err := up.store(ctx); err != nil {
			return Pushed{}, err
		}
	}
	return p.push(ctx, commandID, projectID, decide)
}

// Rollback publishes an earlier deployment's files again as a new version.
func (p *Projects) Rollback(ctx context.Context, commandID uuid.UUID, accountID, projectID, deploymentID string) (out Pushed, err error) {
	if uuid.Validate(projectID) != nil {
		return Pushed{}, project.ErrNotFound
	}
	release, err := p.hold(ctx, accountID)
	if err != nil {
		return Pushed{}, err
	}
	defer func() { release(ctx, out.Position) }()
	plan, usage, err := p.Plan(ctx, accountID)
	if err != nil {
		return Pushed{}, err
	}
	newID := subID(commandID, "deployment")
	return p.push(ctx, commandID, projectID, func(s project.State, now time.Time) ([]events.Event, error) {
		return project.Rollback(s, accountID, plan, usage, deploymentID, newID, now)
	})
}

func (p *Projects) push(ctx context.Context, commandID uuid.UUID, projectID string, decide func(project.State, time.Time) ([]events.Event, error)) (Pushed, error) {
	if uuid.Validate(projectID) != nil {
		return Pushed{}, project.ErrNotFound
	}
	var last project.State
	res, err := p.exec.Execute(ctx, commandID, project.Stream(projectID), func(st Stream) ([]events.Event, error) {
		last = project.Replay(st.Events)
		return decide(last, p.now().UTC())
	})
	if err != nil {
		return Pushed{}, err
	}
	if res.Replayed {
		// decide did not run: describe the project from its stream.
		if last, err = p.state(ctx, projectID); err != nil {
			return Pushed{}, err
		}
	}
	out := Pushed{DeploymentID: last.ActiveID, Slug: last.Settings.Slug, Position: res.Position}
	if ev, ok := firstOf[events.ProjectVersionPushed](res.Events); ok {
		out.DeploymentID = ev.Deployment.DeploymentID
	}
	return out, nil
}

// PatchInput is a PATCH body: Password is the clear password (hashed here) or null.
type PatchInput struct {
	project.Patch
	Password project.Nullable[string]
}

// Update applies a PATCH. A new slug is reserved first and the old one released after.
func (p *Projects) Update(ctx context.Context, commandID uuid.UUID, accountID, projectID string, in PatchInput) (events.Position, error) {
	if uuid.Validate(projectID) != nil {
		return events.Position{}, project.ErrNotFound
	}
	now := p.now().UTC()
	plan, _, err := p.Plan(ctx, accountID)
	if err != nil {
		return events.Position{}, err
	}
	cur, err := p.state(ctx, projectID)
	if err != nil {
		return events.Position{}, err
	}
	// The gates come before any slug is touched, so a free or foreign caller learns nothing.
	if _, err := project.UpdateSettings(cur, accountID, plan, project.Patch{}, now); err != nil {
		return events.Position{}, err
	}
	bad := domain.Invalid{}
	patch := in.Patch
	if patch.Slug != nil {
		if msg := slug.Validate(*patch.Slug); msg != "" {
			bad["slug"] = msg
		}
	}
	notActive := false
	if patch.WorkspaceID.Set && patch.WorkspaceID.Value != nil {
		p.checkScopes(ctx, accountID, *patch.WorkspaceID.Value, "", bad)
	}
	if patch.DomainID.Set && patch.DomainID.Value != nil {
		notActive = p.checkScopes(ctx, accountID, "", *patch.DomainID.Value, bad)
	}
	if in.Password.Set {
		patch.Password = project.Nullable[string]{Set: true}
		if in.Password.Value != nil {
			h, err := p.passwordHash(in.Password.Value, bad)
			if err != nil {
				return events.Position{}, err
			}
			patch.Password.Value = &h
		}
	}
	if len(bad) > 0 {
		return events.Position{}, bad
	}
	if notActive {
		return events.Position{}, customdomain.ErrNotActive
	}
	if _, err := project.UpdateSettings(cur, accountID, plan, patch, now); err != nil {
		return events.Position{}, err
	}
	oldSlug := cur.Settings.Slug
	newSlug := ""
	if patch.Slug != nil && *patch.Slug != oldSlug {
		newSlug = *patch.Slug
		if err := p.reserveOne(ctx, commandID, projectID, newSlug, now); err != nil {
			return events.Position{}, err
		}
	}
	res, err := p.exec.Execute(ctx, commandID, project.Stream(projectID), func(st Stream) ([]events.Event, error) {
		return project.UpdateSettings(project.Replay(st.Events), accountID, plan, patch, now)
	})
	if err == nil && in.Password.Set {
		err = p.replayedPassword(res, in.Password.Value)
	}
	if err != nil {
		if newSlug != "" {
			p.release(ctx, commandID, projectID, newSlug, now)
		}
		return events.Position{}, err
	}
	if newSlug != "" {
		p.release(ctx, commandID, projectID, oldSlug, now)
	}
	return res.Position, nil
}

func (p *Projects) state(ctx context.Context, projectID string) (project.State, error) {
	s, err := Load(ctx, p.store, project.Stream(projectID))
	if err != nil {
		return project.State{}, err
	}
	return project.Replay(s.Events), nil
}

// Archive archives a project (idempotent).
func (p *Projects) Archive(ctx context.Context, commandID uuid.UUID, accountID, projectID string) (events.Position, error) {
	plan, _, err := p.Plan(ctx, accountID)
	if err != nil {
		return events.Position{}, err
	}
	return p.simple(ctx, commandID, projectID, func(s project.State, now time.Time) ([]events.Event, error) {
		return project.Archive(s, accountID, plan, now)
	})
}

// Unarchive restores an archived project if the plan has room (idempotent).
func (p *Projects) Unarchive(ctx context.Context, commandID uuid.UUID, accountID, projectID string) (pos events.Position, err error) {
	if uuid.Validate(projectID) != nil {
		return events.Position{}, project.ErrNotFound
	}
	release, err := p.hold(ctx, accountID)
	if err != nil {
		return events.Position{}, err
	}
	defer func() { release(ctx, pos) }()
	plan, usage, err := p.Plan(ctx, accountID)
	if err != nil {
		return events.Position{}, err
	}
	return p.simple(ctx, commandID, projectID, func(s project.State, now time.Time) ([]events.Event, error) {
		return project.Unarchive(s, accountID, plan, usage, now)
	})
}

// Delete deletes a project and releases its slug.
func (p *Projects) Delete(ctx context.Context, commandID uuid.UUID, accountID, projectID string) (events.Position, error) {
	var slugName string
	pos, err := p.simple(ctx, commandID, projectID, func(s project.State, now time.Time) ([]events.Event, error) {
		slugName = s.Settings.Slug
		return project.Delete(s, accountID, now)
	})
	if err != nil {
		return pos, err
	}
	p.release(ctx, commandID, projectID, slugName, p.now().UTC())
	return pos, nil
}

func (p *Projects) simple(ctx context.Context, commandID uuid.UUID, projectID string, decide func(project.State, time.Time) ([]events.Event, error)) (events.Position, error) {
	if uuid.Validate(projectID) != nil {
		return events.Position{}, project.ErrNotFound
	}
	res, err := p.exec.Execute(ctx, commandID, project.Stream(projectID), func(st Stream) ([]events.Event, error) {
		return decide(project.Replay(st.Events), p.now().UTC())
	})
	return res.Position, err
}

// Claimed is the outcome of a claim.
type Claimed struct {
	ProjectID string
	Slug      string
	ExpiresAt *time.Time
	Position  events.Position
}

// Claim moves the temporary project of token into accountID's account.
func (p *Projects) Claim(ctx context.Context, commandID uuid.UUID, accountID, token string) (out Claimed, err error) {
	projectID, tokenValid, err := p.claimTarget(ctx, token)
	if err != nil {
		return Claimed{}, err
	}
	release, err := p.hold(ctx, accountID)
	if err != nil {
		return Claimed{}, err
	}
	defer func() { release(ctx, out.Position) }()
	plan, usage, err := p.Plan(ctx, accountID)
	if err != nil {
		return Claimed{}, err
	}
	var st project.State
	res, err := p.exec.Execute(ctx, commandID, project.Stream(projectID), func(s Stream) ([]events.Event, error) {
		st = project.Replay(s.Events)
		return project.Claim(st, tokenValid(st), accountID, plan, usage, p.now().UTC())
	})
	if err != nil {
		return Claimed{}, err
	}
	out = Claimed{ProjectID: projectID, Slug: st.Settings.Slug, Position: res.Position}
	if ev, ok := firstOf[events.ProjectClaimed](res.Events); ok {
		out.ExpiresAt = ev.ExpiresAt
	}
	return out, nil
}

// Expire records the expiry of a project whose time has come (actor system:expiry); a temporary
// project is purged with it and its slug released. Running it twice, or on several instances at
// once, appends once: the command ID is derived from the project and its expiry time.
func (p *Projects) Expire(ctx context.Context, projectID string, expiresAt time.Time) (bool, error) {
	md := events.MetadataFrom(ctx)
	md.Actor = events.SystemActor("expiry")
	ctx = events.WithMetadata(ctx, md)
	commandID := uuid.NewSHA1(expiryNamespace, []byte(projectID+"@"+expiresAt.UTC().Format(time.RFC3339Nano)))
	res, err := p.exec.Execute(ctx, commandID, project.Stream(projectID), func(s Stream) ([]events.Event, error) {
		return project.Expire(project.Replay(s.Events), p.now().UTC()), nil
	})
	if err != nil {
		return false, err
	}
	if del, ok := firstOf[events.ProjectDeleted](res.Events); ok {
		p.release(ctx, commandID, projectID, del.Slug, p.now().UTC())
	}
	return len(res.Events) > 0 && !res.Replayed, nil
}

var expiryNamespace = uuid.MustParse("0b6f3c52-8f7e-4b8a-a1f4-6a9d2c7e5b31")

// PrecheckPush applies the gates of a push (owner, plan, archived, expired) before its upload is
// received; Push checks them again with the upload.
func (p *Projects) PrecheckPush(ctx context.Context, accountID, projectID string) error {
	if uuid.Validate(projectID) != nil {
		return project.ErrNotFound
	}
	plan, usage, err := p.Plan(ctx, accountID)
	if err != nil {
		return err
	}
	s, err := p.state(ctx, projectID)
	if err != nil {
		return err
	}
	_, err = project.Push(s, accountID, plan, project.Usage{StorageBytes: usage.StorageBytes}, events.Deployment{}, p.now().UTC())
	return err
}

// Move puts a project into workspace to ("" = the owner's personal scope) on behalf of its owner;
// the workspace process manager calls it (actor system:<name> in ctx) when a workspace is deleted.
// Moving a project where it already is appends nothing.
func (p *Projects) Move(ctx context.Context, commandID uuid.UUID, ownerID, projectID, to string) (events.Position, error) {
	return p.simple(ctx, commandID, projectID, func(s project.State, now time.Time) ([]events.Event, error) {
		return project.Move(s, ownerID, to, now)
	})
}
