// Package schemas generates the event catalogue that analytics consumers code against
// (DESIGN §9): one JSON Schema per event type as stored (docs/schemas/<type>.json), one per
// public event type as it leaves the service (docs/schemas/public/<type>.json, the public
// contract of package events/public) and docs/events.md, all from the Go types and their doc
// comments.
//
// The files are checked in. TestCatalogueIsUpToDate regenerates them and fails when a checked-in
// file differs or an event type constant has no entry in Catalogue; rewrite them with
//
//	LITEHOST_UPDATE_SCHEMAS=1 go test ./docs/schemas/
package schemas

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/litehost/litehost/events"
	"github.com/litehost/litehost/events/public"
)

// Entry is one event type of the catalogue: a zero value of its Go type and the streams it is
// appended to.
type Entry struct {
	Event  events.Event
	Stream string
}

// Catalogue lists every event type, grouped by aggregate in the order of DESIGN §2. A type
// constant missing here fails TestCatalogueIsUpToDate.
func Catalogue() []Entry {
	return []Entry{
		{events.AccountRegistered{}, "account-<uuid>"},
		{events.PlanChanged{}, "account-<uuid>"},
		{events.SessionStarted{}, "account-<uuid>"},
		{events.SessionRefreshed{}, "account-<uuid>"},
		{events.SessionRevoked{}, "account-<uuid>"},
		{events.SessionStartedV2{}, "account-<uuid>"},
		{events.SessionRefreshedV2{}, "account-<uuid>"},
		{events.SessionExtended{}, "account-<uuid>"},
		{events.TrialStarted{}, "account-<uuid>"},
		{events.TrialEnded{}, "account-<uuid>"},
		{events.IdentityClaimed{}, "identity-<hmac>"},
		{events.OTPRequested{}, "otp-<hmac>"},
		{events.OTPAttemptFailed{}, "otp-<hmac>"},
		{events.OTPVerified{}, "otp-<hmac>"},
		{events.OTPCancelled{}, "otp-<hmac>"},
		{events.OTPLocked{}, "otp-<hmac>"},
		{events.OTPRequestedV2{}, "otp-<hmac>"},
		{events.OTPAttemptFailedV2{}, "otp-<hmac>"},
		{events.OTPVerifiedV2{}, "otp-<hmac>"},
		{events.ProjectCreated{}, "project-<uuid>"},
		{events.ProjectVersionPushed{}, "project-<uuid>"},
		{events.ProjectSettingsUpdated{}, "project-<uuid>"},
		{events.ProjectArchived{}, "project-<uuid>"},
		{events.ProjectUnarchived{}, "project-<uuid>"},
		{events.ProjectClaimed{}, "project-<uuid>"},
		{events.ProjectExpired{}, "project-<uuid>"},
		{events.ProjectMoved{}, "project-<uuid>"},
		{events.ProjectDeleted{}, "project-<uuid>"},
		{events.SlugReserved{}, "slug-<slug>"},
		{events.SlugReleased{}, "slug-<slug>"},
		{events.WorkspaceCreated{}, "workspace-<uuid>"},
		{events.WorkspaceRenamed{}, "workspace-<uuid>"},
		{events.WorkspaceDeleted{}, "workspace-<uuid>"},
		{events.DomainAdded{}, "domain-<uuid>"},
		{events.DomainStatusChanged{}, "domain-<uuid>"},
		{events.DomainRemoved{}, "domain-<uuid>"},
		{events.DomainHostnameReserved{}, "hostname-<hostname>"},
		{events.DomainHostnameReleased{}, "hostname-<hostname>"},
	}
}

// Docs are the doc comments of package events: type name → comment, "Type.Field" → comment,
// and the values of the exported Type* string constants.
type Docs struct {
	Types     map[string]string
	Fields    map[string]string
	TypeConst map[string]string // constant name → event type name
	// Public are the doc comments of package events/public (dir/public), whose struct names
	// repeat those of package events.
	Public *Docs
}

// ParseDocs reads the Go files of package events in dir and of package events/public in
// dir/public (tests excluded).
func ParseDocs(dir string) (Docs, error) {
	d, err := parseDir(dir)
	if err != nil {
		return d, err
	}
	pub, err := parseDir(filepath.Join(dir, "public"))
	if err != nil {
		return d, err
	}
	d.Public = &pub
	return d, nil
}

func parseDir(dir string) (Docs, error) {
	d := Docs{Types: map[string]string{}, Fields: map[string]string{}, TypeConst: map[string]string{}}
	fset := token.NewFileSet()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return d, err
	}
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ParseComments)
		if err != nil {
			return d, fmt.Errorf("parse %s: %w", path, err)
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok {
				continue
			}
			for _, spec := range gd.Specs {
				switch s := spec.(type) {
				case *ast.TypeSpec:
					doc := s.Doc
					if doc == nil && len(gd.Specs) == 1 {
						doc = gd.Doc
					}
					d.Types[s.Name.Name] = text(doc)
					st, ok := s.Type.(*ast.StructType)
					if !ok {
						continue
					}
					for _, field := range st.Fields.List {
						c := text(field.Doc)
						if c == "" {
							c = text(field.Comment)
						}
						for _, n := range field.Names {
							d.Fields[s.Name.Name+"."+n.Name] = c
						}
					}
				case *ast.ValueSpec:
					if gd.Tok != token.CONST {
						continue
					}
					for i, n := range s.Names {
						if !strings.HasPrefix(n.Name, "Type") || !n.IsExported() || i >= len(s.Values) {
							continue
						}
						if lit, ok := s.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
							d.TypeConst[n.Name] = strings.Trim(lit.Value, "\"`")
						}
					}
				}
			}
		}
	}
	return d, nil
}

// text is a comment group as one line of prose.
func text(g *ast.CommentGroup) string {
	if g == nil {
		return ""
	}
	return strings.Join(strings.Fields(g.Text()), " ")
}

// Generate returns every catalogue file by path relative to the docs directory:
// "schemas/<type>.json" for each entry and "events.md".
func Generate(docs Docs) (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, e := range Catalogue() {
		s := schemaOf(docs, e)
		b, err := json.MarshalIndent(s, "", "  ")
		if err != nil {
			return nil, fmt.Errorf("schema %s: %w", e.Event.EventType(), err)
		}
		out["schemas/"+e.Event.EventType()+".json"] = append(b, '\n')
		if ps := publicSchemaOf(docs, e); ps != nil {
			b, err := json.MarshalIndent(ps, "", "  ")
			if err != nil {
				return nil, fmt.Errorf("public schema %s: %w", e.Event.EventType(), err)
			}
			out["schemas/public/"+e.Event.EventType()+".json"] = append(b, '\n')
		}
	}
	out["events.md"] = markdown(docs)
	return out, nil
}

// schema is the JSON Schema subset the catalogue uses.
type schema struct {
	Schema               string             `json:"$schema,omitempty"`
	ID                   string             `json:"$id,omitempty"`
	Title                string             `json:"title,omitempty"`
	Description          string             `json:"description,omitempty"`
	Type                 any                `json:"type,omitempty"` // a name or [name, "null"]
	Format               string             `json:"format,omitempty"`
	Properties           map[string]*schema `json:"properties,omitempty"`
	Required             []string           `json:"required,omitempty"`
	AdditionalProperties *bool              `json:"additionalProperties,omitempty"`
	Items                *schema            `json:"items,omitempty"`
	Stream               string             `json:"x-litehost-stream,omitempty"`

	keys []string // property names in Go struct order, for the markdown tables
}

func schemaOf(docs Docs, e Entry) *schema {
	t := reflect.TypeOf(e.Event)
	s := objectSchema(docs, t)
	s.Schema = "https://json-schema.org/draft/2020-12/schema"
	s.ID = "urn:litehost:event:" + e.Event.EventType()
	s.Title = e.Event.EventType()
	s.Stream = e.Stream
	return s
}

// publicSchemaOf is the schema of e's public form (events/public), nil when e's type is private.
func publicSchemaOf(docs Docs, e Entry) *schema {
	v, ok := public.Project(e.Event)
	if !ok {
		return nil
	}
	pd := docs
	if docs.Public != nil {
		pd = *docs.Public
	}
	s := objectSchema(pd, reflect.TypeOf(v))
	s.Schema = "https://json-schema.org/draft/2020-12/schema"
	s.ID = "urn:litehost:public-event:" + e.Event.EventType()
	s.Title = e.Event.EventType()
	s.Stream = e.Stream
	return s
}

var timeType = reflect.TypeFor[time.Time]()

func objectSchema(docs Docs, t reflect.Type) *schema {
	no := false
	s := &schema{Type: "object", Description: docs.Types[t.Name()], Properties: map[string]*schema{}, AdditionalProperties: &no}
	for _, f := range fields(t) {
		fs := typeSchema(docs, f.typ)
		if d := docs.Fields[t.Name()+"."+f.goName]; d != "" {
			fs.Description = d
		} else if d := commonField(f.name); d != "" && fs.Description == "" {
			fs.Description = d
		}
		s.Properties[f.name] = fs
		s.keys = append(s.keys, f.name)
		if !f.omitEmpty {
			s.Required = append(s.Required, f.name)
		}
	}
	return s
}

// commonField describes a property that recurs across events and carries no doc comment of its
// own in package events; "" when there is none.
func commonField(name string) string {
	return map[string]string{
		"at":                  "When it happened (UTC).",
		"accountId":           "The account (UUID; its stream is account-<accountId>).",
		"ownerId":             "The owning account (UUID).",
		"projectId":           "The project (UUID; its stream is project-<projectId>).",
		"workspaceId":         "The workspace (UUID; its stream is workspace-<workspaceId>).",
		"domainId":            "The custom domain (UUID; its stream is domain-<domainId>).",
		"sessionId":           "The sign-in session (UUID).",
		"slug":                "The site's DNS label: the site is served at <slug>.<sites domain>.",
		"hostname":            "The custom hostname (lowercase).",
		"name":                "The workspace name.",
		"previousName":        "The name before this event.",
		"plan":                "Plan tier: free, starter, creator, pro or scale.",
		"nonce":               "Identifies one OTP code across its events (the code itself is never stored).",
		"keyHash":             "HMAC-SHA256 of the API key (the key is shown to the client once, never stored).",
		"refreshHash":         "HMAC-SHA256 of the refresh token.",
		"expiresAt":           "When it expires (UTC).",
		"status":              "The status after this event.",
		"previousStatus":      "The status before this event.",
		"verifiedAt":          "When the domain was first verified; null while it never was.",
		"claimTokenHash":      "HMAC-SHA256 of the claim token of a temporary project; only in events recorded before claim tokens were derived from the project ID (no longer written).",
		"passwordHash":        "The site password's argon2id hash sealed with the server secret (sealed:v1:…; older events hold the bare PHC string); empty without one.",
		"temporary":           "Whether the project is temporary (anonymous, expiring unless claimed).",
		"reason":              "Why it happened (a machine-readable word).",
		"title":               "The project's title.",
		"sizeBytes":           "Total bytes of the deployment's files.",
		"fileCount":           "Number of files in the deployment.",
		"indexPath":           "Path of the page served for /, when there is one.",
		"pageTitle":           "The HTML title override; null for none.",
		"metaDescription":     "The meta description override; null for none.",
		"noIndex":             "Whether the site is served with X-Robots-Tag: noindex.",
		"disableDownloads":    "Whether bundle downloads are disabled.",
		"analyticsEnabled":    "Whether visitor analytics are on.",
		"maxProjects":         "Projects allowed; -1 = unlimited.",
		"maxStorageBytes":     "Bytes of active deployments allowed; -1 = unlimited.",
		"maxFilesPerProject":  "Files per deployment allowed; -1 = unlimited.",
		"maxVisitorsPerMonth": "Site visitors per month allowed; -1 = unlimited.",
		"refreshExpiresAt":    "When the refresh token expires (UTC).",
		"address":             "The normalized e-mail or E.164 phone number the code goes to.",
		"email":               "The normalized (lowercase) e-mail address.",
		"phone":               "The E.164 phone number.",
		"channel":             "Delivery channel: email or phone.",
		"purpose":             "signin or signup.",
		"codeHash":            "Keyed hash of the code, to check a presented code.",
		"resend":              "True when the open code was sent again rather than a new one issued.",
		"requestedAt":         "When the code was requested (UTC).",
		"attemptsLeft":        "Wrong codes still allowed before the code is cancelled.",
		"lockedUntil":         "Until when the identifier may not request codes (UTC).",
		"previousPlan":        "The plan before this event.",
		"previousKeyHash":     "HMAC of the API key this rotation retired.",
		"previousRefreshHash": "HMAC of the refresh token this rotation retired.",
		"fromWorkspaceId":     "The workspace the project left; empty = the owner's personal scope.",
		"toWorkspaceId":       "The workspace the project joined; empty = the owner's personal scope.",
		"changed":             "The PATCH fields that changed (camelCase, as in the API).",
		"challengeToken":      "Set only by domains added before challenge tokens were derived from the server secret: the value of the DNS TXT record that proves control of the hostname. Newer events leave it out.",
		"passwordProtected":   "Whether a site password is set (its hash never leaves the service).",
	}[name]
}

// field is one JSON property of a struct.
type field struct {
	name, goName string
	typ          reflect.Type
	omitEmpty    bool
}

func fields(t reflect.Type) []field {
	var out []field
	for i := range t.NumField() {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(sf.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		out = append(out, field{name: name, goName: sf.Name, typ: sf.Type, omitEmpty: slices.Contains(strings.Split(opts, ","), "omitempty")})
	}
	return out
}

// typeSchema maps a Go type to its JSON shape as encoding/json writes it: pointers and slices
// may be null, times are RFC 3339 strings.
func typeSchema(docs Docs, t reflect.Type) *schema {
	nullable := false
	if t.Kind() == reflect.Pointer {
		t, nullable = t.Elem(), true
	}
	var s *schema
	switch {
	case t == timeType:
		s = &schema{Type: "string", Format: "date-time"}
	case t.Kind() == reflect.Struct:
		s = objectSchema(docs, t)
	case t.Kind() == reflect.Slice:
		s = &schema{Type: "array", Items: typeSchema(docs, t.Elem())}
		nullable = true // encoding/json writes a nil slice as null
	case t.Kind() == reflect.String:
		s = &schema{Type: "string"}
	case t.Kind() == reflect.Bool:
		s = &schema{Type: "boolean"}
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		s = &schema{Type: "integer"}
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		s = &schema{Type: "number"}
	default:
		panic(fmt.Sprintf("schemas: no JSON Schema for Go type %s", t)) // a new kind of field: extend this switch
	}
	if nullable {
		s.Type = []string{s.Type.(string), "null"}
	}
	return s
}

// jsonType is the type of a schema for the markdown tables.
func jsonType(s *schema) string {
	var name string
	switch v := s.Type.(type) {
	case string:
		name = v
	case []string:
		name = strings.Join(v, " or ")
	}
	if s.Format != "" {
		name = strings.Replace(name, "string", "string ("+s.Format+")", 1)
	}
	if s.Items != nil {
		name = strings.Replace(name, "array", "array of "+jsonType(s.Items), 1)
	}
	return name
}

const mdHeader = `# Event catalogue

<!-- Generated by docs/schemas (LITEHOST_UPDATE_SCHEMAS=1 go test ./docs/schemas/) from the Go types
in packages events and events/public. Do not edit by hand: change the types' doc comments instead. -->

Every change in Litehost is an event appended to a stream of the event store (DESIGN §2). Each
event type has a JSON Schema of its data as stored in [schemas/](schemas/) (draft 2020-12,
` + "`additionalProperties: false`" + `: a new shape is always a new type name ending in a higher
` + "`.vN`" + `, so a published type never changes).

## Public contract

What leaves the service is not the stored event but its **public form**, the contract analytics
consumers code against: one Go struct per public type in package ` + "`events/public`" + ` and one JSON
Schema per public type in [schemas/public/](schemas/public/). The SSE stream, ` + "`litehost events tail`" + `,
the NATS forwarder and the per-project audit log all deliver this form and nothing else:

- **Private types never leave**: the OTP code flow (` + "`otp.*`" + `: addresses, the nonce a code is
  derived from, code hashes) and ` + "`identity.claimed.v1`" + ` (its stream name is the keyed hash of an
  address). Each type below says whether it is public or private, and why.
- **Public types carry an allow-list of fields**: no secret or value derived from one (API-key,
  refresh-token and claim-token hashes, site-password hashes, manifest hashes, DNS challenge
  tokens), no session IDs, no e-mail address or phone number (the account ID stands for the
  person). A site password shows as ` + "`settings.passwordProtected`" + ` (true or false).
- **Metadata**: only ` + "`actor`" + `, ` + "`correlationId`" + `, ` + "`causationId`" + ` and ` + "`requestId`" + `; never the
  client's network or user agent.
- A new field of an event, or a new event type, is private until it is added to
  ` + "`events/public`" + ` (a test fails while a type has no decision).

## Where events are delivered

- **NATS JetStream** (when ` + "`LITEHOST_NATS_URL`" + ` is set): stream ` + "`LITEHOST_EVENTS`" + `, subject
  ` + "`litehost.events.<category>.<type>`" + ` where category is the stream name before its first ` + "`-`" + `
  (e.g. ` + "`litehost.events.project.project.created.v1`" + `). The payload is the event's public data
  JSON. Headers: ` + "`Nats-Msg-Id`" + ` (event ID; JetStream drops resends within 2 minutes),
  ` + "`Litehost-Stream`" + `, ` + "`Litehost-Version`" + ` (0-based place in the stream),
  ` + "`Litehost-Position`" + ` (global position ` + "`commit/prepare`" + `), ` + "`Litehost-Type`" + `,
  ` + "`Litehost-Created-At`" + ` and ` + "`Litehost-Metadata`" + ` (the public metadata JSON). Delivery is
  at-least-once and in log order: deduplicate by event ID. Private events are not published.
- **Server-Sent Events**: ` + "`GET /v1/events/stream`" + ` with ` + "`Authorization: Bearer <LITEHOST_ADMIN_TOKEN>`" + `
  (404 while the token is unset, 401 ` + "`ADMIN_TOKEN_MISSING`" + ` / ` + "`ADMIN_TOKEN_INVALID`" + `). Query
  ` + "`types=project.,account.`" + ` (type prefixes) and ` + "`from=<position>`" + `; the ` + "`Last-Event-ID`" + ` header
  resumes after a position and wins over ` + "`from`" + `. Each message: ` + "`id:`" + ` position, ` + "`event:`" + `
  type, ` + "`data:`" + ` ` + "`{id, stream, version, type, position, createdAt, data, metadata}`" + ` with the
  public data and metadata. A ` + "`: heartbeat`" + ` comment every 15 s keeps an idle connection open.
- **Terminal**: ` + "`litehost events tail [--types project.,account.] [--from POS] [--json] [--follow=false]`" + `
  reads the store directly and prints the public form too; ` + "`--json`" + ` prints the same objects as
  the SSE data.
- **Per project**: ` + "`GET /v1/projects/{id}/events`" + ` (the owner's audit log), public form and metadata.

## Metadata (every event, as stored)

| field | meaning | public |
|---|---|---|
| ` + "`correlationId`" + ` | the request (or process run) the event belongs to | yes |
| ` + "`causationId`" + ` | what caused it: the command or event it reacts to | yes |
| ` + "`actor`" + ` | ` + "`account:<id>`" + `, ` + "`anonymous`" + ` or ` + "`system:<process>`" + ` | yes |
| ` + "`requestId`" + ` | the HTTP request ID (` + "`X-Request-ID`" + `), when there was a request | yes |
| ` + "`clientNetwork`" + ` | the client's network as seen through trusted proxies: its IPv4 /24 or IPv6 /48 (e.g. ` + "`203.0.113.0/24`" + `); the address itself is never stored | no |
| ` + "`userAgent`" + ` | the client's User-Agent without its parenthesised comments (OS, device), at most 128 bytes | no |
| ` + "`requestFingerprint`" + ` | with an ` + "`Idempotency-Key`" + `: the keyed fingerprint (HMAC) of the request that made the event, secret fields left out; a later request under the key replays only with the same one | no |

Events written before the network rule hold a full ` + "`clientIp`" + `; every reader reduces it to
` + "`clientNetwork`" + ` (and the user agent) on read. No secret appears in clear in the log either: API
keys and refresh tokens only by their IDs (a credential is its ID plus a MAC under the server
secret, and the MAC is never stored), OTP codes only by their sequence number (the code is derived
from the server secret), claim tokens not at all (derived from the project ID), site passwords only
as sealed slow hashes, identifiers in stream names as HMACs, DNS challenge tokens not at all (derived
from the server secret and the domain ID). Events of the first release still hold the hashes they
were written with. Times are UTC RFC 3339.

## Streams

| stream | events |
|---|---|
`

func markdown(docs Docs) []byte {
	var b bytes.Buffer
	b.WriteString(mdHeader)
	var streams []string
	byStream := map[string][]string{}
	for _, e := range Catalogue() {
		if _, ok := byStream[e.Stream]; !ok {
			streams = append(streams, e.Stream)
		}
		byStream[e.Stream] = append(byStream[e.Stream], "`"+e.Event.EventType()+"`")
	}
	for _, s := range streams {
		fmt.Fprintf(&b, "| `%s` | %s |\n", s, strings.Join(byStream[s], ", "))
	}
	b.WriteString("\n## Event types\n")
	for _, e := range Catalogue() {
		typ := e.Event.EventType()
		s := schemaOf(docs, e)
		fmt.Fprintf(&b, "\n### `%s`\n\nStream `%s` · Go type `events.%s` · schema [schemas/%s.json](schemas/%s.json)\n\n",
			typ, e.Stream, reflect.TypeOf(e.Event).Name(), typ, typ)
		if s.Description != "" {
			b.WriteString(s.Description + "\n\n")
		}
		b.WriteString("| field | type | required | description |\n|---|---|---|---|\n")
		writeRows(&b, "", s)
		if reason, private := public.Private[typ]; private {
			fmt.Fprintf(&b, "\n**Private**: never leaves the service. %s\n", reason)
		} else if ps := publicSchemaOf(docs, e); ps != nil {
			fmt.Fprintf(&b, "\n**Public form** (SSE, NATS, audit log) · schema [schemas/public/%s.json](schemas/public/%s.json)\n\n", typ, typ)
			b.WriteString("| field | type | required | description |\n|---|---|---|---|\n")
			writeRows(&b, "", ps)
		}
	}
	return b.Bytes()
}

func writeRows(b *bytes.Buffer, prefix string, s *schema) {
	for _, n := range s.keys {
		p := s.Properties[n]
		req := "no"
		if slices.Contains(s.Required, n) {
			req = "yes"
		}
		desc := p.Description
		fmt.Fprintf(b, "| `%s` | %s | %s | %s |\n", prefix+n, jsonType(p), req, strings.ReplaceAll(desc, "|", "\\|"))
		if p.Properties != nil {
			writeRows(b, prefix+n+".", p)
		}
	}
}

// UpdateEnv is the environment variable that makes the test rewrite the checked-in files.
const UpdateEnv = "LITEHOST_UPDATE_SCHEMAS"

// WriteAll writes files under dir (the docs directory), creating schemas/ as needed.
func WriteAll(dir string, files map[string][]byte) error {
	for name, b := range files {
		path := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			return err
		}
	}
	return nil
}
