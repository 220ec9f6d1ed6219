package commands

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/litehost/litehost/domain/project"
	"github.com/litehost/litehost/events"
	"github.com/litehost/litehost/internal/sitepassword"
)

// HashSitePassword returns the argon2id PHC string of pw (OWASP's parameters, a random salt),
// unsealed: what goes into an event is sealSitePassword's output.
func HashSitePassword(pw string) (string, error) { return sitepassword.Hash(pw) }

// sealSitePassword hashes pw and seals the hash under the server secret, so the event log and
// everything projected from it hold no crackable hash.
func (p *Projects) sealSitePassword(pw string) (string, error) {
	phc, err := sitepassword.Hash(pw)
	if err != nil {
		return "", err
	}
	return sitepassword.Seal(p.keys, phc), nil
}

// rehashNamespace derives the command ID of a rehash from the project and the replaced value, so
// that two instances (or two requests) rehashing the same old hash append once.
var rehashNamespace = uuid.MustParse("6f1d0a4e-2c9b-4e57-9a3d-81c4b7e2f605")

// RehashSitePassword replaces a project's stored password hash old (unsealed, or made with old
// parameters) by password hashed with today's parameters and sealed. The site server calls it
// after password was checked against old. It appends as the system (actor
// system:site-password-rehash) and is idempotent: once old is gone nothing more is appended.
func (p *Projects) RehashSitePassword(ctx context.Context, projectID, old, password string) error {
	next, err := p.sealSitePassword(password)
	if err != nil {
		return err
	}
	commandID := uuid.NewSHA1(rehashNamespace, []byte(projectID+"\x00"+old))
	md := events.Metadata{Actor: events.SystemActor("site-password-rehash"), CorrelationID: commandID.String()}
	ctx = events.WithMetadata(ctx, md)
	_, err = p.exec.Execute(ctx, commandID, project.Stream(projectID), func(s Stream) ([]events.Event, error) {
		return project.RehashPassword(project.Replay(s.Events), old, next, p.now().UTC()), nil
	})
	if err != nil {
		return fmt.Errorf("rehash site password of %s: %w", projectID, err)
	}
	return nil
}

// FailedAttempts counts failed site password attempts per bucket (client group and site) in the
// shared rate_limits table, so the limit holds across instances. An attempt takes a slot before
// any hash is computed, which also stops parallel guesses from all slipping under the limit; a
// right password gives its slot back, so only failures count.
type FailedAttempts struct {
	limiter *Limiter
	limit   int
	window  time.Duration
}

// NewFailedAttempts allows limit failures per bucket per window.
func NewFailedAttempts(l *Limiter, limit int, window time.Duration) *FailedAttempts {
	return &FailedAttempts{limiter: l, limit: limit, window: window}
}

// Reserve counts one attempt; a positive retryAfter refuses it (the limit was reached).
func (f *FailedAttempts) Reserve(ctx context.Context, bucket string, now time.Time) (time.Duration, error) {
	d, err := f.limiter.Take(ctx, bucket, f.limit, f.window, now)
	if err != nil {
		return 0, err
	}
	if d.Allowed {
		return 0, nil
	}
	return max(d.RetryAfter, time.Second), nil
}

// Refund gives back an attempt that was not a failure (a right password, or one never checked).
func (f *FailedAttempts) Refund(ctx context.Context, bucket string) error {
	_, err := f.limiter.pool.Exec(ctx, `UPDATE rate_limits SET count = count - 1 WHERE bucket = $1 AND count > 0`, f.limiter.row(bucket))
	if err != nil {
		return fmt.Errorf("refund attempt %s: %w", bucket, err)
	}
	return nil
}

// replayedPassword checks a replayed create or PATCH that carried a site password. Request
// fingerprints leave passwords out (a cheap keyed hash of one would be an offline oracle), so the
// replay re-checks the presented password against the slow hash its first run recorded: another
// password under the same Idempotency-Key is another request, never silently dropped.
func (p *Projects) replayedPassword(res Result, presented *string) error {
	if !res.Replayed || presented == nil {
		return nil
	}
	var stored string
	for _, e := range res.Events {
		switch e := e.(type) {
		case events.ProjectCreated:
			stored = e.Settings.PasswordHash
		case events.ProjectSettingsUpdated:
			stored = e.Settings.PasswordHash
		}
	}
	phc, err := sitepassword.Open(p.keys, stored)
	if err != nil || !sitepassword.Verify(phc, *presented) {
		return ErrIdempotencyKeyReused
	}
	return nil
}
