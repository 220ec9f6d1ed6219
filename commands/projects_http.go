package commands

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/litehost/litehost/domain"
	"github.com/litehost/litehost/domain/project"
	"github.com/litehost/litehost/events"
	"github.com/litehost/litehost/internal/clientip"
)

// Receiver reads a multipart upload (streamed, with the limits of DESIGN §7 and the ZIP detection
// of spec §3), checks every upload rule and spools its files, but stores nothing: it returns the
// upload's summary (with the manifest hash it will have) whose Store writes the files, the
// request's scalar form fields, and done, which removes the spooled files and must be called once
// the write is over, stored or not. temp selects the temporary-upload limits (5 files, 2 MB).
type Receiver interface {
	Receive(c *gin.Context, temp bool) (up Upload, fields map[string]string, done func() error, err error)
}

// receive calls the Receiver; the caller defers the returned cleanup. A cleanup failure is only
// logged: the answer is already decided, and the blob sweeper removes a leftover spool later.
func (r *ProjectRoutes) receive(c *gin.Context, temp bool) (Upload, map[string]string, func(), error) {
	up, fields, done, err := r.recv.Receive(c, temp)
	if err != nil {
		return Upload{}, nil, func() {}, err
	}
	return up, fields, func() {
		if err := done(); err != nil {
			r.p.logger.Warn("remove upload spool", "error", err)
		}
	}, nil
}

// Temporary uploads per client IP (spec §1.6), shared across instances through the Limiter.
const (
	tempPerMinute = 3
	tempPerHour   = 5
)

// ProjectRoutes are the write routes of spec §4.4 plus rollback.
type ProjectRoutes struct {
	p        *Projects
	recv     Receiver
	limiter  *Limiter
	waiter   Waiter
	siteURL  func(slug string) string
	claimURL func(token string) string
	now      func() time.Time
}

// NewProjectRoutes returns the project write routes. siteURL renders a site's address from its
// slug; claimURL the browser claim page of a token (nil: no claimUrl in answers).
func NewProjectRoutes(p *Projects, recv Receiver, limiter *Limiter, waiter Waiter, siteURL, claimURL func(string) string) *ProjectRoutes {
	return &ProjectRoutes{p: p, recv: recv, limiter: limiter, waiter: waiter, siteURL: siteURL, claimURL: claimURL, now: p.now}
}

// Register mounts the routes on r (the /v1 group): POST /projects/temp takes no key, every
// other route runs behind require (the bearer-key middleware).
func (r *ProjectRoutes) Register(g gin.IRoutes, require gin.HandlerFunc) {
	g.POST("/projects/temp", r.createTemp)
	g.POST("/projects", require, r.create)
	g.PUT("/projects/:id", require, r.push)
	g.PATCH("/projects/:id", require, r.update)
	g.DELETE("/projects/:id", require, r.delete)
	g.POST("/projects/:id/archive", require, r.archive)
	g.POST("/projects/:id/unarchive", require, r.unarchive)
	g.POST("/projects/:id/rollback", require, r.rollback)
	g.POST("/projects/claim/:token", require, r.claim)
}

// fail records err for the error middleware. The free-tier rule carries requiredTier in its body
// (spec §5.8), which a bare rule error cannot.
func fail(c *gin.Context, err error) {
	if errors.Is(err, project.ErrFreeTier) {
		err = &HTTPError{Status: http.StatusForbidden, Code: "FREE_TIER_RESTRICTED", Message: string(project.ErrFreeTier),
			Details: map[string]any{"requiredTier": project.RequiredTier}}
	}
	_ = c.Error(err)
}

// caller returns the authenticated account and a context whose events name it as their actor.
func caller(c *gin.Context) (string, *gin.Context, bool) {
	p, ok := events.PrincipalFrom(c.Request.Context())
	if !ok {
		_ = c.Error(&HTTPError{Status: http.StatusUnauthorized, Code: "API_KEY_MISSING", Message: "an API key is required"})
		return "", c, false
	}
	md := events.MetadataFrom(c.Request.Context())
	if md.Actor == "" || md.Actor == events.ActorAnonymous {
		md.Actor = events.AccountActor(p.AccountID)
		c.Request = c.Request.WithContext(events.WithMetadata(c.Request.Context(), md))
	}
	return p.AccountID, c, true
}

func ts(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func tsPtr(t *time.Time) any {
	if t == nil {
		return nil
	}
	return ts(*t)
}

func limitBlock(used, limit int64) gin.H {
	return gin.H{"used": used, "limit": limit, "unlimited": limit < 0}
}

func (r *ProjectRoutes) create(c *gin.Context) {
	accountID, c, ok := caller(c)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	if err := r.p.PrecheckCreate(ctx, accountID); err != nil {
		fail(c, err)
		return
	}
	up, fields, done, err := r.receive(c, false)
	defer done()
	if err != nil {
		fail(c, err)
		return
	}
	in := CreateInput{
		Title: strings.TrimSpace(fields["title"]), Slug: fields["slug"], DomainID: fields["domainId"],
		WorkspaceID: fields["workspaceId"], Access: fields["access"], ExpiresIn: fields["expiresIn"], Upload: up,
	}
	if pw, ok := fields["password"]; ok {
		in.Password = &pw
	}
	res, err := r.p.Create(ctx, CommandIDFrom(ctx), accountID, in)
	if err != nil {
		fail(c, err)
		return
	}
	Reply(c, r.waiter, res.Position, http.StatusCreated, gin.H{
		"projectId": res.ProjectID, "url": r.siteURL(res.Settings.Slug), "title": res.Settings.Title,
		"type": res.Type, "slug": res.Settings.Slug, "expiresAt": tsPtr(res.Settings.ExpiresAt),
		"createdAt": ts(res.CreatedAt),
		"quota": gin.H{
			"projects": limitBlock(res.Usage.ActiveProjects, res.Plan.MaxProjects),
			"storage": gin.H{"usedBytes": res.Usage.StorageBytes, "limitBytes": res.Plan.MaxStorageBytes,
				"unlimited": res.Plan.MaxStorageBytes < 0},
		},
	})
}

func (r *ProjectRoutes) createTemp(c *gin.Context) {
	ctx := c.Request.Context()
	ip := events.MetadataFrom(ctx).ClientIP
	if ip == "" {
		ip = c.ClientIP()
	}
	// One IPv6 client owns a whole /64: count it as one client, not 2^64.
	client := clientip.Group(ip)
	now := r.now()
	for _, l := range []struct {
		n      int
		window time.Duration
		name   string
	}{{tempPerMinute, time.Minute, "temp-upload-minute:"}, {tempPerHour, time.Hour, "temp-upload-hour:"}} {
		d, err := r.limiter.Take(ctx, l.name+client, l.n, l.window, now)
		if err != nil {
			fail(c, err)
			return
		}
		if err := d.Err("Too many temporary uploads from your address; try again later."); err != nil {
			fail(c, err)
			return
		}
	}
	up, _, done, err := r.receive(c, true)
	defer done()
	if err != nil {
		fail(c, err)
		return
	}
	res, err := r.p.CreateTemp(ctx, CommandIDFrom(ctx), up)
	if err != nil {
		fail(c, err)
		return
	}
	data := gin.H{"projectId": res.ProjectID, "slug": res.Slug, "url": r.siteURL(res.Slug),
		"claimToken": res.ClaimToken, "expiresAt": ts(res.ExpiresAt)}
	if r.claimURL != nil {
		data["claimUrl"] = r.claimURL(res.ClaimToken)
	}
	Reply(c, r.waiter, res.Position, http.StatusOK, data)
}

func (r *ProjectRoutes) push(c *gin.Context) {
	accountID, c, ok := caller(c)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	id := c.Param("id")
	// The gates (owner, plan, archived) are checked before the upload is received: a refused push
	// should not cost its upload.
	if err := r.p.PrecheckPush(ctx, accountID, id); err != nil {
		fail(c, err)
		return
	}
	up, _, done, err := r.receive(c, false)
	defer done()
	if err != nil {
		fail(c, err)
		return
	}
	res, err := r.p.Push(ctx, CommandIDFrom(ctx), accountID, id, up)
	if err != nil {
		fail(c, err)
		return
	}
	Reply(c, r.waiter, res.Position, http.StatusOK, gin.H{"deploymentId": res.DeploymentID, "url": r.siteURL(res.Slug)})
}

func (r *ProjectRoutes) rollback(c *gin.Context) {
	accountID, c, ok := caller(c)
	if !ok {
		return
	}
	var body struct {
		DeploymentID string `json:"deploymentId"`
	}
	if err := decodeJSON(c, &body); err != nil {
		fail(c, err)
		return
	}
	if body.DeploymentID == "" {
		fail(c, domain.Invalid{"deploymentId": "is required"})
		return
	}
	ctx := c.Request.Context()
	res, err := r.p.Rollback(ctx, CommandIDFrom(ctx), accountID, c.Param("id"), body.DeploymentID)
	if err != nil {
		fail(c, err)
		return
	}
	Reply(c, r.waiter, res.Position, http.StatusOK, gin.H{"deploymentId": res.DeploymentID, "url": r.siteURL(res.Slug)})
}

// decodeJSON reads a JSON object body; anything that is not one is a 400.
func decodeJSON(c *gin.Context, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(c.Writer, c.Request.Body, 1<<20))
	if err := dec.Decode(v); err != nil {
		return BadRequest("INVALID_JSON", "The body must be a JSON object.")
	}
	return nil
}

func (r *ProjectRoutes) update(c *gin.Context) {
	accountID, c, ok := caller(c)
	if !ok {
		return
	}
	var raw map[string]json.RawMessage
	if err := decodeJSON(c, &raw); err != nil {
		fail(c, err)
		return
	}
	in, err := parsePatch(raw)
	if err != nil {
		fail(c, err)
		return
	}
	ctx := c.Request.Context()
	pos, err := r.p.Update(ctx, CommandIDFrom(ctx), accountID, c.Param("id"), in)
	if err != nil {
		fail(c, err)
		return
	}
	Reply(c, r.waiter, pos, http.StatusOK, gin.H{"updated": true})
}

// parsePatch turns a PATCH body into a PatchInput, telling absent fields from nulls. Wrong types
// and unknown fields are 422 with every problem listed.
func parsePatch(raw map[string]json.RawMessage) (PatchInput, error) {
	var in PatchInput
	bad := domain.Invalid{}
	isNull := func(v json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(v), []byte("null")) }
	str := func(k string, v json.RawMessage) *string {
		var s string
		if err := json.Unmarshal(v, &s); err != nil || isNull(v) {
			bad[k] = "must be a string"
			return nil
		}
		return &s
	}
	boolean := func(k string, v json.RawMessage) *bool {
		var b bool
		if err := json.Unmarshal(v, &b); err != nil || isNull(v) {
			bad[k] = "must be a boolean"
			return nil
		}
		return &b
	}
	nullable := func(k string, v json.RawMessage) project.Nullable[string] {
		if isNull(v) {
			return project.Nullable[string]{Set: true}
		}
		s := str(k, v)
		return project.Nullable[string]{Set: s != nil, Value: s}
	}
	for k, v := range raw {
		switch k {
		case "title":
			in.Title = str(k, v)
			if in.Title != nil {
				t := strings.TrimSpace(*in.Title)
				in.Title = &t
			}
		case "slug":
			in.Slug = str(k, v)
		case "domainId":
			in.DomainID = nullable(k, v)
		case "status":
			in.Status = str(k, v)
		case "access":
			in.Access = str(k, v)
		case "password":
			in.Password = nullable(k, v)
		case "noIndex":
			in.NoIndex = boolean(k, v)
		case "disableDownloads":
			in.DisableDownloads = boolean(k, v)
		case "pageTitle":
			in.PageTitle = nullable(k, v)
		case "metaDescription":
			in.MetaDescription = nullable(k, v)
		case "expiresIn":
			in.ExpiresIn = str(k, v)
		case "analyticsEnabled":
			in.AnalyticsEnabled = boolean(k, v)
		case "workspaceId":
			in.WorkspaceID = nullable(k, v)
		default:
			bad[k] = "is not a project setting"
		}
	}
	if len(bad) > 0 {
		return in, bad
	}
	return in, nil
}

func (r *ProjectRoutes) delete(c *gin.Context) {
	accountID, c, ok := caller(c)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	pos, err := r.p.Delete(ctx, CommandIDFrom(ctx), accountID, c.Param("id"))
	if err != nil {
		fail(c, err)
		return
	}
	Reply(c, r.waiter, pos, http.StatusOK, gin.H{"deleted": true})
}

func (r *ProjectRoutes) archive(c *gin.Context) {
	accountID, c, ok := caller(c)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	pos, err := r.p.Archive(ctx, CommandIDFrom(ctx), accountID, c.Param("id"))
	if err != nil {
		fail(c, err)
		return
	}
	Reply(c, r.waiter, pos, http.StatusOK, gin.H{"archived": true})
}

func (r *ProjectRoutes) unarchive(c *gin.Context) {
	accountID, c, ok := caller(c)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	pos, err := r.p.Unarchive(ctx, CommandIDFrom(ctx), accountID, c.Param("id"))
	if err != nil {
		fail(c, err)
		return
	}
	Reply(c, r.waiter, pos, http.StatusOK, gin.H{"archived": false})
}

func (r *ProjectRoutes) claim(c *gin.Context) {
	accountID, c, ok := caller(c)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	res, err := r.p.Claim(ctx, CommandIDFrom(ctx), accountID, c.Param("token"))
	if err != nil {
		fail(c, err)
		return
	}
	Reply(c, r.waiter, res.Position, http.StatusOK, gin.H{"projectId": res.ProjectID, "slug": res.Slug,
		"url": r.siteURL(res.Slug), "expiresAt": tsPtr(res.ExpiresAt)})
}

// SiteURL returns the function that renders a site address: scheme://<slug>.<sitesDomain>[:port].
// port 0, 80 with http and 443 with https are left out.
func SiteURL(scheme, sitesDomain string, port int) func(slug string) string {
	suffix := "." + sitesDomain
	if port != 0 && !(scheme == "http" && port == 80) && !(scheme == "https" && port == 443) {
		suffix += ":" + strconv.Itoa(port)
	}
	return func(slug string) string { return scheme + "://" + slug + suffix }
}
