package commands_test

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"golang.org/x/net/dns/dnsmessage"

	"github.com/litehost/litehost/commands"
	"github.com/litehost/litehost/domain"
	"github.com/litehost/litehost/domain/customdomain"
	"github.com/litehost/litehost/events"
	"github.com/litehost/litehost/events/pgtest"
)

// txtServer is a real DNS server on loopback UDP that answers TXT questions from a table and
// NXDOMAIN for anything else.
type txtServer struct {
	addr    string
	mu      sync.Mutex
	records map[string][]string // fully qualified name (trailing dot) → TXT strings
	queries int
}

func startTXTServer(t *testing.T) *txtServer {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	pgtest.Must(t, err, "listen dns")
	s := &txtServer{addr: pc.LocalAddr().String(), records: map[string][]string{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return // closed
			}
			if out, ok := s.answer(buf[:n]); ok {
				_, _ = pc.WriteTo(out, from)
			}
		}
	}()
	t.Cleanup(func() {
		_ = pc.Close()
		<-done
	})
	return s
}

func (s *txtServer) set(name string, values ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records[strings.ToLower(name)+"."] = values
}

func (s *txtServer) answer(req []byte) ([]byte, bool) {
	var p dnsmessage.Parser
	h, err := p.Start(req)
	if err != nil {
		return nil, false
	}
	q, err := p.Question()
	if err != nil {
		return nil, false
	}
	s.mu.Lock()
	s.queries++
	vals, found := s.records[strings.ToLower(q.Name.String())]
	s.mu.Unlock()
	rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired,
		RecursionAvailable: true}
	if !found {
		rh.RCode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, rh)
	b.EnableCompression()
	if err := b.StartQuestions(); err != nil {
		return nil, false
	}
	if err := b.Question(q); err != nil {
		return nil, false
	}
	if err := b.StartAnswers(); err != nil {
		return nil, false
	}
	if found && q.Type == dnsmessage.TypeTXT {
		for _, v := range vals {
			err := b.TXTResource(dnsmessage.ResourceHeader{Name: q.Name, Type: dnsmessage.TypeTXT, Class: dnsmessage.ClassINET, TTL: 60},
				dnsmessage.TXTResource{TXT: []string{v}})
			if err != nil {
				return nil, false
			}
		}
	}
	out, err := b.Finish()
	return out, err == nil
}

func (s *txtServer) queryCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queries
}

// fetchSite GETs / with the given Host from the same server as the API.
func (e *scopeEnv) fetchSite(t *testing.T, host string) (int, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), "GET", e.srv.URL+"/", nil)
	req.Host = host
	res, err := http.DefaultClient.Do(req)
	pgtest.Must(t, err, "fetch %s", host)
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func TestDomainRoutes(t *testing.T) {
	e := newScopeEnv(t)
	free, owner, other := e.account(t, "free"), e.account(t, "starter"), e.account(t, "pro")

	someID := uuid.NewString()
	for _, r := range []apiResp{
		e.json(t, "GET", "/v1/domains", free, nil),
		e.json(t, "GET", "/v1/domains/"+someID, free, nil),
		e.json(t, "POST", "/v1/domains", free, map[string]any{"domain": "free.example"}),
		e.json(t, "POST", "/v1/domains/"+someID+"/verify", free, nil),
		e.json(t, "DELETE", "/v1/domains/"+someID, free, nil),
	} {
		r.want(t, 403, "FREE_TIER_RESTRICTED")
		if r.Body["requiredTier"] != "starter" {
			t.Errorf("requiredTier = %v", r.Body["requiredTier"])
		}
	}

	// Bad input: 400 for a body that is not JSON, 422 for a bad hostname; nothing is reserved.
	e.json(t, "POST", "/v1/domains", owner, `{`).want(t, 400, "INVALID_JSON")
	for _, h := range []any{nil, 5, "", "localhost", "example.com.", "-bad.example", "a..b.example", "10.0.0.1", strings.Repeat("a", 64) + ".example"} {
		body := map[string]any{"domain": h}
		r := e.json(t, "POST", "/v1/domains", owner, body).want(t, 422, "VALIDATION_FAILED")
		if f, _ := r.Body["fields"].(map[string]any); f["domain"] == nil {
			t.Errorf("%v: fields = %v", h, r.Body["fields"])
		}
	}
	if l := e.json(t, "GET", "/v1/domains", owner, nil).want(t, 200, "").data()["domains"].([]any); len(l) != 0 {
		t.Fatalf("domains after bad input: %v", l)
	}

	// Add: pending, with the TXT record to create. Upper case is normalized.
	add := e.json(t, "POST", "/v1/domains", owner, map[string]any{"domain": " Sites.Example.COM "}).want(t, 201, "").data()
	domID := add["id"].(string)
	rec := add["verification"].(map[string]any)
	if add["domain"] != "sites.example.com" || add["status"] != "pending_verification" || add["verifiedAt"] != nil ||
		add["projectCount"] != 0.0 || rec["type"] != "TXT" || rec["name"] != "_litehost-challenge.sites.example.com" ||
		!strings.HasPrefix(rec["value"].(string), "litehost-verification=") {
		t.Errorf("added = %v", add)
	}
	e.json(t, "POST", "/v1/domains", other, map[string]any{"domain": "sites.example.com"}).want(t, 409, "DOMAIN_TAKEN")
	e.json(t, "POST", "/v1/domains", owner, map[string]any{"domain": "SITES.example.com"}).want(t, 409, "DOMAIN_TAKEN")
	second := e.json(t, "POST", "/v1/domains", owner, map[string]any{"domain": "second.example"}).want(t, 201, "").data()["id"].(string)

	// Not verified yet: cannot be assigned.
	e.createProject(t, owner, "Early", map[string]string{"domainId": domID}).want(t, 422, "DOMAIN_NOT_ACTIVE")

	// Verify without the record, with a wrong one, then with the right one.
	r := e.json(t, "POST", "/v1/domains/"+domID+"/verify", owner, nil).want(t, 422, "DOMAIN_VERIFICATION_FAILED")
	if got := r.Body["record"].(map[string]any); got["value"] != rec["value"] || got["name"] != rec["name"] {
		t.Errorf("failure record = %v, want %v", got, rec)
	}
	e.dns.set("_litehost-challenge.sites.example.com", "litehost-verification=wrong", "v=spf1 -all")
	e.json(t, "POST", "/v1/domains/"+domID+"/verify", owner, nil).want(t, 422, "DOMAIN_VERIFICATION_FAILED")
	e.json(t, "POST", "/v1/domains/"+domID+"/verify", other, nil).want(t, 404, "NOT_FOUND")
	e.dns.set("_litehost-challenge.sites.example.com", "v=spf1 -all", rec["value"].(string))
	before := e.dns.queryCount()
	v := e.json(t, "POST", "/v1/domains/"+domID+"/verify", owner, nil).want(t, 200, "").data()
	if v["status"] != "active" || v["verifiedAt"] == nil || e.dns.queryCount() == before {
		t.Errorf("verified = %v (dns queries %d → %d)", v, before, e.dns.queryCount())
	}
	// Verifying again asks nothing and changes nothing.
	before = e.dns.queryCount()
	again := e.json(t, "POST", "/v1/domains/"+domID+"/verify", owner, nil).want(t, 200, "").data()
	if again["verifiedAt"] != v["verifiedAt"] || e.dns.queryCount() != before {
		t.Errorf("verified again = %v", again)
	}

	// Assign a project and serve it at <slug>.<domain>.
	created := e.createProject(t, owner, "Custom Site", map[string]string{"domainId": domID, "slug": "shop"}).want(t, 201, "").data()
	projectID := created["projectId"].(string)
	e.createProject(t, other, "Not theirs", map[string]string{"domainId": domID}).want(t, 422, "VALIDATION_FAILED")
	if code, body := e.fetchSite(t, "shop.sites.example.com:8080"); code != 200 || !strings.Contains(body, "Custom Site") {
		t.Errorf("custom host: %d %q", code, body)
	}
	if code, _ := e.fetchSite(t, "nope.sites.example.com"); code == 200 {
		t.Errorf("unknown slug on the custom domain answered 200")
	}

	list := e.json(t, "GET", "/v1/domains", owner, nil).want(t, 200, "").data()["domains"].([]any)
	if len(list) != 2 || list[0].(map[string]any)["id"] != domID || list[0].(map[string]any)["projectCount"] != 1.0 ||
		list[1].(map[string]any)["id"] != second || list[1].(map[string]any)["projectCount"] != 0.0 {
		t.Errorf("list = %v", list)
	}
	if l := e.json(t, "GET", "/v1/domains", other, nil).want(t, 200, "").data()["domains"].([]any); len(l) != 0 {
		t.Errorf("another account sees %v", l)
	}
	detail := e.json(t, "GET", "/v1/domains/"+domID, owner, nil).want(t, 200, "").data()
	ps := detail["projects"].([]any)
	if detail["domain"] != "sites.example.com" || detail["status"] != "active" || len(ps) != 1 {
		t.Fatalf("detail = %v", detail)
	}
	if p := ps[0].(map[string]any); p["id"] != projectID || p["title"] != "Custom Site" || p["slug"] != "shop" ||
		p["url"] != "http://shop.sites.example.com:8080" {
		t.Errorf("detail project = %v", p)
	}
	e.json(t, "GET", "/v1/domains/"+domID, other, nil).want(t, 404, "NOT_FOUND")
	e.json(t, "GET", "/v1/domains/not-a-uuid", owner, nil).want(t, 404, "NOT_FOUND")
	e.json(t, "GET", "/v1/domains/"+uuid.NewString(), owner, nil).want(t, 404, "NOT_FOUND")

	// Remove: refused while used, allowed after the project leaves; the hostname is free again.
	e.json(t, "DELETE", "/v1/domains/"+domID, other, nil).want(t, 404, "NOT_FOUND")
	e.json(t, "DELETE", "/v1/domains/"+domID, owner, nil).want(t, 409, "DOMAIN_IN_USE")
	e.json(t, "PATCH", "/v1/projects/"+projectID, owner, map[string]any{"domainId": nil}).want(t, 200, "")
	e.json(t, "DELETE", "/v1/domains/"+domID, owner, nil).want(t, 200, "")
	e.json(t, "DELETE", "/v1/domains/"+domID, owner, nil).want(t, 404, "NOT_FOUND")
	e.json(t, "GET", "/v1/domains/"+domID, owner, nil).want(t, 404, "NOT_FOUND")
	if code, _ := e.fetchSite(t, "shop.sites.example.com"); code == 200 {
		t.Errorf("removed domain still serves")
	}
	e.json(t, "POST", "/v1/domains", other, map[string]any{"domain": "sites.example.com"}).want(t, 201, "")
}

func TestOperatorDomainCommands(t *testing.T) {
	e := newScopeEnv(t)
	owner := e.account(t, "pro")
	ctx := events.WithMetadata(commands.WithCommandID(t.Context(), uuid.New()), events.Metadata{Actor: "system:admin"})
	email := commands.Identifier{Kind: commands.IdentifierEmail, Value: owner + "@example.com"}

	if _, err := e.domains.AddDomain(ctx, commands.Identifier{Kind: "email", Value: "nobody@example.com"}, "op.example", ""); !errors.Is(err, commands.ErrNotFound) {
		t.Errorf("unknown owner: err = %v", err)
	}
	var inv domain.Invalid
	if _, err := e.domains.AddDomain(ctx, email, "op.example", "live"); !errors.As(err, &inv) || inv["status"] == "" {
		t.Errorf("bad status: err = %v", err)
	}
	if _, err := e.domains.AddDomain(ctx, email, "op", ""); !errors.As(err, &inv) || inv["domain"] == "" {
		t.Errorf("bad hostname: err = %v", err)
	}
	res, err := e.domains.AddDomain(ctx, email, "Op.Example", "")
	pgtest.Must(t, err, "add")
	if res.Hostname != "op.example" || res.Status != customdomain.StatusActive || res.VerifiedAt == nil {
		t.Errorf("added = %+v", res)
	}
	// The same command again is the same domain; another command for the hostname is taken.
	if again, err := e.domains.AddDomain(ctx, email, "op.example", ""); err != nil || again.ID != res.ID {
		t.Errorf("retried add = %+v, %v", again, err)
	}
	ctx2 := commands.WithCommandID(t.Context(), uuid.New())
	if _, err := e.domains.AddDomain(ctx2, email, "op.example", "pending_verification"); !errors.Is(err, customdomain.ErrTaken) {
		t.Errorf("second add: err = %v", err)
	}

	pos, err := e.domains.SetDomainStatus(commands.WithCommandID(t.Context(), uuid.New()), "OP.example", "ssl_active")
	pgtest.Must(t, err, "set status")
	pgtest.Must(t, e.runner.WaitFor(t.Context(), pos), "wait")
	got := e.json(t, "GET", "/v1/domains/"+res.ID, owner, nil).want(t, 200, "").data()
	if got["status"] != "ssl_active" {
		t.Errorf("status = %v", got["status"])
	}
	s, err := commands.Load(t.Context(), e.store, customdomain.Stream(res.ID))
	pgtest.Must(t, err, "load")
	md, _ := events.ParseMetadata(s.Records[len(s.Records)-1].Metadata)
	if md.Actor != "system:admin" {
		t.Errorf("actor = %q", md.Actor)
	}
	if _, err := e.domains.SetDomainStatus(t.Context(), "missing.example", "active"); !errors.Is(err, commands.ErrNotFound) {
		t.Errorf("unknown hostname: err = %v", err)
	}
	if _, err := e.domains.SetDomainStatus(t.Context(), "op.example", "nope"); !errors.As(err, &inv) {
		t.Errorf("bad status: err = %v", err)
	}
	// ssl_active is assignable.
	e.createProject(t, owner, "On op", map[string]string{"domainId": res.ID}).want(t, 201, "")
}

// TestDomainChallengeIsDerivedNotStored checks that a domain's challenge token is the keyring's
// derivation from the domain ID, that neither the log nor any table holds it, and that a domain
// whose event recorded a token (before tokens were derived) still verifies with that token.
func TestDomainChallengeIsDerivedNotStored(t *testing.T) {
	e := newScopeEnv(t)
	owner := e.account(t, "starter")
	add := e.json(t, "POST", "/v1/domains", owner, map[string]any{"domain": "derived.example"}).want(t, 201, "").data()
	id := add["id"].(string)
	token := e.keys.DomainChallenge(id)
	if v := add["verification"].(map[string]any)["value"]; v != customdomain.ChallengeValue(token) {
		t.Fatalf("verification value %v, want the derived token %s", v, token)
	}
	pgtest.Must(t, e.runner.WaitFor(t.Context(), e.head(t)), "wait for projections")
	got := e.json(t, "GET", "/v1/domains/"+id, owner, nil).want(t, 200, "").data()
	if v := got["verification"].(map[string]any)["value"]; v != customdomain.ChallengeValue(token) {
		t.Errorf("GET verification value %v, want %s", v, customdomain.ChallengeValue(token))
	}
	// No table holds it: every row of every table, as text.
	rows, err := e.pool.Query(t.Context(), `SELECT quote_ident(table_schema) || '.' || quote_ident(table_name)
		FROM information_schema.tables WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')`)
	pgtest.Must(t, err, "list tables")
	var tables []string
	for rows.Next() {
		var name string
		pgtest.Must(t, rows.Scan(&name), "scan")
		tables = append(tables, name)
	}
	pgtest.Must(t, rows.Err(), "tables")
	if len(tables) < 5 {
		t.Fatalf("only %d tables: %v", len(tables), tables)
	}
	for _, tbl := range tables {
		var n int
		pgtest.Must(t, e.pool.QueryRow(t.Context(), `SELECT count(*) FROM `+tbl+` x WHERE strpos(x::text, $1) > 0 OR strpos(x::text, encode(convert_to($1, 'UTF8'), 'hex')) > 0`, token).Scan(&n), "scan %s", tbl)
		if n > 0 {
			t.Errorf("table %s holds the challenge token in %d row(s)", tbl, n)
		}
	}
	e.dns.set("_litehost-challenge.derived.example", customdomain.ChallengeValue(token))
	e.json(t, "POST", "/v1/domains/"+id+"/verify", owner, nil).want(t, 200, "")

	// A domain added before tokens were derived verifies with the token its event recorded.
	old := uuid.NewString()
	appendEvents(t, e.store, customdomain.Stream(old), events.DomainAdded{DomainID: old, OwnerID: owner, Hostname: "legacy.example",
		Status: customdomain.StatusPendingVerification, ChallengeToken: "0123456789abcdef0123456789abcdef", At: time.Now().UTC()})
	e.dns.set("_litehost-challenge.legacy.example", customdomain.ChallengeValue("0123456789abcdef"))
	e.json(t, "POST", "/v1/domains/"+old+"/verify", owner, nil).want(t, 422, "DOMAIN_VERIFICATION_FAILED")
	e.dns.set("_litehost-challenge.legacy.example", customdomain.ChallengeValue("0123456789abcdef0123456789abcdef"))
	if v := e.json(t, "POST", "/v1/domains/"+old+"/verify", owner, nil).want(t, 200, "").data(); v["status"] != "active" {
		t.Errorf("legacy domain verified = %v", v)
	}
}
