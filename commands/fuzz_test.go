package commands

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/litehost/litehost/domain"
	"github.com/litehost/litehost/domain/customdomain"
	"github.com/litehost/litehost/domain/otp"
	"github.com/litehost/litehost/domain/project"
	"github.com/litehost/litehost/domain/slug"
	"github.com/litehost/litehost/domain/workspace"
	"github.com/litehost/litehost/events"
)

// The JSON write bodies, fuzzed at their decoding functions: each input is a request body, and
// whatever it holds, the answer is a decoded value or a client error (400 for what is not the
// JSON the route takes, 422 domain.Invalid naming only fields of the body), never a panic or an
// error the error middleware would answer 500. Seeds are in testdata/fuzz/<FuzzName>.

// fuzzEngine is shared by every input: a new engine per input would cost more than the decoding.
var fuzzEngine = func() *gin.Engine {
	gin.SetMode(gin.TestMode)
	return gin.New()
}()

// bodyContext is a gin context whose request carries body, as the routes receive it.
func bodyContext(body []byte) *gin.Context {
	c := gin.CreateTestContextOnly(httptest.NewRecorder(), fuzzEngine)
	c.Request = httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	c.Request.Header.Set("Content-Type", "application/json")
	return c
}

// checkClientError fails unless err is a 4xx HTTPError or a domain.Invalid whose fields are
// among fields (the body's own field names, or what the route documents).
func checkClientError(t *testing.T, err error, fields func(string) bool) {
	t.Helper()
	var (
		he  *HTTPError
		inv domain.Invalid
	)
	switch {
	case errors.As(err, &he):
		if he.Status < 400 || he.Status > 499 || he.Code == "" {
			t.Fatalf("%d %s: %v", he.Status, he.Code, err)
		}
	case errors.As(err, &inv):
		if len(inv) == 0 {
			t.Fatal("an empty domain.Invalid")
		}
		for k, msg := range inv {
			if !fields(k) || msg == "" {
				t.Fatalf("validation error on field %q (%q), which is not one of the body's", k, msg)
			}
		}
	default:
		t.Fatalf("bad input produced an unclassified error (a 500): %v", err)
	}
}

func oneOf(names ...string) func(string) bool {
	return func(k string) bool {
		for _, n := range names {
			if k == n {
				return true
			}
		}
		return false
	}
}

// FuzzOTPBody decodes the body of POST /v1/auth/otp/request and /verify: an accepted body names
// exactly one identifier, normalised (a second normalisation changes nothing), and a known
// purpose; a refused one is 400.
func FuzzOTPBody(f *testing.F) {
	h := &OTP{cfg: OTPConfig{Channels: []string{otp.ChannelEmail, otp.ChannelPhone}}}
	f.Fuzz(func(t *testing.T, body []byte) {
		b, id, purpose, err := h.parseOTPBody(bodyContext(body))
		if err != nil {
			var he *HTTPError
			if !errors.As(err, &he) || he.Status != http.StatusBadRequest {
				t.Fatalf("refused with %v, want a 400", err)
			}
			return
		}
		if (b.Email == nil) == (b.Phone == nil) {
			t.Fatalf("accepted a body with email %v and phone %v", b.Email, b.Phone)
		}
		var again string
		switch id.Kind {
		case IdentifierEmail:
			again, err = otp.NormalizeEmail(id.Value)
		case IdentifierPhone:
			again, err = otp.NormalizePhone(id.Value)
		default:
			t.Fatalf("identifier kind %q", id.Kind)
		}
		if err != nil || again != id.Value {
			t.Fatalf("identifier %q normalises to %q, %v", id.Value, again, err)
		}
		if purpose != otp.PurposeSignIn && purpose != otp.PurposeSignUp {
			t.Fatalf("purpose %q", purpose)
		}
	})
}

// fuzzNow is the fixed clock of the deciding targets.
var fuzzNow = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// FuzzPatchBody decodes PATCH /v1/projects/{id} and decides it on a live project of a paid
// account, as Projects.Update does once its lookups have passed (slug validity and password
// hashing are the handler's; a password stands in for its hash here). Properties: decoding is a
// normalisation (re-encoding what was decoded and decoding again gives the same patch), errors
// name only fields of the body, and an accepted patch is a fixpoint (applying it again to the
// result changes no setting and moves nothing).
func FuzzPatchBody(f *testing.F) {
	plan := project.Plan{Paid: true, MaxProjects: -1, MaxStorageBytes: -1, MaxFiles: -1}
	base := project.State{ID: "p1", Exists: true, OwnerID: "acc", Settings: events.ProjectSettings{
		Title: "Site", Slug: "site", Status: project.StatusPublic, Access: project.AccessPublic}}
	f.Fuzz(func(t *testing.T, body []byte) {
		var raw map[string]json.RawMessage
		if err := decodeJSON(bodyContext(body), &raw); err != nil {
			checkClientError(t, err, oneOf())
			return
		}
		inBody := func(k string) bool { _, ok := raw[k]; return ok }
		in, err := parsePatch(raw)
		if err != nil {
			checkClientError(t, err, inBody)
			return
		}
		again, err := parsePatch(encodePatch(t, in))
		if err != nil || !reflect.DeepEqual(again, in) {
			t.Fatalf("patch %+v re-encoded decodes to %+v, %v", in, again, err)
		}
		patch := in.Patch
		if patch.Slug != nil && slug.Validate(*patch.Slug) != "" {
			return // Update answers 422 on slug
		}
		if in.Password.Set {
			patch.Password = in.Password
		}
		evs, err := project.UpdateSettings(base, "acc", plan, patch, fuzzNow)
		if err != nil {
			// A rule may name a related field ("password" for password access without one).
			checkClientError(t, err, oneOf(patchFields...))
			return
		}
		next := replay(base, evs)
		s := next.Settings
		if n := utf8.RuneCountInString(s.Title); n == 0 || n > project.MaxTitle || s.Title != strings.TrimSpace(s.Title) {
			t.Fatalf("accepted title %q", s.Title)
		}
		if s.Status != project.StatusPublic && s.Status != project.StatusPrivate {
			t.Fatalf("accepted status %q", s.Status)
		}
		if (s.Access == project.AccessPassword) != (s.PasswordHash != "") {
			t.Fatalf("access %q with password hash %q", s.Access, s.PasswordHash)
		}
		evs2, err := project.UpdateSettings(next, "acc", plan, patch, fuzzNow)
		if err != nil {
			t.Fatalf("the accepted patch applied again: %v", err)
		}
		if after := replay(next, evs2); !reflect.DeepEqual(after.Settings, s) || after.WorkspaceID != next.WorkspaceID {
			t.Fatalf("the patch is no fixpoint: %+v then %+v", s, after.Settings)
		}
	})
}

func replay(s project.State, evs []events.Event) project.State {
	for _, e := range evs {
		s = project.Evolve(s, e)
	}
	return s
}

// patchFields are the documented fields of a PATCH body.
var patchFields = []string{"title", "slug", "domainId", "status", "access", "password", "noIndex", "disableDownloads",
	"pageTitle", "metaDescription", "expiresIn", "analyticsEnabled", "workspaceId"}

// encodePatch writes in back as the JSON fields of a PATCH body.
func encodePatch(t *testing.T, in PatchInput) map[string]json.RawMessage {
	t.Helper()
	out := map[string]json.RawMessage{}
	put := func(k string, v any) {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		out[k] = b
	}
	putPtr := func(k string, v any, set bool) {
		if set {
			put(k, v)
		}
	}
	nullable := func(k string, n project.Nullable[string]) { putPtr(k, n.Value, n.Set) }
	p := in.Patch
	putPtr("title", p.Title, p.Title != nil)
	putPtr("slug", p.Slug, p.Slug != nil)
	nullable("domainId", p.DomainID)
	putPtr("status", p.Status, p.Status != nil)
	putPtr("access", p.Access, p.Access != nil)
	nullable("password", in.Password)
	putPtr("noIndex", p.NoIndex, p.NoIndex != nil)
	putPtr("disableDownloads", p.DisableDownloads, p.DisableDownloads != nil)
	nullable("pageTitle", p.PageTitle)
	nullable("metaDescription", p.MetaDescription)
	putPtr("expiresIn", p.ExpiresIn, p.ExpiresIn != nil)
	putPtr("analyticsEnabled", p.AnalyticsEnabled, p.AnalyticsEnabled != nil)
	nullable("workspaceId", p.WorkspaceID)
	return out
}

// FuzzWorkspaceBody decodes POST /v1/workspaces and PATCH /v1/workspaces/{id} and judges the
// name: an accepted name is trimmed, 1 to 255 characters of valid UTF-8, and normalises to
// itself.
func FuzzWorkspaceBody(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		raw, err := nameBody(bodyContext(body))
		if err != nil {
			checkClientError(t, err, oneOf("name"))
			return
		}
		name, err := workspace.Name(raw)
		if err != nil {
			checkClientError(t, err, oneOf("name"))
			return
		}
		if n := utf8.RuneCountInString(name); n == 0 || n > workspace.MaxName || !utf8.ValidString(name) || name != strings.TrimSpace(raw) {
			t.Fatalf("accepted name %q from %q", name, raw)
		}
		if again, err := workspace.Name(name); err != nil || again != name {
			t.Fatalf("Name(%q) = %q, %v; not idempotent", name, again, err)
		}
	})
}

// FuzzDomainBody decodes POST /v1/domains and normalises the host name as Domains.Add does:
// an accepted host is lowercase, trimmed, and normalises to itself.
func FuzzDomainBody(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		raw, err := hostBody(bodyContext(body))
		if err != nil {
			checkClientError(t, err, oneOf("domain"))
			return
		}
		h, err := customdomain.Hostname("domain", raw)
		if err != nil {
			checkClientError(t, err, oneOf("domain"))
			return
		}
		if h != strings.ToLower(strings.TrimSpace(raw)) {
			t.Fatalf("host %q from %q", h, raw)
		}
		if again, err := customdomain.Hostname("domain", h); err != nil || again != h {
			t.Fatalf("Hostname(%q) = %q, %v; not idempotent", h, again, err)
		}
	})
}

// FuzzAuthBody decodes POST /v1/auth/refresh (a body is required) and /revoke (it is not): a
// refusal is 400, or 422 on refreshToken, the one field.
func FuzzAuthBody(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte, required bool) {
		var b refreshBody
		if err := decodeAuthBody(bodyContext(body), &b, required); err != nil {
			checkClientError(t, err, oneOf("refreshToken"))
			return
		}
		if required && len(bytes.TrimSpace(body)) == 0 {
			t.Fatal("accepted an empty body where one is required")
		}
	})
}
