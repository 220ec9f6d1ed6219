package projections

import (
	"context"
	"fmt"

	"github.com/ThreeDotsLabs/watermill/components/cqrs"
	"github.com/jackc/pgx/v5"

	"github.com/litehost/litehost/events"
)

// AccountsName is the persistent name of the accounts read model (its checkpoint key).
const AccountsName = "accounts"

// Accounts projects account streams into accounts, sessions and api_keys (keys by ID; sessions of
// the first credential format, account.session_started.v1, are not projected: their keys were
// retired with the format, see docs/decisions.md). Every statement is an
// upsert or a guarded update, so applying an event twice changes nothing the second time, even
// without the checkpoint. account_usage is created with these tables but belongs to the projects
// projector, so a rebuild of this one leaves it alone.
func Accounts() Projector {
	return Projector{
		Name:   AccountsName,
		Tables: []string{"accounts", "sessions", "api_keys"},
		Handlers: []cqrs.GroupEventHandler{
			cqrs.NewGroupEventHandler(func(ctx context.Context, e *events.AccountRegistered) error {
				return accountsExec(ctx, e.EventType(), accountsStmt{`
					INSERT INTO accounts (id, email, phone, plan, max_projects, max_storage_bytes,
						max_files_per_project, max_visitors_per_month, created_at, updated_at)
					VALUES ($1, NULLIF($2, ''), NULLIF($3, ''), $4, $5, $6, $7, $8, $9, $9)
					ON CONFLICT (id) DO NOTHING`,
					[]any{e.AccountID, e.Email, e.Phone, e.Plan, e.Limits.MaxProjects, e.Limits.MaxStorageBytes,
						e.Limits.MaxFilesPerProject, e.Limits.MaxVisitorsPerMonth, e.At}})
			}),
			cqrs.NewGroupEventHandler(func(ctx context.Context, e *events.PlanChanged) error {
				return accountsExec(ctx, e.EventType(), accountsStmt{`
					UPDATE accounts SET plan = $2, max_projects = $3, max_storage_bytes = $4,
						max_files_per_project = $5, max_visitors_per_month = $6, updated_at = $7
					WHERE id = $1`,
					[]any{e.AccountID, e.Plan, e.Limits.MaxProjects, e.Limits.MaxStorageBytes,
						e.Limits.MaxFilesPerProject, e.Limits.MaxVisitorsPerMonth, e.At}})
			}),
			cqrs.NewGroupEventHandler(func(ctx context.Context, e *events.TrialStarted) error {
				return accountsExec(ctx, e.EventType(), accountsStmt{`
					UPDATE accounts SET trial_ends_at = $2, updated_at = $3 WHERE id = $1`,
					[]any{e.AccountID, e.EndsAt, e.At}})
			}),
			cqrs.NewGroupEventHandler(func(ctx context.Context, e *events.TrialEnded) error {
				return accountsExec(ctx, e.EventType(), accountsStmt{`
					UPDATE accounts SET trial_ends_at = NULL, updated_at = $2 WHERE id = $1`,
					[]any{e.AccountID, e.At}})
			}),
			cqrs.NewGroupEventHandler(func(ctx context.Context, e *events.SessionExtended) error {
				// GREATEST: applying an older renewal again never shortens a key.
				return accountsExec(ctx, e.EventType(),
					accountsStmt{`UPDATE sessions SET refresh_expires_at = GREATEST(refresh_expires_at, $2)
						WHERE session_id = $1`, []any{e.SessionID, e.RefreshExpiresAt}},
					accountsStmt{`UPDATE api_keys SET expires_at = GREATEST(expires_at, $2)
						WHERE key_id = $1`, []any{e.KeyID, e.ExpiresAt}},
				)
			}),
			cqrs.NewGroupEventHandler(func(ctx context.Context, e *events.SessionStartedV2) error {
				return accountsExec(ctx, e.EventType(),
					accountsStmt{`INSERT INTO sessions (session_id, account_id, started_at, refresh_expires_at)
						VALUES ($1, $2, $3, $4) ON CONFLICT (session_id) DO NOTHING`,
						[]any{e.SessionID, e.AccountID, e.At, e.RefreshExpiresAt}},
					accountsInsertKey(e.KeyID, e.AccountID, e.SessionID, e.At, e.ExpiresAt),
				)
			}),
			cqrs.NewGroupEventHandler(func(ctx context.Context, e *events.SessionRefreshedV2) error {
				return accountsExec(ctx, e.EventType(),
					accountsStmt{`UPDATE sessions SET refreshed_at = $2, refresh_expires_at = $3
						WHERE session_id = $1`, []any{e.SessionID, e.At, e.RefreshExpiresAt}},
					accountsStmt{`UPDATE api_keys SET revoked_at = $2
						WHERE key_id = $1 AND revoked_at IS NULL`, []any{e.PreviousKeyID, e.At}},
					accountsInsertKey(e.KeyID, e.AccountID, e.SessionID, e.At, e.ExpiresAt),
				)
			}),
			cqrs.NewGroupEventHandler(func(ctx context.Context, e *events.SessionRevoked) error {
				return accountsExec(ctx, e.EventType(),
					accountsStmt{`UPDATE sessions SET revoked_at = $2, revoke_reason = $3
						WHERE session_id = $1 AND revoked_at IS NULL`, []any{e.SessionID, e.At, e.Reason}},
					accountsStmt{`UPDATE api_keys SET revoked_at = $2
						WHERE session_id = $1 AND revoked_at IS NULL`, []any{e.SessionID, e.At}},
				)
			}),
		},
	}
}

func accountsInsertKey(keyID, accountID, sessionID string, at, expires any) accountsStmt {
	return accountsStmt{`INSERT INTO api_keys (key_id, account_id, session_id, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT (key_id) DO NOTHING`,
		[]any{keyID, accountID, sessionID, at, expires}}
}

type accountsStmt struct {
	sql  string
	args []any
}

// accountsExec runs the statements of one event in the projection's transaction, as one batch: one round
// trip however many tables the event touches.
func accountsExec(ctx context.Context, eventType string, stmts ...accountsStmt) error {
	var b pgx.Batch
	for _, s := range stmts {
		b.Queue(s.sql, s.args...)
	}
	if err := Tx(ctx).SendBatch(ctx, &b).Close(); err != nil {
		return fmt.Errorf("project %s: %w", eventType, err)
	}
	return nil
}
