package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/litehost/litehost/domain/project"
	"github.com/litehost/litehost/events"
	"github.com/litehost/litehost/readapi"
)

// auditCmd builds `litehost audit project <id>` (DESIGN §9): replay a project's stream with the
// pure domain fold and print its deployment history as of a time, with who did what from where;
// --verify compares the replay with the read model.
func auditCmd(getenv func(string) string, stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Replay streams from the event log for audit reviews"}
	var (
		asOf   string
		verify bool
		asJSON bool
	)
	proj := &cobra.Command{
		Use:   "project <id>",
		Short: "Print a project's deployment history and lifecycle as of a time, replayed from its events",
		Long: "Replays the stream project-<id> with the domain rules and prints every deployment (version,\n" +
			"id, active/ready, size, time, actor, client network) and every lifecycle event as of --as-of\n" +
			"(default: now). --verify compares the full replay with the read model (tables projects and\n" +
			"deployments) and exits non-zero listing every difference.",
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			id := args[0]
			if uuid.Validate(id) != nil {
				return fmt.Errorf("project id %q is not a UUID", id)
			}
			var at time.Time
			if asOf != "" {
				t, err := time.Parse(time.RFC3339, asOf)
				if err != nil {
					return fmt.Errorf("--as-of %q: want an RFC 3339 time such as 2026-04-09T14:23:00Z", asOf)
				}
				at = t.UTC()
			}
			return withApp(c.Context(), getenv, stderr, func(ctx context.Context, a *app) error {
				// Without --as-of the whole stream counts: cutting at this machine's clock
				// would hide events stamped by an instance whose clock runs ahead.
				recs, err := readProjectStream(ctx, a.store, id)
				if err != nil {
					return err
				}
				rep, err := replayAudit(id, recs, at)
				if err != nil {
					return err
				}
				if verify {
					full, err := replayAudit(id, recs, time.Time{})
					if err != nil {
						return err
					}
					diffs, err := verifyReadModel(ctx, a.pool, full)
					if err != nil {
						return err
					}
					rep.Verify = &auditVerify{OK: len(diffs) == 0, Differences: diffs}
				}
				if err := writeAudit(stdout, rep, asJSON); err != nil {
					return err
				}
				if rep.Verify != nil && !rep.Verify.OK {
					return fmt.Errorf("read model differs from the event log in %d place(s) (a projector still catching up shows here too: see `litehost projections status`)", len(rep.Verify.Differences))
				}
				return nil
			})
		},
	}
	proj.Flags().StringVar(&asOf, "as-of", "", "show the project as it stood at this RFC 3339 time (default now)")
	proj.Flags().BoolVar(&verify, "verify", false, "compare the replayed history (now) with the read model; exit non-zero on any difference")
	proj.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.AddCommand(proj)
	return cmd
}

// streamReader is the part of the event store the audit reads.
type streamReader interface {
	ReadStream(ctx context.Context, stream string, from uint64, max int) ([]events.RecordedEvent, error)
}

// readProjectStream reads the whole stream of project id.
func readProjectStream(ctx context.Context, store streamReader, id string) ([]events.RecordedEvent, error) {
	const page = 500
	var out []events.RecordedEvent
	for from := uint64(0); ; {
		recs, err := store.ReadStream(ctx, project.Stream(id), from, page)
		if errors.Is(err, events.ErrStreamNotFound) {
			return nil, fmt.Errorf("no project %s in the event log", id)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, recs...)
		if len(recs) < page {
			return out, nil
		}
		from = recs[len(recs)-1].Version + 1
	}
}

// auditReport is what `audit project` prints (--json gives it as is).
type auditReport struct {
	ProjectID   string            `json:"projectId"`
	AsOf        *time.Time        `json:"asOf"` // nil: the whole stream
	Title       string            `json:"title"`
	Slug        string            `json:"slug"`
	OwnerID     string            `json:"ownerId"`
	WorkspaceID string            `json:"workspaceId"`
	State       string            `json:"state"` // live, temporary, archived, expired or deleted
	Deployments []auditDeployment `json:"deployments"`
	Events      []auditEntry      `json:"events"`
	Verify      *auditVerify      `json:"verify,omitempty"`

	// What the read model is compared with; kept out of the output.
	state      project.State
	archivedAt *time.Time
	expiredAt  *time.Time
	updatedAt  time.Time
}

// auditDeployment is one deployment and the request that made it.
type auditDeployment struct {
	Version       int       `json:"version"`
	DeploymentID  string    `json:"deploymentId"`
	Status        string    `json:"status"` // active or ready
	Type          string    `json:"type"`
	IndexPath     string    `json:"indexPath,omitempty"`
	FileCount     int       `json:"fileCount"`
	SizeBytes     int64     `json:"sizeBytes"`
	ManifestHash  string    `json:"manifestHash"`
	RollbackOf    string    `json:"rollbackOf,omitempty"`
	CreatedAt     time.Time `json:"createdAt"`
	StreamVersion uint64    `json:"streamVersion"`
	Who           auditWho  `json:"who"`
}

// auditEntry is one lifecycle event (everything but pushes and rollbacks).
type auditEntry struct {
	StreamVersion uint64    `json:"streamVersion"`
	EventID       string    `json:"eventId"`
	Type          string    `json:"type"`
	At            time.Time `json:"at"`
	Detail        string    `json:"detail,omitempty"`
	Who           auditWho  `json:"who"`
}

// auditWho is who did it and from where, from the event's metadata: the log keeps the client's
// network (IPv4 /24, IPv6 /48), never its address.
type auditWho struct {
	Actor         string `json:"actor"`
	ClientNetwork string `json:"clientNetwork,omitempty"`
	UserAgent     string `json:"userAgent,omitempty"`
	RequestID     string `json:"requestId,omitempty"`
	CorrelationID string `json:"correlationId,omitempty"`
}

// auditVerify is the outcome of --verify.
type auditVerify struct {
	OK          bool     `json:"ok"`
	Differences []string `json:"differences"`
}

// eventAt is the business time an event carries: the time the deployments' createdAt and the
// read model use, so --as-of agrees with them.
func eventAt(ev events.Event, rec events.RecordedEvent) time.Time {
	switch e := ev.(type) {
	case events.ProjectCreated:
		return e.At
	case events.ProjectVersionPushed:
		return e.At
	case events.ProjectSettingsUpdated:
		return e.At
	case events.ProjectArchived:
		return e.At
	case events.ProjectUnarchived:
		return e.At
	case events.ProjectClaimed:
		return e.At
	case events.ProjectExpired:
		return e.At
	case events.ProjectMoved:
		return e.At
	case events.ProjectDeleted:
		return e.At
	}
	return rec.CreatedAt
}

// replayAudit folds recs with project.Evolve up to asOf (zero: all of them). The stream is a
// prefix-closed history, so the replay stops at the first event after asOf rather than skipping
// it: a later event's successors never apply without it.
func replayAudit(id string, recs []events.RecordedEvent, asOf time.Time) (auditReport, error) {
	rep := auditReport{ProjectID: id, Deployments: []auditDeployment{}, Events: []auditEntry{}}
	if !asOf.IsZero() {
		rep.AsOf = &asOf
	}
	var deps []auditDeployment
	for _, rec := range recs {
		ev, err := events.Decode(rec.Type, rec.Data)
		if err != nil {
			return rep, fmt.Errorf("%s version %d: %w", project.Stream(id), rec.Version, err)
		}
		at := eventAt(ev, rec)
		if !asOf.IsZero() && at.After(asOf) {
			break
		}
		md, err := events.ParseMetadata(rec.Metadata)
		if err != nil {
			return rep, fmt.Errorf("%s version %d: %w", project.Stream(id), rec.Version, err)
		}
		who := auditWho{Actor: md.Actor, ClientNetwork: md.ClientNetwork, UserAgent: md.UserAgent, RequestID: md.RequestID,
			CorrelationID: md.CorrelationID}
		rep.state = project.Evolve(rep.state, ev)
		rep.updatedAt = at
		entry := auditEntry{StreamVersion: rec.Version, EventID: rec.ID.String(), Type: rec.Type, At: at, Who: who}
		deployed := func(d events.Deployment) {
			deps = append(deps, auditDeployment{Version: d.Version, DeploymentID: d.DeploymentID, Type: d.Type,
				IndexPath: d.IndexPath, FileCount: d.FileCount, SizeBytes: d.SizeBytes, ManifestHash: d.ManifestHash, RollbackOf: d.RollbackOf,
				CreatedAt: at, StreamVersion: rec.Version, Who: who})
		}
		switch e := ev.(type) {
		case events.ProjectCreated:
			deployed(e.Deployment)
			entry.Detail = fmt.Sprintf("version %d, slug %s", e.Deployment.Version, e.Settings.Slug)
			if e.Temporary {
				entry.Detail += ", temporary"
			}
			rep.archivedAt, rep.expiredAt = nil, nil
		case events.ProjectVersionPushed:
			deployed(e.Deployment)
			continue // a deployment, listed above, not a lifecycle event
		case events.ProjectSettingsUpdated:
			entry.Detail = "changed " + strings.Join(e.Changed, ", ")
		case events.ProjectArchived:
			if rep.archivedAt == nil {
				rep.archivedAt = &at
			}
		case events.ProjectUnarchived:
			rep.archivedAt = nil
		case events.ProjectClaimed:
			entry.Detail = "owner " + e.OwnerID
		case events.ProjectExpired:
			if rep.expiredAt == nil {
				rep.expiredAt = &at
			}
		case events.ProjectMoved:
			entry.Detail = "workspace " + orNone(e.FromWorkspaceID) + " → " + orNone(e.ToWorkspaceID)
		case events.ProjectDeleted:
			entry.Detail = "slug " + e.Slug + " released"
		}
		rep.Events = append(rep.Events, entry)
	}
	if len(rep.Events) == 0 {
		return rep, fmt.Errorf("project %s did not exist yet at %s", id, asOf.Format(time.RFC3339))
	}
	s := rep.state
	rep.Title, rep.Slug, rep.OwnerID, rep.WorkspaceID = s.Settings.Title, s.Settings.Slug, s.OwnerID, s.WorkspaceID
	switch {
	case s.Deleted:
		rep.State = "deleted"
	case s.Expired:
		rep.State = "expired"
	case s.Archived:
		rep.State = "archived"
	case s.Temporary:
		rep.State = "temporary"
	default:
		rep.State = "live"
	}
	// Newest first, like GET /v1/projects/{id}/status.
	for _, d := range slices.Backward(deps) {
		d.Status = project.DeploymentReady
		if d.DeploymentID == s.ActiveID {
			d.Status = project.DeploymentActive
		}
		rep.Deployments = append(rep.Deployments, d)
	}
	return rep, nil
}

func orNone(s string) string {
	if s == "" {
		return "(personal)"
	}
	return s
}

func writeAudit(w io.Writer, rep auditReport, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	const ts = "2006-01-02T15:04:05.000Z"
	when := "now"
	if rep.AsOf != nil {
		when = rep.AsOf.UTC().Format(ts)
	}
	fmt.Fprintf(w, "Project %s %q (slug %s) as of %s: %s\n", rep.ProjectID, rep.Title, rep.Slug, when, rep.State)
	fmt.Fprintf(w, "Owner: %s  Workspace: %s\n\n", orDash(rep.OwnerID), orNone(rep.WorkspaceID))

	err := writeTable(w, "DEPLOYMENTS (newest first)",
		"VERSION\tDEPLOYMENT\tSTATUS\tSIZE\tFILES\tCREATED\tACTOR\tFROM\tREQUEST\tROLLBACK OF", func(tw io.Writer) {
			for _, d := range rep.Deployments {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\n", d.Version, d.DeploymentID, d.Status, d.SizeBytes,
					d.FileCount, d.CreatedAt.UTC().Format(ts), orDash(d.Who.Actor), orDash(d.Who.ClientNetwork),
					orDash(d.Who.RequestID), orDash(d.RollbackOf))
			}
		})
	if err != nil {
		return err
	}
	err = writeTable(w, "\nLIFECYCLE (oldest first)",
		"STREAM VERSION\tAT\tEVENT\tACTOR\tFROM\tREQUEST\tDETAIL", func(tw io.Writer) {
			for _, e := range rep.Events {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", e.StreamVersion, e.At.UTC().Format(ts), e.Type,
					orDash(e.Who.Actor), orDash(e.Who.ClientNetwork), orDash(e.Who.RequestID), e.Detail)
			}
		})
	if err != nil {
		return err
	}

	if v := rep.Verify; v != nil {
		if v.OK {
			fmt.Fprintln(w, "\nVERIFY: the read model matches the event log")
		} else {
			fmt.Fprintf(w, "\nVERIFY: %d difference(s) between the read model and the event log\n", len(v.Differences))
			for _, d := range v.Differences {
				fmt.Fprintln(w, "  - "+d)
			}
		}
	}
	return nil
}

// writeTable prints title, then header and the lines rows writes, aligned in columns.
func writeTable(w io.Writer, title, header string, rows func(tw io.Writer)) error {
	fmt.Fprintln(w, title)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	rows(tw)
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// readModelProject is the row of table projects that the replay can predict.
type readModelProject struct {
	OwnerID            *string
	WorkspaceID        *string
	DomainID           *string
	Temporary          bool
	ClaimTokenHash     *string
	Title              string
	Slug               string
	Type               string
	Status             string
	Access             string
	PasswordHash       *string
	NoIndex            bool
	DisableDownloads   bool
	PageTitle          *string
	MetaDescription    *string
	AnalyticsEnabled   bool
	ExpiresAt          *time.Time
	ArchivedAt         *time.Time
	ExpiredAt          *time.Time
	ActiveDeploymentID string
	ManifestHash       string
	IndexPath          string
	FileCount          int
	SizeBytes          int64
	CreatedAt          time.Time
	UpdatedAt          time.Time
}

const auditProjectQuery = `SELECT owner_id::text AS owner_id, workspace_id::text AS workspace_id,
	domain_id::text AS domain_id, temporary, claim_token_hash, title, slug, type, status, access, password_hash,
	no_index, disable_downloads, page_title, meta_description, analytics_enabled, expires_at, archived_at,
	expired_at, active_deployment_id::text AS active_deployment_id, manifest_hash, index_path, file_count,
	size_bytes, created_at, updated_at
	FROM projects WHERE id = $1`

// readModelDeployment is a row of table deployments.
type readModelDeployment struct {
	DeploymentID string
	Version      int
	ManifestHash string
	Type         string
	IndexPath    string
	FileCount    int
	SizeBytes    int64
	RollbackOf   string
	CreatedAt    time.Time
}

const auditDeploymentsQuery = `SELECT deployment_id::text AS deployment_id, version, manifest_hash, type,
	index_path, file_count, size_bytes, COALESCE(rollback_of::text, '') AS rollback_of, created_at
	FROM deployments WHERE project_id = $1 ORDER BY version`

// verifyReadModel lists every difference between the full replay and the read model's rows for
// the project. Hashes are compared but never printed.
func verifyReadModel(ctx context.Context, db readapi.Querier, rep auditReport) ([]string, error) {
	s := rep.state
	got, err := readapi.QueryAll[readModelProject](ctx, db, "read projects", auditProjectQuery, s.ID)
	if err != nil {
		return nil, err
	}
	deps, err := readapi.QueryAll[readModelDeployment](ctx, db, "read deployments", auditDeploymentsQuery, s.ID)
	if err != nil {
		return nil, err
	}

	var diffs []string
	if s.Deleted {
		// The projector removes a deleted project with its history.
		if len(got) > 0 {
			diffs = append(diffs, "projects: row present, but the project was deleted")
		}
		for _, d := range deps {
			diffs = append(diffs, fmt.Sprintf("deployments[%s] (version %d): row present, but the project was deleted", d.DeploymentID, d.Version))
		}
		return diffs, nil
	}
	if len(got) == 0 {
		diffs = append(diffs, "projects: row missing")
	} else {
		diffs = append(diffs, diffProject(rep, got[0])...)
	}
	diffs = append(diffs, diffDeployments(rep, deps)...)
	return diffs, nil
}

// differ collects "<where>.<column>: read model X, log Y" lines.
type differ struct {
	where string
	out   []string
}

func (d *differ) check(column string, readModel, log any) {
	if readModel != log {
		d.out = append(d.out, fmt.Sprintf("%s.%s: read model %v, log %v", d.where, column, readModel, log))
	}
}

// secret compares values that must not be printed.
func (d *differ) secret(column string, readModel, log string) {
	if readModel != log {
		d.out = append(d.out, fmt.Sprintf("%s.%s: read model and log differ (value not shown)", d.where, column))
	}
}

// time compares instants at PostgreSQL's microsecond precision.
func (d *differ) time(column string, readModel, log *time.Time) {
	switch {
	case readModel == nil && log == nil:
	case readModel == nil || log == nil:
		d.check(column, fmtTime(readModel), fmtTime(log))
	case readModel.Sub(*log).Abs() >= time.Microsecond:
		d.check(column, fmtTime(readModel), fmtTime(log))
	}
}

func fmtTime(t *time.Time) string {
	if t == nil {
		return "null"
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func derefOr(s *string) string {
	if s == nil {
		return "null"
	}
	return strconv.Quote(*s)
}

func diffProject(rep auditReport, r readModelProject) []string {
	s, set, act := rep.state, rep.state.Settings, rep.state.Active()
	d := &differ{where: "projects"}
	d.check("owner_id", deref(r.OwnerID), s.OwnerID)
	d.check("workspace_id", deref(r.WorkspaceID), s.WorkspaceID)
	d.check("domain_id", deref(r.DomainID), set.DomainID)
	d.check("temporary", r.Temporary, s.Temporary)
	d.secret("claim_token_hash", deref(r.ClaimTokenHash), s.ClaimTokenHash)
	d.check("title", strconv.Quote(r.Title), strconv.Quote(set.Title))
	d.check("slug", r.Slug, set.Slug)
	d.check("status", r.Status, set.Status)
	d.check("access", r.Access, set.Access)
	d.secret("password_hash", deref(r.PasswordHash), set.PasswordHash)
	d.check("no_index", r.NoIndex, set.NoIndex)
	d.check("disable_downloads", r.DisableDownloads, set.DisableDownloads)
	d.check("page_title", derefOr(r.PageTitle), derefOr(set.PageTitle))
	d.check("meta_description", derefOr(r.MetaDescription), derefOr(set.MetaDescription))
	d.check("analytics_enabled", r.AnalyticsEnabled, set.AnalyticsEnabled)
	d.time("expires_at", r.ExpiresAt, set.ExpiresAt)
	d.time("archived_at", r.ArchivedAt, rep.archivedAt)
	d.time("expired_at", r.ExpiredAt, rep.expiredAt)
	d.check("active_deployment_id", r.ActiveDeploymentID, s.ActiveID)
	d.check("type", r.Type, act.Type)
	d.check("manifest_hash", r.ManifestHash, act.ManifestHash)
	d.check("index_path", r.IndexPath, act.IndexPath)
	d.check("file_count", r.FileCount, act.FileCount)
	d.check("size_bytes", r.SizeBytes, act.SizeBytes)
	d.time("created_at", &r.CreatedAt, &s.CreatedAt)
	d.time("updated_at", &r.UpdatedAt, &rep.updatedAt)
	return d.out
}

func diffDeployments(rep auditReport, rows []readModelDeployment) []string {
	byID := make(map[string]readModelDeployment, len(rows))
	for _, r := range rows {
		byID[r.DeploymentID] = r
	}
	var out []string
	// Oldest first, so the list reads in the order things happened.
	for _, want := range slices.Backward(rep.Deployments) {
		r, ok := byID[want.DeploymentID]
		if !ok {
			out = append(out, fmt.Sprintf("deployments[%s] (version %d): row missing", want.DeploymentID, want.Version))
			continue
		}
		delete(byID, want.DeploymentID)
		d := &differ{where: fmt.Sprintf("deployments[%s] (version %d)", want.DeploymentID, want.Version)}
		d.check("version", r.Version, want.Version)
		d.check("manifest_hash", r.ManifestHash, want.ManifestHash)
		d.check("type", r.Type, want.Type)
		d.check("index_path", r.IndexPath, want.IndexPath)
		d.check("file_count", r.FileCount, want.FileCount)
		d.check("size_bytes", r.SizeBytes, want.SizeBytes)
		d.check("rollback_of", orDash(r.RollbackOf), orDash(want.RollbackOf))
		d.time("created_at", &r.CreatedAt, &want.CreatedAt)
		out = append(out, d.out...)
	}
	extra := make([]readModelDeployment, 0, len(byID))
	for _, r := range byID {
		extra = append(extra, r)
	}
	slices.SortFunc(extra, func(a, b readModelDeployment) int { return a.Version - b.Version })
	for _, r := range extra {
		out = append(out, fmt.Sprintf("deployments[%s] (version %d): row present, but no such deployment in the log", r.DeploymentID, r.Version))
	}
	return out
}
