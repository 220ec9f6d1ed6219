package commands

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/litehost/litehost/domain"
	"github.com/litehost/litehost/domain/account"
	"github.com/litehost/litehost/events"
	"github.com/litehost/litehost/events/secret"
)

// Credential formats. An API key is "lh_live_" + 64 lowercase hex whose last 8 are the CRC-32 of
// the first 56, so a scanner can tell a real leaked key from random hex without asking us. A
// refresh token names its account ("lh_refresh_<account uuid hex>_<64 hex>") so that a refresh
// or revoke can load the account's stream directly: the event stream, not a read model, decides
// whether the token is current, rotated away (reuse) or unknown.
const (
	APIKeyPrefix       = "lh_live_"
	RefreshTokenPrefix = "lh_refresh_"
)

// Derivation purposes of the keyring. Issued credentials are HMACs of the account and the
// command ID, so a replayed command (same Idempotency-Key, hence same command ID) re-derives and
// re-shows the same key instead of failing; the server secret keeps them unguessable. They differ
// from secret.PurposeAPIKey and secret.PurposeRefresh, the purposes of the stored hashes.
const (
	purposeIssueKey     = "issue-api-key"
	purposeIssueRefresh = "issue-refresh-token"
)

// Accounts handles sign-in, session refresh and revocation, and plan changes.
type Accounts struct {
	store EventStore
	exec  *Executor
	keys  *secret.Keyring
	now   func() time.Time
}

// NewAccounts returns the account command handlers over store.
func NewAccounts(store EventStore, keys *secret.Keyring, now func() time.Time) *Accounts {
	return &Accounts{store: store, exec: NewExecutor(store), keys: keys, now: now}
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
	key, refresh := a.issue(accountID, commandID)
	sessionID := uuid.NewSHA1(commandID, []byte("session:"+accountID)).String()
	stream := accountStream(accountID)
	res, err := a.exec.Execute(ctx, commandID, stream, func(s Stream) ([]events.Event, error) {
		st := account.Replay(s.Events)
		// The identity was claimed for this account, so an account stream that is still empty
		// (its first sign-in stopped between the two appends) is registered now.
		evs, err := account.Register(st, accountID, email, phone, a.now())
		if err != nil {
			return nil, err
		}
		for _, e := range evs {
			st = account.Evolve(st, e)
		}
		started, err := account.StartSession(st, sessionID,
			a.keys.Hash(secret.PurposeAPIKey, key), a.keys.Hash(secret.PurposeRefresh, refresh), a.now())
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
		case events.SessionStarted:
			out.ExpiresAt, out.RefreshExpiresAt = e.ExpiresAt, e.RefreshExpiresAt
		}
	}
	if out.ExpiresAt.IsZero() {
		return SignInResult{}, fmt.Errorf("sign in %s: no session was started", stream)
	}
	out.Email, out.Phone = email, phone
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
// dead. A refresh token that was already rotated away revokes its whole session and fails with
// account.ErrRefreshReused; the result then carries the revocation's Position so that the answer
// can wait for the read models to drop the session's key.
func (a *Accounts) Refresh(ctx context.Context, commandID uuid.UUID, refreshToken string) (SignInResult, error) {
	accountID, ok := parseRefreshToken(refreshToken)
	if !ok {
		return SignInResult{}, account.ErrRefreshInvalid
	}
	hash := a.keys.Hash(secret.PurposeRefresh, refreshToken)
	// Scoped to the token: one command ID used on two sessions must not look like a replay.
	cmd := uuid.NewSHA1(commandID, []byte("refresh:"+hash))
	key, refresh := a.issue(accountID, cmd)
	res, err := a.exec.Execute(ctx, cmd, accountStream(accountID), func(s Stream) ([]events.Event, error) {
		return account.Refresh(account.Replay(s.Events), hash,
			a.keys.Hash(secret.PurposeAPIKey, key), a.keys.Hash(secret.PurposeRefresh, refresh), a.now())
	})
	if err != nil {
		return SignInResult{}, fmt.Errorf("refresh: %w", err)
	}
	for _, e := range res.Events {
		switch e := e.(type) {
		case events.SessionRevoked:
			return SignInResult{AccountID: accountID, Position: res.Position}, account.ErrRefreshReused
		case events.SessionRefreshed:
			return SignInResult{
				AccountID: accountID, APIKey: key, ExpiresAt: e.ExpiresAt,
				RefreshToken: refresh, RefreshExpiresAt: e.RefreshExpiresAt, Position: res.Position,
			}, nil
		}
	}
	return SignInResult{}, fmt.Errorf("refresh %s: no rotation was recorded", accountStream(accountID))
}

// RevokeSession ends one session of an account (the caller's own, from its API key). Revoking a
// revoked session succeeds without change.
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
	return res.Position, nil
}

// RevokeRefresh ends the session a refresh token belongs to, whether the token is current or
// was rotated away. An unknown token fails with account.ErrRefreshInvalid.
func (a *Accounts) RevokeRefresh(ctx context.Context, commandID uuid.UUID, refreshToken string) (events.Position, error) {
	accountID, ok := parseRefreshToken(refreshToken)
	if !ok {
		return events.Position{}, account.ErrRefreshInvalid
	}
	hash := a.keys.Hash(secret.PurposeRefresh, refreshToken)
	cmd := uuid.NewSHA1(commandID, []byte("revoke-refresh:"+hash))
	res, err := a.exec.Execute(ctx, cmd, accountStream(accountID), func(s Stream) ([]events.Event, error) {
		st := account.Replay(s.Events)
		ss, ok := st.SessionByRefresh(hash)
		if !ok {
			return nil, account.ErrRefreshInvalid
		}
		return account.Revoke(st, ss.ID, events.RevokeReasonClient, a.now())
	})
	if err != nil {
		return events.Position{}, fmt.Errorf("revoke refresh token: %w", err)
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

// issue derives the API key and refresh token a command hands out for an account.
func (a *Accounts) issue(accountID string, commandID uuid.UUID) (apiKey, refreshToken string) {
	seed := accountID + "/" + commandID.String()
	body := a.keys.Hash(purposeIssueKey, seed)[:56]
	apiKey = APIKeyPrefix + body + fmt.Sprintf("%08x", crc32.ChecksumIEEE([]byte(body)))
	refreshToken = RefreshTokenPrefix + strings.ReplaceAll(accountID, "-", "") + "_" + a.keys.Hash(purposeIssueRefresh, seed)
	return apiKey, refreshToken
}

// ValidAPIKey reports whether s has the shape and checksum of an API key.
func ValidAPIKey(s string) bool {
	body, ok := strings.CutPrefix(s, APIKeyPrefix)
	if !ok || len(body) != 64 || !lowerHex(body) {
		return false
	}
	return fmt.Sprintf("%08x", crc32.ChecksumIEEE([]byte(body[:56]))) == body[56:]
}

// parseRefreshToken returns the account ID a well-formed refresh token names.
func parseRefreshToken(s string) (string, bool) {
	rest, ok := strings.CutPrefix(s, RefreshTokenPrefix)
	if !ok || len(rest) != 32+1+64 || rest[32] != '_' || !lowerHex(rest[:32]) || !lowerHex(rest[33:]) {
		return "", false
	}
	id, err := uuid.Parse(rest[:32])
	if err != nil {
		return "", false
	}
	return id.String(), true
}

func lowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
