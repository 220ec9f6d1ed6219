package commands

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/litehost/litehost/domain"
	"github.com/litehost/litehost/domain/account"
	"github.com/litehost/litehost/events"
	"github.com/litehost/litehost/events/secret"
	"github.com/litehost/litehost/internal/credential"
)

// Credential formats (internal/credential): an API key is "lh_live_" + 64 lowercase hex ending
// in a CRC-32; a refresh token names its account ("lh_refresh_<account uuid hex>_<64 hex>") so
// that a refresh or revoke can load the account's stream directly: the event stream, not a read
// model, decides whether the token is current, rotated away (reuse) or unknown.
const (
	APIKeyPrefix       = credential.APIKeyPrefix
	RefreshTokenPrefix = credential.RefreshTokenPrefix
)

// Accounts handles sign-in, session refresh and revocation, and plan changes.
type Accounts struct {
	store   EventStore
	exec    *Executor
	keys    *secret.Keyring
	revoked Revocations
	now     func() time.Time
	idle    time.Duration // how long a key lives without use (LITEHOST_KEY_IDLE_TTL)
	trial   time.Duration // the trial of a new account (LITEHOST_TRIAL); 0: starts on free
}

// NewAccounts returns the account command handlers over store. revoked is where revocations are
// recorded for every instance before a revoke or refresh answers. Keys live
// account.DefaultKeyIdleTTL without use, and new accounts start on free, until WithKeyIdleTTL
// and WithTrial say otherwise.
func NewAccounts(store EventStore, keys *secret.Keyring, revoked Revocations, now func() time.Time) *Accounts {
	return &Accounts{store: store, exec: NewExecutor(store), keys: keys, revoked: revoked, now: now, idle: account.DefaultKeyIdleTTL}
}

// WithKeyIdleTTL sets how long a key lives without use; d <= 0 keeps the default.
func (a *Accounts) WithKeyIdleTTL(d time.Duration) *Accounts {
	if d > 0 {
		a.idle = d
	}
	return a
}

// WithTrial gives new accounts a trial of d on account.TrialTier; d <= 0 means none.
func (a *Accounts) WithTrial(d time.Duration) *Accounts {
	a.trial = max(d, 0)
	return a
}

// KeyIdleTTL is how long a key lives without use.
func (a *Accounts) KeyIdleTTL() time.Duration { return a.idle }

// renewNamespace seeds the command IDs of session renewals.
var renewNamespace = uuid.MustParse("8f0b7c52-3f3e-4a57-9d0e-6c1a2b4e7d19")

// RenewKey renews the session of a key that was just used (account.Extend) and returns the key's
// expiry after it (zero for a revoked session or a rotated-away key). It appends at most one
// account.session_extended.v1 per key and UTC day, on every instance together: the command ID is
// derived from the key and the day, so a second attempt is a replay, and a concurrent one
// re-decides on the stream and finds the renewal made. A revoked, rotated-away or expired key is
// not renewed.
func (a *Accounts) RenewKey(ctx context.Context, accountID, sessionID, keyID string) (time.Time, error) {
	now := a.now().UTC()
	cmd := uuid.NewSHA1(renewNamespace, []byte(keyID+"/"+now.Format(time.DateOnly)))
	md := events.MetadataFrom(ctx)
	if md.Actor == "" {
		md.Actor = events.AccountActor(accountID)
	}
	ctx = events.WithMetadata(ctx, md)
	var seen account.Session
	res, err := a.exec.Execute(ctx, cmd, accountStream(accountID), func(s Stream) ([]events.Event, error) {
		st := account.Replay(s.Events)
		seen = st.Sessions[sessionID]
		return account.Extend(st, sessionID, keyID, a.idle, now)
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("renew session %s: %w", sessionID, err)
	}
	for _, e := range res.Events {
		if e, ok := e.(events.SessionExtended); ok {
			return e.ExpiresAt, nil
		}
	}
	if seen.Revoked || seen.KeyID != keyID {
		return time.Time{}, nil
	}
	return seen.ExpiresAt, nil
}

// SignIn starts a session for a verified identifier: into its account when there is one,
// otherwise (autoCreate) into a new free account, otherwise ErrSignupDisabled. The identifier's
// reservation stream makes two racing first sign-ins create one account: the loser signs into
// the winner's. A retry with the same commandID returns the same result, key included.
func (a *Accounts) SignIn(ctx context.Context, commandID uuid.UUID, id Identifier, autoCreate bool) (SignInResult, error) {
	if err := validIdentifier(id); err != nil {
		return SignInResult{}, err
	}
	accountID, err := a.claimIdentity(ctx, commandID, id, autoCreate)
	if err != nil {
		return SignInResult{}, err
	}
	email, phone := "", ""
	if id.Kind == IdentifierEmail {
		email = id.Value
	} else {
		phone = id.Value
	}
	ids := issueIDs(accountID, commandID)
	key, refresh := a.credentials(accountID, ids)
	sessionID := uuid.NewSHA1(commandID, []byte("session:"+accountID)).String()
	stream := accountStream(accountID)
	res, err := a.exec.Execute(ctx, commandID, stream, func(s Stream) ([]events.Event, error) {
		st := account.Replay(s.Events)
		// The identity was claimed for this account, so an account stream that is still empty
		// (its first sign-in stopped between the two appends) is registered now.
		evs, err := account.Register(st, accountID, email, phone, a.trial, a.now())
		if err != nil {
			return nil, err
		}
		for _, e := range evs {
			st = account.Evolve(st, e)
		}
		started, err := account.StartSession(st, sessionID, ids.key.String(), ids.refresh.String(), a.idle, a.now())
		if err != nil {
			return nil, err
		}
		return append(evs, started...), nil
	})
	if err != nil {
		return SignInResult{}, fmt.Errorf("sign in: %w", err)
	}
	out := SignInResult{AccountID: accountID, APIKey: key, RefreshToken: refresh, Position: res.Position}
	for _, e := range res.Events {
		switch e := e.(type) {
		case events.AccountRegistered:
			out.AccountCreated = true
		case events.SessionStartedV2:
			out.ExpiresAt, out.RefreshExpiresAt = e.ExpiresAt, e.RefreshExpiresAt
		case events.SessionStarted:
			// A retry of a sign-in answered before the credential format changed: its key was of
			// the retired format and cannot be shown again.
			return SignInResult{}, account.ErrSessionRetired
		}
	}
	if out.ExpiresAt.IsZero() {
		return SignInResult{}, fmt.Errorf("sign in %s: no session was started", stream)
	}
	out.Email, out.Phone = email, phone
	return out, nil
}

// ErrSessionStartedBefore is returned by StartSession when its command already started the
// session: for a one-time grant (an OAuth authorization code) that is a second use.
var ErrSessionStartedBefore = errors.New("this session was already started")

// StartSession starts a new session (API key and refresh token) in an existing account, for a
// sign-in that was proven elsewhere (the OAuth authorization code of the browser sign-in page).
// The session's ID comes from commandID, so the same command twice starts one session: the
// second call fails with ErrSessionStartedBefore and names the session in SessionID, for the
// caller to revoke. An unknown account is ErrNotFound.
func (a *Accounts) StartSession(ctx context.Context, commandID uuid.UUID, accountID string) (SignInResult, error) {
	if _, err := uuid.Parse(accountID); err != nil {
		return SignInResult{}, ErrNotFound
	}
	ids := issueIDs(accountID, commandID)
	sessionID := uuid.NewSHA1(commandID, []byte("session:"+accountID)).String()
	res, err := a.exec.Execute(ctx, commandID, accountStream(accountID), func(s Stream) ([]events.Event, error) {
		st := account.Replay(s.Events)
		if _, ok := st.Sessions[sessionID]; ok {
			return nil, ErrSessionStartedBefore
		}
		return account.StartSession(st, sessionID, ids.key.String(), ids.refresh.String(), a.idle, a.now())
	})
	switch {
	case errors.Is(err, account.ErrNotRegistered):
		return SignInResult{}, ErrNotFound
	case errors.Is(err, ErrSessionStartedBefore):
		return SignInResult{AccountID: accountID, SessionID: sessionID}, err
	case err != nil:
		return SignInResult{}, fmt.Errorf("start session: %w", err)
	case res.Replayed:
		return SignInResult{AccountID: accountID, SessionID: sessionID, Position: res.Position}, ErrSessionStartedBefore
	}
	out := SignInResult{AccountID: accountID, SessionID: sessionID, Position: res.Position}
	for _, e := range res.Events {
		if e, ok := e.(events.SessionStartedV2); ok {
			out.ExpiresAt, out.RefreshExpiresAt = e.ExpiresAt, e.RefreshExpiresAt
		}
	}
	if out.ExpiresAt.IsZero() {
		return SignInResult{}, fmt.Errorf("start session in %s: no session was started", accountID)
	}
	out.APIKey, out.RefreshToken = a.credentials(accountID, ids)
	return out, nil
}

// claimIdentity returns the account of id, reserving the identifier for a new account if it has
// none and autoCreate allows.
func (a *Accounts) claimIdentity(ctx context.Context, commandID uuid.UUID, id Identifier, autoCreate bool) (string, error) {
	stream := a.identityStream(id)
	owner, err := a.identityOwner(ctx, stream)
	if err != nil || owner != "" {
		return owner, err
	}
	if !autoCreate {
		return "", ErrSignupDisabled
	}
	accountID := uuid.NewSHA1(commandID, []byte("account:"+stream)).String()
	res, err := a.exec.AppendNew(ctx, commandID, stream, []events.Event{
		events.IdentityClaimed{AccountID: accountID, Kind: id.Kind, At: a.now().UTC()},
	})
	if errors.Is(err, events.ErrWrongExpectedVersion) {
		// Another sign-in claimed it first: sign into that account.
		owner, err = a.identityOwner(ctx, stream)
		if err == nil && owner == "" {
			err = fmt.Errorf("claim %s: lost the race but found no claim", stream)
		}
		return owner, err
	}
	if err != nil {
		return "", fmt.Errorf("claim identity: %w", err)
	}
	for _, e := range res.Events { // a replay returns the claim this command made
		if c, ok := e.(events.IdentityClaimed); ok {
			return c.AccountID, nil
		}
	}
	return accountID, nil
}

// identityOwner returns the account that claimed the identity stream, or "" if none did.
func (a *Accounts) identityOwner(ctx context.Context, stream string) (string, error) {
	s, err := Load(ctx, a.store, stream)
	if err != nil {
		return "", err
	}
	for _, e := range s.Events {
		if c, ok := e.(events.IdentityClaimed); ok {
			return c.AccountID, nil
		}
	}
	return "", nil
}

func (a *Accounts) identityStream(id Identifier) string {
	return "identity-" + a.keys.Hash(secret.PurposeIdentifier, id.Value)
}

func accountStream(accountID string) string { return "account-" + accountID }

// Refresh rotates the session of refreshToken: a new API key and refresh token, the old ones
// dead on every instance before it returns. A refresh token that was already rotated away
// revokes its whole session and fails with account.ErrRefreshReused. The same refresh again
// (same command ID) shows the same new credentials only while they are still the session's
// current ones and the request is a confirmed retry (AnsweredBefore: the idempotency layer saw
// the same request answered within the key's lifetime), or its first attempt never answered
// (the rotation's revocation was never recorded); any other replay presents a token that was
// rotated away, which is reuse. A revocation that cannot be recorded fails with
// ErrRevocationUnconfirmed, and no credential is shown.
func (a *Accounts) Refresh(ctx context.Context, commandID uuid.UUID, refreshToken string) (SignInResult, error) {
	acc, tokenID, ok := credential.ParseRefreshToken(a.keys, refreshToken)
	if !ok {
		return SignInResult{}, account.ErrRefreshInvalid
	}
	accountID, stream := acc.String(), accountStream(acc.String())
	// Scoped to the token: one command ID used on two sessions must not look like a replay.
	cmd := uuid.NewSHA1(commandID, []byte("refresh:"+tokenID.String()))
	ids := issueIDs(accountID, cmd)
	var seen account.State
	res, err := a.exec.Execute(ctx, cmd, stream, func(s Stream) ([]events.Event, error) {
		seen = account.Replay(s.Events)
		return account.Refresh(seen, tokenID.String(), ids.key.String(), ids.refresh.String(), a.idle, a.now())
	})
	if ss, ok := seen.SessionByRefresh(tokenID.String()); ok && ss.Revoked && errors.Is(err, account.ErrRefreshInvalid) {
		// Record it again: the request that revoked the session may have stopped before it could.
		if err := a.record(ctx, Revocation{ID: ss.ID, Kind: RevokedSession, AccountID: accountID, At: a.now().UTC()}); err != nil {
			return SignInResult{}, err
		}
	}
	if err != nil {
		return SignInResult{}, fmt.Errorf("refresh: %w", err)
	}
	var rotation *events.SessionRefreshedV2
	for _, e := range res.Events {
		switch e := e.(type) {
		case events.SessionRevoked:
			return a.reused(ctx, accountID, e, res.Position)
		case events.SessionRefreshedV2:
			rotation = &e
		}
	}
	if rotation == nil {
		return SignInResult{}, fmt.Errorf("refresh %s: no rotation was recorded", stream)
	}
	if res.Replayed {
		again, err := a.refreshAgain(ctx, cmd, stream, *rotation)
		if err != nil {
			return SignInResult{}, err
		}
		for _, e := range again.Events {
			if e, ok := e.(events.SessionRevoked); ok {
				return a.reused(ctx, accountID, e, again.Position)
			}
		}
	}
	// The old key is refused everywhere before the new one is shown.
	if err := a.record(ctx, Revocation{ID: rotation.PreviousKeyID, Kind: RevokedAPIKey, AccountID: accountID, At: rotation.At}); err != nil {
		return SignInResult{}, err
	}
	key, refresh := a.credentials(accountID, ids)
	return SignInResult{
		AccountID: accountID, APIKey: key, ExpiresAt: rotation.ExpiresAt,
		RefreshToken: refresh, RefreshExpiresAt: rotation.RefreshExpiresAt, Position: res.Position,
	}, nil
}

// refreshAgain decides a refresh whose rotation is already stored (account.RefreshAgain), under
// a command ID of its own so that a revocation for reuse is appended once.
func (a *Accounts) refreshAgain(ctx context.Context, cmd uuid.UUID, stream string, done events.SessionRefreshedV2) (Result, error) {
	confirmed := AnsweredBefore(ctx)
	if !confirmed {
		// A first attempt that stopped between its append and its revocation row never showed
		// the new credentials to anyone, so finishing it is still the same request.
		recorded, err := a.revoked.Recorded(ctx, done.PreviousKeyID)
		if err != nil {
			return Result{}, fmt.Errorf("refresh: %w: %w", ErrRevocationUnconfirmed, err)
		}
		confirmed = !recorded
	}
	res, err := a.exec.Execute(ctx, uuid.NewSHA1(cmd, []byte("again")), stream, func(s Stream) ([]events.Event, error) {
		return account.RefreshAgain(account.Replay(s.Events), done, confirmed, a.now())
	})
	if err != nil {
		return Result{}, fmt.Errorf("refresh: %w", err)
	}
	return res, nil
}

// reused finishes a refresh that found reuse: the session is revoked everywhere, then the caller
// hears ErrRefreshReused.
func (a *Accounts) reused(ctx context.Context, accountID string, e events.SessionRevoked, pos events.Position) (SignInResult, error) {
	if err := a.record(ctx, Revocation{ID: e.SessionID, Kind: RevokedSession, AccountID: accountID, At: e.At}); err != nil {
		return SignInResult{}, err
	}
	return SignInResult{AccountID: accountID, Position: pos}, account.ErrRefreshReused
}

// record stores revocations for every instance, or fails with ErrRevocationUnconfirmed.
func (a *Accounts) record(ctx context.Context, rs ...Revocation) error {
	if err := a.revoked.Record(ctx, rs...); err != nil {
		return fmt.Errorf("%w: %w", ErrRevocationUnconfirmed, err)
	}
	return nil
}

// RevokeSession ends one session of an account (the caller's own, from its API key), on every
// instance before it returns. Revoking a revoked session succeeds without change (and records
// the revocation again, in case an earlier attempt could not).
func (a *Accounts) RevokeSession(ctx context.Context, commandID uuid.UUID, accountID, sessionID string) (events.Position, error) {
	cmd := uuid.NewSHA1(commandID, []byte("revoke-session:"+sessionID))
	res, err := a.exec.Execute(ctx, cmd, accountStream(accountID), func(s Stream) ([]events.Event, error) {
		return account.Revoke(account.Replay(s.Events), sessionID, events.RevokeReasonClient, a.now())
	})
	if errors.Is(err, account.ErrSessionNotFound) {
		return events.Position{}, ErrNotFound
	}
	if err != nil {
		return events.Position{}, fmt.Errorf("revoke session: %w", err)
	}
	if err := a.record(ctx, Revocation{ID: sessionID, Kind: RevokedSession, AccountID: accountID, At: a.now().UTC()}); err != nil {
		return events.Position{}, err
	}
	return res.Position, nil
}

// RevokeRefresh ends the session a refresh token belongs to, whether the token is current or
// was rotated away, on every instance before it returns. An unknown token fails with
// account.ErrRefreshInvalid.
func (a *Accounts) RevokeRefresh(ctx context.Context, commandID uuid.UUID, refreshToken string) (events.Position, error) {
	acc, tokenID, ok := credential.ParseRefreshToken(a.keys, refreshToken)
	if !ok {
		return events.Position{}, account.ErrRefreshInvalid
	}
	accountID := acc.String()
	cmd := uuid.NewSHA1(commandID, []byte("revoke-refresh:"+tokenID.String()))
	var sessionID string
	res, err := a.exec.Execute(ctx, cmd, accountStream(accountID), func(s Stream) ([]events.Event, error) {
		st := account.Replay(s.Events)
		ss, ok := st.SessionByRefresh(tokenID.String())
		if !ok {
			return nil, account.ErrRefreshInvalid
		}
		sessionID = ss.ID
		return account.Revoke(st, ss.ID, events.RevokeReasonClient, a.now())
	})
	if err != nil {
		return events.Position{}, fmt.Errorf("revoke refresh token: %w", err)
	}
	for _, e := range res.Events { // a replay does not decide again: its event names the session
		if e, ok := e.(events.SessionRevoked); ok {
			sessionID = e.SessionID
		}
	}
	if err := a.record(ctx, Revocation{ID: sessionID, Kind: RevokedSession, AccountID: accountID, At: a.now().UTC()}); err != nil {
		return events.Position{}, err
	}
	return res.Position, nil
}

// SetPlan moves the account of id to tier (litehost admin set-plan). An unknown tier is
// domain.Invalid, an unknown identifier ErrNotFound; the current plan changes nothing and
// returns the zero Position. The command ID comes from ctx (CommandIDFrom).
func (a *Accounts) SetPlan(ctx context.Context, id Identifier, tier string) (events.Position, error) {
	if _, ok := account.Limits(tier); !ok {
		return events.Position{}, domain.Invalid{"tier": "unknown tier; one of " + strings.Join(account.Tiers(), ", ")}
	}
	if err := validIdentifier(id); err != nil {
		return events.Position{}, err
	}
	accountID, err := a.identityOwner(ctx, a.identityStream(id))
	if err != nil {
		return events.Position{}, fmt.Errorf("set plan: %w", err)
	}
	if accountID == "" {
		return events.Position{}, ErrNotFound
	}
	md := events.MetadataFrom(ctx)
	if md.Actor == "" {
		md.Actor = events.SystemActor("admin")
		ctx = events.WithMetadata(ctx, md)
	}
	res, err := a.exec.Execute(ctx, CommandIDFrom(ctx), accountStream(accountID), func(s Stream) ([]events.Event, error) {
		return account.ChangePlan(account.Replay(s.Events), tier, a.now())
	})
	if errors.Is(err, account.ErrNotRegistered) {
		return events.Position{}, ErrNotFound
	}
	if err != nil {
		return events.Position{}, fmt.Errorf("set plan: %w", err)
	}
	return res.Position, nil
}

func validIdentifier(id Identifier) error {
	switch {
	case id.Kind != IdentifierEmail && id.Kind != IdentifierPhone:
		return domain.Invalid{"identifier": "kind must be email or phone"}
	case id.Value == "":
		return domain.Invalid{id.Kind: "required"}
	}
	return nil
}

// issued names the credentials a command hands out.
type issued struct {
	key, refresh uuid.UUID
}

// issueIDs derives the IDs of the credentials a command hands out for an account. They come from
// the command ID, so a replayed command (same Idempotency-Key, hence same command ID) re-derives
// and re-shows the same credentials instead of failing. The IDs are not secret: the MAC that
// credential adds under the server secret is what makes a credential unguessable.
func issueIDs(accountID string, commandID uuid.UUID) issued {
	return issued{
		key:     uuid.NewSHA1(commandID, []byte("api-key:"+accountID)),
		refresh: uuid.NewSHA1(commandID, []byte("refresh-token:"+accountID)),
	}
}

// credentials renders the API key and refresh token of ids.
func (a *Accounts) credentials(accountID string, ids issued) (apiKey, refreshToken string) {
	return credential.NewAPIKey(a.keys, ids.key), credential.NewRefreshToken(a.keys, uuid.MustParse(accountID), ids.refresh)
}

// ValidAPIKey reports whether s has the shape and checksum of an API key.
func ValidAPIKey(s string) bool { return credential.WellFormedAPIKey(s) }
