package readapi

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Accounts serves the caller's own account: GET /v1/user and GET /v1/auth/session.
type Accounts struct {
	pool *pgxpool.Pool
	auth *Authenticator
}

// NewAccounts returns the account read handlers over the read models in pool.
func NewAccounts(pool *pgxpool.Pool) *Accounts { return &Accounts{pool: pool} }

// WithRenewal makes GET /v1/auth/session show a key's expiry after the renewal its use earns
// (Authenticator.EffectiveExpiry) rather than the one stored before it.
func (a *Accounts) WithRenewal(auth *Authenticator) *Accounts {
	a.auth = auth
	return a
}

// Register adds GET /user and GET /auth/session to r, each behind require (Authenticator.Require).
func (a *Accounts) Register(r gin.IRoutes, require gin.HandlerFunc) {
	r.GET("/user", require, a.user)
	r.GET("/auth/session", require, a.session)
}

// User is the body of GET /v1/user (spec §4.3).
type User struct {
	ID        string  `json:"id"`
	Email     *string `json:"email"`
	Phone     *string `json:"phone"`
	CreatedAt Time    `json:"createdAt"`
	Plan      Plan    `json:"plan"`
	Quota     Quota   `json:"quota"`
}

// Plan is a tier and the limits it grants; -1 means unlimited. Trial is set while the tier is a
// trial's (a new account's LITEHOST_TRIAL): at its end the account moves to the free plan.
type Plan struct {
	Tier   string     `json:"tier"`
	Limits PlanLimits `json:"limits"`
	Trial  *Trial     `json:"trial"`
}

// Trial is a running trial: when it ends.
type Trial struct {
	EndsAt Time `json:"endsAt"`
}

// PlanLimits are a plan's limits in the API's shape.
type PlanLimits struct {
	MaxProjects         int   `json:"maxProjects"`
	MaxStorageBytes     int64 `json:"maxStorageBytes"`
	MaxFilesPerProject  int   `json:"maxFilesPerProject"`
	MaxVisitorsPerMonth int   `json:"maxVisitorsPerMonth"`
}

// Quota is what an account uses of its limits: active (not archived, not expired) projects and
// their current deployments' bytes.
type Quota struct {
	Projects ProjectQuota `json:"projects"`
	Storage  StorageQuota `json:"storage"`
}

// ProjectQuota counts active projects against the plan's maximum.
type ProjectQuota struct {
	Used      int  `json:"used"`
	Limit     int  `json:"limit"`
	Unlimited bool `json:"unlimited"`
}

// StorageQuota counts bytes against the plan's maximum.
type StorageQuota struct {
	UsedBytes  int64 `json:"usedBytes"`
	LimitBytes int64 `json:"limitBytes"`
	Unlimited  bool  `json:"unlimited"`
}

type userRow struct {
	ID                  string
	Email, Phone        *string
	Plan                string
	MaxProjects         int
	MaxStorageBytes     int64
	MaxFilesPerProject  int
	MaxVisitorsPerMonth int
	CreatedAt           time.Time
	TrialEndsAt         *time.Time
	ActiveProjects      int
	StorageBytes        int64
}

// userQuery reads the account with its usage; an account without a usage row uses nothing yet.
const userQuery = `SELECT a.id::text AS id, a.email, a.phone, a.plan, a.max_projects, a.max_storage_bytes,
		a.max_files_per_project, a.max_visitors_per_month, a.created_at, a.trial_ends_at,
		COALESCE(u.active_projects, 0) AS active_projects, COALESCE(u.storage_bytes, 0) AS storage_bytes
	FROM accounts a LEFT JOIN account_usage u ON u.account_id = a.id
	WHERE a.id = $1`

func (a *Accounts) user(c *gin.Context) {
	p, ok := caller(c)
	if !ok {
		return
	}
	row, err := queryOne[userRow](c.Request.Context(), a.pool, "read user", userQuery, p.AccountID)
	if err != nil {
		_ = c.Error(err)
		return
	}
	var trial *Trial
	if row.TrialEndsAt != nil {
		trial = &Trial{EndsAt: Time(*row.TrialEndsAt)}
	}
	c.JSON(http.StatusOK, gin.H{"status": "success", "data": User{
		ID: row.ID, Email: row.Email, Phone: row.Phone, CreatedAt: Time(row.CreatedAt),
		Plan: Plan{Tier: row.Plan, Limits: PlanLimits{
			MaxProjects: row.MaxProjects, MaxStorageBytes: row.MaxStorageBytes,
			MaxFilesPerProject: row.MaxFilesPerProject, MaxVisitorsPerMonth: row.MaxVisitorsPerMonth,
		}, Trial: trial},
		Quota: Quota{
			Projects: ProjectQuota{Used: row.ActiveProjects, Limit: row.MaxProjects, Unlimited: row.MaxProjects < 0},
			Storage:  StorageQuota{UsedBytes: row.StorageBytes, LimitBytes: row.MaxStorageBytes, Unlimited: row.MaxStorageBytes < 0},
		},
	}})
}

// Session is the body of GET /v1/auth/session: the key in use and its session. ExpiresAt is the
// key's effective expiry: the idle window after its last renewal, this request's included.
type Session struct {
	AccountID        string `json:"accountId"`
	SessionID        string `json:"sessionId"`
	ExpiresAt        Time   `json:"expiresAt"`
	CreatedAt        Time   `json:"createdAt"`
	RefreshExpiresAt Time   `json:"refreshExpiresAt"`
}

const sessionQuery = `SELECT k.expires_at, k.created_at, s.refresh_expires_at
	FROM api_keys k JOIN sessions s ON s.session_id = k.session_id
	WHERE k.key_id = $1`

func (a *Accounts) session(c *gin.Context) {
	p, ok := caller(c)
	if !ok {
		return
	}
	var expires, created, refreshExpires time.Time
	err := a.pool.QueryRow(c.Request.Context(), sessionQuery, p.KeyID).Scan(&expires, &created, &refreshExpires)
	if errors.Is(err, pgx.ErrNoRows) {
		_ = c.Error(ErrNotFound)
		return
	}
	if err != nil {
		_ = c.Error(fmt.Errorf("read session: %w", err))
		return
	}
	if a.auth != nil {
		expires = a.auth.EffectiveExpiry(c.Request.Context(), p, expires)
		refreshExpires = later(refreshExpires, expires)
	}
	c.JSON(http.StatusOK, gin.H{"status": "success", "data": Session{
		AccountID: p.AccountID, SessionID: p.SessionID, ExpiresAt: Time(expires),
		CreatedAt: Time(created), RefreshExpiresAt: Time(refreshExpires),
	}})
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
