package commands_test

import (
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/litehost/litehost/commands"
	"github.com/litehost/litehost/domain"
	"github.com/litehost/litehost/domain/account"
	"github.com/litehost/litehost/events"
	"github.com/litehost/litehost/events/pgstore"
	"github.com/litehost/litehost/events/pgtest"
	"github.com/litehost/litehost/events/secret"
	"github.com/litehost/litehost/internal/credential"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

type accountsFixture struct {
	pool  *pgxpool.Pool
	store *pgstore.Store
	acc   *commands.Accounts
	keys  *secret.Keyring
	clock *clock
}

func newAccounts(t *testing.T) accountsFixture {
	t.Helper()
	pool := pgtest.NewPool(t)
	store := pgstore.New(pool, slog.New(slog.DiscardHandler))
	pgtest.Must(t, store.Migrate(t.Context()), "migrate event store")
	pgtest.Must(t, commands.Migrate(t.Context(), pool), "migrate commands")
	keys, err := secret.New([]byte("0123456789abcdef0123456789abcdef"))
	pgtest.Must(t, err, "keyring")
	c := &clock{t: time.Date(2026, 4, 9, 14, 23, 0, 0, time.UTC)}
	acc := commands.NewAccounts(store, keys, commands.NewPGRevocations(pool), c.now)
	return accountsFixture{pool: pool, store: store, acc: acc, keys: keys, clock: c}
}

var alice = commands.Identifier{Kind: commands.IdentifierEmail, Value: "alice@example.com"}

func (f accountsFixture) stream(t *testing.T, name string) []events.RecordedEvent {
	t.Helper()
	recs, err := f.store.ReadStream(t.Context(), name, 0, 1000)
	if errors.Is(err, events.ErrStreamNotFound) {
		return nil
	}
	pgtest.Must(t, err, "read %s", name)
	return recs
}

func types(recs []events.RecordedEvent) []string {
	var out []string
	for _, r := range recs {
		out = append(out, r.Type)
	}
	return out
}

func TestSignInCreatesAccountThenSignsIntoIt(t *testing.T) {
	f := newAccounts(t)
	ctx := t.Context()
	first, err := f.acc.SignIn(ctx, uuid.New(), alice, true)
	pgtest.Must(t, err, "first sign-in")
	if !first.AccountCreated || first.Email != "alice@example.com" || first.Position.IsZero() {
		t.Errorf("first sign-in = %+v", first)
	}
	if !commands.ValidAPIKey(first.APIKey) {
		t.Errorf("api key %q is not well-formed", first.APIKey)
	}
	if want := f.clock.now().Add(account.DefaultKeyIdleTTL); !first.ExpiresAt.Equal(want) {
		t.Errorf("expiresAt = %v, want %v", first.ExpiresAt, want)
	}
	if want := f.clock.now().Add(account.DefaultKeyIdleTTL); !first.RefreshExpiresAt.Equal(want) {
		t.Errorf("refreshExpiresAt = %v, want %v", first.RefreshExpiresAt, want)
	}

	second, err := f.acc.SignIn(ctx, uuid.New(), alice, false)
	pgtest.Must(t, err, "second sign-in")
	if second.AccountCreated || second.AccountID != first.AccountID || second.APIKey == first.APIKey || second.RefreshToken == first.RefreshToken {
		t.Errorf("second sign-in = %+v, first %+v", second, first)
	}

	recs := f.stream(t, "account-"+first.AccountID)
	want := []string{events.TypeAccountRegistered, events.TypeSessionStartedV2, events.TypeSessionStartedV2}
	if diff := cmp.Diff(want, types(recs)); diff != "" {
		t.Errorf("account stream (-want +got):\n%s", diff)
	}
	for _, r := range recs {
		for _, clear := range []string{first.APIKey, second.APIKey, first.RefreshToken, second.RefreshToken} {
			if strings.Contains(string(r.Data), clear) {
				t.Errorf("event %s holds a credential in clear", r.Type)
			}
		}
	}
	ev, err := events.Decode(recs[1].Type, recs[1].Data)
	pgtest.Must(t, err, "decode")
	if id, ok := credential.ParseAPIKey(f.keys, first.APIKey); !ok || ev.(events.SessionStartedV2).KeyID != id.String() {
		t.Errorf("stored key ID %s is not the ID of the issued key (%v)", ev.(events.SessionStartedV2).KeyID, ok)
	}
	claims := f.stream(t, "identity-"+f.keys.Hash(secret.PurposeIdentifier, "alice@example.com"))
	if len(claims) != 1 || claims[0].Type != events.TypeIdentityClaimed {
		t.Errorf("identity stream = %v", types(claims))
	}
}

func TestSignInReplayReturnsTheSameKey(t *testing.T) {
	f := newAccounts(t)
	cmd := uuid.New()
	first, err := f.acc.SignIn(t.Context(), cmd, alice, true)
	pgtest.Must(t, err, "sign in")
	again, err := f.acc.SignIn(t.Context(), cmd, alice, true)
	pgtest.Must(t, err, "replay")
	if diff := cmp.Diff(first, again); diff != "" {
		t.Errorf("replay (-first +again):\n%s", diff)
	}
	if n := len(f.stream(t, "account-"+first.AccountID)); n != 2 {
		t.Errorf("account stream has %d events after a replay, want 2", n)
	}
}

func TestSignInWithoutAutoCreate(t *testing.T) {
	f := newAccounts(t)
	_, err := f.acc.SignIn(t.Context(), uuid.New(), alice, false)
	if !errors.Is(err, commands.ErrSignupDisabled) {
		t.Fatalf("err = %v, want ErrSignupDisabled", err)
	}
	if recs := f.stream(t, "identity-"+f.keys.Hash(secret.PurposeIdentifier, "alice@example.com")); len(recs) != 0 {
		t.Errorf("refused sign-up wrote %v", types(recs))
	}
}

func TestSignInRejectsBadIdentifier(t *testing.T) {
	f := newAccounts(t)
	for _, id := range []commands.Identifier{{Kind: "fax", Value: "1"}, {Kind: "email"}} {
		var inv domain.Invalid
		if _, err := f.acc.SignIn(t.Context(), uuid.New(), id, true); !errors.As(err, &inv) {
			t.Errorf("SignIn(%+v) err = %v, want domain.Invalid", id, err)
		}
	}
}

func TestConcurrentFirstSignInsCreateOneAccount(t *testing.T) {
	f := newAccounts(t)
	phone := commands.Identifier{Kind: commands.IdentifierPhone, Value: "+14155550100"}
	const n = 5 // each sign-in also appends to the one account stream: 5 writers race on it
	results := make([]commands.SignInResult, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { results[i], errs[i] = f.acc.SignIn(t.Context(), uuid.New(), phone, true) })
	}
	wg.Wait()
	created := 0
	for i := range n {
		pgtest.Must(t, errs[i], "sign-in %d", i)
		if results[i].AccountID != results[0].AccountID {
			t.Errorf("sign-in %d got account %s, another got %s", i, results[i].AccountID, results[0].AccountID)
		}
		if results[i].AccountCreated {
			created++
		}
	}
	if created != 1 {
		t.Errorf("%d sign-ins report a created account, want 1", created)
	}
	recs := f.stream(t, "account-"+results[0].AccountID)
	if len(recs) != n+1 || recs[0].Type != events.TypeAccountRegistered {
		t.Errorf("account stream = %v", types(recs))
	}
}

func TestRefreshRotatesAndReuseRevokes(t *testing.T) {
	f := newAccounts(t)
	ctx := t.Context()
	in, err := f.acc.SignIn(ctx, uuid.New(), alice, true)
	pgtest.Must(t, err, "sign in")
	f.clock.advance(time.Hour)

	cmd := uuid.New()
	r1, err := f.acc.Refresh(ctx, cmd, in.RefreshToken)
	pgtest.Must(t, err, "refresh")
	if !commands.ValidAPIKey(r1.APIKey) || r1.APIKey == in.APIKey || r1.RefreshToken == in.RefreshToken || r1.AccountID != in.AccountID {
		t.Errorf("refresh = %+v", r1)
	}
	if want := f.clock.now().Add(account.DefaultKeyIdleTTL); !r1.ExpiresAt.Equal(want) {
		t.Errorf("expiresAt = %v, want %v", r1.ExpiresAt, want)
	}
	// A retry the idempotency layer recognises (same key, same request, answered before) gets
	// the same answer.
	again, err := f.acc.Refresh(commands.WithAnsweredBefore(ctx), cmd, in.RefreshToken)
	pgtest.Must(t, err, "replayed refresh")
	if diff := cmp.Diff(r1, again); diff != "" {
		t.Errorf("replayed refresh (-first +again):\n%s", diff)
	}

	// The rotated-away token comes back: the session dies, also for the current token.
	res, err := f.acc.Refresh(ctx, uuid.New(), in.RefreshToken)
	if !errors.Is(err, account.ErrRefreshReused) || res.Position.IsZero() {
		t.Fatalf("reuse = %+v, %v; want ErrRefreshReused with a position", res, err)
	}
	if _, err := f.acc.Refresh(ctx, uuid.New(), r1.RefreshToken); !errors.Is(err, account.ErrRefreshInvalid) {
		t.Errorf("refresh after reuse: err = %v, want ErrRefreshInvalid", err)
	}
	want := []string{events.TypeAccountRegistered, events.TypeSessionStartedV2, events.TypeSessionRefreshedV2, events.TypeSessionRevoked}
	recs := f.stream(t, "account-"+in.AccountID)
	if diff := cmp.Diff(want, types(recs)); diff != "" {
		t.Errorf("account stream (-want +got):\n%s", diff)
	}
	ev, _ := events.Decode(recs[3].Type, recs[3].Data)
	if ev.(events.SessionRevoked).Reason != events.RevokeReasonRefreshReuse {
		t.Errorf("revocation = %+v", ev)
	}
}

func TestRefreshFailures(t *testing.T) {
	f := newAccounts(t)
	in, err := f.acc.SignIn(t.Context(), uuid.New(), alice, true)
	pgtest.Must(t, err, "sign in")
	unknownAccount := "lh_refresh_" + strings.Repeat("0", 31) + "1_" + strings.Repeat("a", 64)
	tampered := in.RefreshToken[:len(in.RefreshToken)-1] + "0"
	if tampered == in.RefreshToken {
		tampered = in.RefreshToken[:len(in.RefreshToken)-1] + "1"
	}
	for name, tok := range map[string]string{
		"empty": "", "not a token": "hello", "unknown account": unknownAccount, "tampered": tampered,
		"api key": in.APIKey, "uppercase": strings.ToUpper(in.RefreshToken),
	} {
		if _, err := f.acc.Refresh(t.Context(), uuid.New(), tok); !errors.Is(err, account.ErrRefreshInvalid) {
			t.Errorf("%s: err = %v, want ErrRefreshInvalid", name, err)
		}
	}
	f.clock.advance(account.DefaultKeyIdleTTL)
	if _, err := f.acc.Refresh(t.Context(), uuid.New(), in.RefreshToken); !errors.Is(err, account.ErrRefreshExpired) {
		t.Errorf("expired: err = %v, want ErrRefreshExpired", err)
	}
	if n := len(f.stream(t, "account-"+in.AccountID)); n != 2 {
		t.Errorf("failed refreshes appended events: stream has %d", n)
	}
}

func TestRevoke(t *testing.T) {
	f := newAccounts(t)
	ctx := t.Context()
	a, err := f.acc.SignIn(ctx, uuid.New(), alice, true)
	pgtest.Must(t, err, "sign in a")
	b, err := f.acc.SignIn(ctx, uuid.New(), alice, true)
	pgtest.Must(t, err, "sign in b")
	sessions := sessionIDs(t, f, a.AccountID)

	pos, err := f.acc.RevokeSession(ctx, uuid.New(), a.AccountID, sessions[0])
	if err != nil || pos.IsZero() {
		t.Fatalf("revoke session = %v, %v", pos, err)
	}
	if pos, err := f.acc.RevokeSession(ctx, uuid.New(), a.AccountID, sessions[0]); err != nil || !pos.IsZero() {
		t.Errorf("second revoke = %v, %v; want no change", pos, err)
	}
	if _, err := f.acc.RevokeSession(ctx, uuid.New(), a.AccountID, uuid.NewString()); !errors.Is(err, commands.ErrNotFound) {
		t.Errorf("unknown session: err = %v, want ErrNotFound", err)
	}
	if _, err := f.acc.Refresh(ctx, uuid.New(), a.RefreshToken); !errors.Is(err, account.ErrRefreshInvalid) {
		t.Errorf("refresh of a revoked session: err = %v", err)
	}

	if _, err := f.acc.RevokeRefresh(ctx, uuid.New(), b.RefreshToken); err != nil {
		t.Fatalf("revoke by refresh token: %v", err)
	}
	if _, err := f.acc.Refresh(ctx, uuid.New(), b.RefreshToken); !errors.Is(err, account.ErrRefreshInvalid) {
		t.Errorf("refresh after revoke: err = %v", err)
	}
	if _, err := f.acc.RevokeRefresh(ctx, uuid.New(), "lh_refresh_nope"); !errors.Is(err, account.ErrRefreshInvalid) {
		t.Errorf("malformed: err = %v", err)
	}
	want := []string{events.TypeAccountRegistered, events.TypeSessionStartedV2, events.TypeSessionStartedV2, events.TypeSessionRevoked, events.TypeSessionRevoked}
	if diff := cmp.Diff(want, types(f.stream(t, "account-"+a.AccountID))); diff != "" {
		t.Errorf("account stream (-want +got):\n%s", diff)
	}
}

func sessionIDs(t *testing.T, f accountsFixture, accountID string) []string {
	t.Helper()
	var out []string
	for _, r := range f.stream(t, "account-"+accountID) {
		if r.Type == events.TypeSessionStartedV2 {
			ev, err := events.Decode(r.Type, r.Data)
			pgtest.Must(t, err, "decode")
			out = append(out, ev.(events.SessionStartedV2).SessionID)
		}
	}
	return out
}

func TestSetPlan(t *testing.T) {
	f := newAccounts(t)
	ctx := t.Context()
	in, err := f.acc.SignIn(ctx, uuid.New(), alice, true)
	pgtest.Must(t, err, "sign in")

	var inv domain.Invalid
	if _, err := f.acc.SetPlan(ctx, alice, "agency"); !errors.As(err, &inv) {
		t.Errorf("unknown tier: err = %v, want domain.Invalid", err)
	}
	if _, err := f.acc.SetPlan(ctx, commands.Identifier{Kind: "email", Value: "bob@example.com"}, "pro"); !errors.Is(err, commands.ErrNotFound) {
		t.Errorf("unknown account: err = %v, want ErrNotFound", err)
	}
	pos, err := f.acc.SetPlan(ctx, alice, "pro")
	if err != nil || pos.IsZero() {
		t.Fatalf("set plan = %v, %v", pos, err)
	}
	if pos, err := f.acc.SetPlan(ctx, alice, "pro"); err != nil || !pos.IsZero() {
		t.Errorf("same plan again = %v, %v; want no change", pos, err)
	}
	recs := f.stream(t, "account-"+in.AccountID)
	last := recs[len(recs)-1]
	if len(recs) != 3 || last.Type != events.TypePlanChanged {
		t.Fatalf("account stream = %v", types(recs))
	}
	ev, _ := events.Decode(last.Type, last.Data)
	pro, _ := account.Limits("pro")
	if diff := cmp.Diff(events.PlanChanged{AccountID: in.AccountID, Plan: "pro", PreviousPlan: "free", Limits: pro, At: f.clock.now()}, ev); diff != "" {
		t.Errorf("plan change (-want +got):\n%s", diff)
	}
	md, _ := events.ParseMetadata(last.Metadata)
	if md.Actor != "system:admin" {
		t.Errorf("actor = %q, want system:admin", md.Actor)
	}
}

// TestSignInStampsMetadata checks that the request's metadata reaches the events.
func TestSignInStampsMetadata(t *testing.T) {
	f := newAccounts(t)
	ctx := events.WithMetadata(t.Context(), events.Metadata{CorrelationID: "corr-1", RequestID: "req-1", ClientIP: "203.0.113.9"})
	in, err := f.acc.SignIn(ctx, uuid.New(), alice, true)
	pgtest.Must(t, err, "sign in")
	for _, r := range f.stream(t, "account-"+in.AccountID) {
		md, _ := events.ParseMetadata(r.Metadata)
		if md.CorrelationID != "corr-1" || md.ClientNetwork != "203.0.113.0/24" || md.Actor != events.ActorAnonymous {
			t.Errorf("%s metadata = %+v", r.Type, md)
		}
	}
}

// revocations lists the rows of revoked_credentials as "kind id".
func (f accountsFixture) revocations(t *testing.T) []string {
	t.Helper()
	rows, err := f.pool.Query(t.Context(), `SELECT kind || ' ' || id FROM revoked_credentials ORDER BY kind, id`)
	pgtest.Must(t, err, "read revocations")
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	pgtest.Must(t, err, "read revocations")
	return out
}

func keyID(t *testing.T, f accountsFixture, key string) string {
	t.Helper()
	id, ok := credential.ParseAPIKey(f.keys, key)
	if !ok {
		t.Fatalf("%q is not a key of this keyring", key)
	}
	return id.String()
}

func TestRevocationsAreRecordedBeforeAnswering(t *testing.T) {
	f := newAccounts(t)
	ctx := t.Context()
	a, err := f.acc.SignIn(ctx, uuid.New(), alice, true)
	pgtest.Must(t, err, "sign in")
	r1, err := f.acc.Refresh(ctx, uuid.New(), a.RefreshToken)
	pgtest.Must(t, err, "refresh")
	want := []string{"api_key " + keyID(t, f, a.APIKey)}
	if diff := cmp.Diff(want, f.revocations(t)); diff != "" {
		t.Errorf("after a refresh (-want +got):\n%s", diff)
	}
	_, err = f.acc.Refresh(ctx, uuid.New(), a.RefreshToken)
	if !errors.Is(err, account.ErrRefreshReused) {
		t.Fatalf("reuse: %v", err)
	}
	session := sessionIDs(t, f, a.AccountID)[0]
	want = append(want, "session "+session)
	if diff := cmp.Diff(want, f.revocations(t)); diff != "" {
		t.Errorf("after reuse (-want +got):\n%s", diff)
	}
	// Revoking again, or refreshing the dead session, records it again (idempotent): a request
	// that stopped before recording is completed by any later one.
	_, err = f.pool.Exec(ctx, `DELETE FROM revoked_credentials`)
	pgtest.Must(t, err, "forget revocations")
	if _, err := f.acc.Refresh(ctx, uuid.New(), r1.RefreshToken); !errors.Is(err, account.ErrRefreshInvalid) {
		t.Fatalf("refresh of a revoked session: %v", err)
	}
	if diff := cmp.Diff([]string{"session " + session}, f.revocations(t)); diff != "" {
		t.Errorf("after a refresh of the revoked session (-want +got):\n%s", diff)
	}
}

// failRevocations makes every write of revoked_credentials fail until the returned func runs.
func failRevocations(t *testing.T, f accountsFixture) func() {
	t.Helper()
	for _, q := range []string{
		`CREATE FUNCTION test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$`,
		`CREATE TRIGGER test_refuse BEFORE INSERT ON revoked_credentials FOR EACH ROW EXECUTE FUNCTION test_refuse()`,
	} {
		_, err := f.pool.Exec(t.Context(), q)
		pgtest.Must(t, err, "%s", q)
	}
	return func() {
		_, err := f.pool.Exec(t.Context(), `DROP TRIGGER test_refuse ON revoked_credentials`)
		pgtest.Must(t, err, "drop trigger")
	}
}

func TestUnrecordedRevocationFailsAndARetryCompletesIt(t *testing.T) {
	f := newAccounts(t)
	ctx := t.Context()
	a, err := f.acc.SignIn(ctx, uuid.New(), alice, true)
	pgtest.Must(t, err, "sign in a")
	b, err := f.acc.SignIn(ctx, uuid.New(), alice, true)
	pgtest.Must(t, err, "sign in b")
	restore := failRevocations(t, f)
	revokeCmd, refreshCmd := uuid.New(), uuid.New()
	if _, err := f.acc.RevokeRefresh(ctx, revokeCmd, a.RefreshToken); !errors.Is(err, commands.ErrRevocationUnconfirmed) {
		t.Errorf("revoke: err = %v, want ErrRevocationUnconfirmed", err)
	}
	if res, err := f.acc.Refresh(ctx, refreshCmd, b.RefreshToken); !errors.Is(err, commands.ErrRevocationUnconfirmed) || res.APIKey != "" {
		t.Errorf("refresh: %+v, %v; want no credentials and ErrRevocationUnconfirmed", res, err)
	}
	restore()

	// The retries (same command IDs, not confirmed by the idempotency layer: the 503 removed
	// its row) complete what the first attempts stored.
	if _, err := f.acc.RevokeRefresh(ctx, revokeCmd, a.RefreshToken); err != nil {
		t.Errorf("revoke retried: %v", err)
	}
	res, err := f.acc.Refresh(ctx, refreshCmd, b.RefreshToken)
	if err != nil || !commands.ValidAPIKey(res.APIKey) {
		t.Fatalf("refresh retried = %+v, %v", res, err)
	}
	sessions := sessionIDs(t, f, a.AccountID)
	want := []string{"api_key " + keyID(t, f, b.APIKey), "session " + sessions[0]}
	if diff := cmp.Diff(want, f.revocations(t)); diff != "" {
		t.Errorf("revocations (-want +got):\n%s", diff)
	}
	// Now that it was answered, the same refresh again is no retry of an unanswered one: reuse.
	if _, err := f.acc.Refresh(ctx, refreshCmd, b.RefreshToken); !errors.Is(err, account.ErrRefreshReused) {
		t.Errorf("unconfirmed replay of an answered refresh: err = %v, want ErrRefreshReused", err)
	}
	if _, err := f.acc.Refresh(ctx, uuid.New(), res.RefreshToken); !errors.Is(err, account.ErrRefreshInvalid) {
		t.Errorf("the rotated token after reuse: err = %v, want ErrRefreshInvalid", err)
	}
}

// TestFirstReleaseSessionsAreRetired: a session started under the first credential format
// (account.session_started.v1) is no session any more: a sign-in retried under its command ID
// cannot show its key again and answers ErrSessionRetired, and a new sign-in works.
func TestFirstReleaseSessionsAreRetired(t *testing.T) {
	f := newAccounts(t)
	ctx := t.Context()
	cmd := uuid.New()
	identity := "identity-" + f.keys.Hash(secret.PurposeIdentifier, alice.Value)
	accountID := uuid.NewSHA1(cmd, []byte("account:"+identity)).String()
	stream := "account-" + accountID
	at := f.clock.now()
	old := []events.Event{
		events.AccountRegistered{AccountID: accountID, Email: alice.Value, Plan: "free", Limits: events.PlanLimits{MaxProjects: 3}, At: at},
		events.SessionStarted{AccountID: accountID, SessionID: uuid.NewString(), KeyHash: "h1", ExpiresAt: at.Add(7 * 24 * time.Hour),
			RefreshHash: "h2", RefreshExpiresAt: at.Add(account.RefreshTTL), At: at},
	}
	appendAs := func(stream string, evs ...events.Event) {
		data := make([]events.EventData, len(evs))
		for i, ev := range evs {
			d, err := events.Encode(ev, commands.EventID(cmd, stream, i), events.Metadata{})
			pgtest.Must(t, err, "encode")
			data[i] = d
		}
		_, err := f.store.Append(ctx, stream, events.NoStream(), data)
		pgtest.Must(t, err, "append %s", stream)
	}
	appendAs(identity, events.IdentityClaimed{AccountID: accountID, Kind: commands.IdentifierEmail, At: at})
	appendAs(stream, old...)

	if _, err := f.acc.SignIn(ctx, cmd, alice, true); !errors.Is(err, account.ErrSessionRetired) {
		t.Errorf("retried first-release sign-in: err = %v, want ErrSessionRetired", err)
	}
	in, err := f.acc.SignIn(ctx, uuid.New(), alice, true)
	pgtest.Must(t, err, "new sign-in")
	if in.AccountID != accountID || in.AccountCreated {
		t.Errorf("new sign-in = %+v, want a session of the existing account", in)
	}
	if _, err := f.acc.Refresh(ctx, uuid.New(), in.RefreshToken); err != nil {
		t.Errorf("refresh of the new session: %v", err)
	}
}

// TestRenewKey: a key in use renews once a day; a revoked, rotated-away or expired key never.
func TestRenewKey(t *testing.T) {
	f := newAccounts(t)
	ctx := t.Context()
	sessionOf := func(in commands.SignInResult) (sessionID, keyID string) {
		id, ok := credential.ParseAPIKey(f.keys, in.APIKey)
		if !ok {
			t.Fatalf("key %q does not parse", in.APIKey)
		}
		for _, r := range f.stream(t, "account-"+in.AccountID) {
			ev, err := events.Decode(r.Type, r.Data)
			pgtest.Must(t, err, "decode")
			if e, ok := ev.(events.SessionStartedV2); ok && e.KeyID == id.String() {
				return e.SessionID, e.KeyID
			}
		}
		t.Fatal("no session for the key")
		return "", ""
	}
	renewals := func(accountID string) int {
		n := 0
		for _, r := range f.stream(t, "account-"+accountID) {
			if r.Type == events.TypeSessionExtended {
				n++
			}
		}
		return n
	}
	live, err := f.acc.SignIn(ctx, uuid.New(), alice, true)
	pgtest.Must(t, err, "sign in")
	revoked, err := f.acc.SignIn(ctx, uuid.New(), alice, true)
	pgtest.Must(t, err, "sign in")
	liveSession, liveKey := sessionOf(live)
	revokedSession, revokedKey := sessionOf(revoked)
	_, err = f.acc.RevokeSession(ctx, uuid.New(), revoked.AccountID, revokedSession)
	pgtest.Must(t, err, "revoke")

	f.clock.advance(30 * 24 * time.Hour)
	want := f.clock.now().Add(account.DefaultKeyIdleTTL) // later calls that day answer the same renewal
	for range 3 {
		got, err := f.acc.RenewKey(ctx, live.AccountID, liveSession, liveKey)
		pgtest.Must(t, err, "renew")
		if !got.Equal(want) {
			t.Errorf("renewed expiry = %s, want %s", got, want)
		}
		f.clock.advance(time.Hour)
	}
	if n := renewals(live.AccountID); n != 1 {
		t.Errorf("%d renewals on one day, want 1", n)
	}
	if got, err := f.acc.RenewKey(ctx, revoked.AccountID, revokedSession, revokedKey); err != nil || !got.IsZero() {
		t.Errorf("renew a revoked key = %s, %v", got, err)
	}
	if n := renewals(live.AccountID); n != 1 {
		t.Errorf("a revoked key was renewed: %d renewals", n)
	}
	// A rotated-away key: the session's new key renews, the old one does not.
	rot, err := f.acc.Refresh(ctx, uuid.New(), live.RefreshToken)
	pgtest.Must(t, err, "refresh")
	f.clock.advance(30 * 24 * time.Hour)
	if got, err := f.acc.RenewKey(ctx, live.AccountID, liveSession, liveKey); err != nil || !got.IsZero() {
		t.Errorf("renew a rotated-away key = %s, %v", got, err)
	}
	if n := renewals(live.AccountID); n != 1 {
		t.Errorf("a rotated-away key was renewed: %d renewals", n)
	}
	// Expired: the new key unused for longer than the window is never brought back.
	f.clock.advance(account.DefaultKeyIdleTTL)
	newKey, _ := credential.ParseAPIKey(f.keys, rot.APIKey)
	if _, err := f.acc.RenewKey(ctx, live.AccountID, liveSession, newKey.String()); err != nil {
		t.Fatal(err)
	}
	if n := renewals(live.AccountID); n != 1 {
		t.Errorf("an expired key was renewed: %d renewals", n)
	}
}
