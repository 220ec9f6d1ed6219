package project

import (
	"time"

	"github.com/litehost/litehost/domain"
	"github.com/litehost/litehost/events"
)

// Nullable is a PATCH field that may be absent (Set false), null (Set, Value nil) or a value.
type Nullable[T any] struct {
	Set   bool
	Value *T
}

// Patch is a PATCH /v1/projects/{id} body: nil pointers and unset Nullables are absent fields.
type Patch struct {
	Title    *string
	Slug     *string // validated and reserved by the caller before deciding
	DomainID Nullable[string]
	Status   *string
	Access   *string
	// Password carries the slow hash of the new password; null clears it.
	Password         Nullable[string]
	NoIndex          *bool
	DisableDownloads *bool
	PageTitle        Nullable[string]
	MetaDescription  Nullable[string]
	ExpiresIn        *string // "15m", "1h", "24h", "7d" or "none"
	AnalyticsEnabled *bool
	WorkspaceID      Nullable[string]
}

func setIf[T comparable](changed *[]string, name string, dst *T, v *T) {
	if v != nil && *dst != *v {
		*dst = *v
		*changed = append(*changed, name)
	}
}

func setNullable(changed *[]string, name string, dst **string, v Nullable[string]) {
	if !v.Set {
		return
	}
	old, nw := *dst, v.Value
	if (old == nil) == (nw == nil) && (old == nil || *old == *nw) {
		return
	}
	*dst = nw
	*changed = append(*changed, name)
}

// UpdateSettings applies a PATCH. Fields equal to the current value are not changes; a PATCH
// that changes nothing appends nothing.
func UpdateSettings(s State, accountID string, plan Plan, p Patch, now time.Time) ([]events.Event, error) {
	if err := s.writable(accountID, plan); err != nil {
		return nil, err
	}
	bad := domain.Invalid{}
	if p.Title != nil {
		validTitle(*p.Title, bad)
	}
	if p.Status != nil && *p.Status != StatusPublic && *p.Status != StatusPrivate {
		bad["status"] = "must be public or private"
	}
	if p.PageTitle.Set && p.PageTitle.Value != nil && len([]rune(*p.PageTitle.Value)) > MaxTitle {
		bad["pageTitle"] = "must be at most 255 characters"
	}
	if p.MetaDescription.Set && p.MetaDescription.Value != nil && len([]rune(*p.MetaDescription.Value)) > 1000 {
		bad["metaDescription"] = "must be at most 1000 characters"
	}
	next := s.Settings
	var changed []string
	setIf(&changed, "title", &next.Title, p.Title)
	setIf(&changed, "slug", &next.Slug, p.Slug)
	if p.DomainID.Set {
		v := ""
		if p.DomainID.Value != nil {
			v = *p.DomainID.Value
		}
		setIf(&changed, "domainId", &next.DomainID, &v)
	}
	setIf(&changed, "status", &next.Status, p.Status)
	setIf(&changed, "access", &next.Access, p.Access)
	if p.Password.Set {
		v := ""
		if p.Password.Value != nil {
			v = *p.Password.Value
		}
		setIf(&changed, "password", &next.PasswordHash, &v)
	}
	setIf(&changed, "noIndex", &next.NoIndex, p.NoIndex)
	setIf(&changed, "disableDownloads", &next.DisableDownloads, p.DisableDownloads)
	setNullable(&changed, "pageTitle", &next.PageTitle, p.PageTitle)
	setNullable(&changed, "metaDescription", &next.MetaDescription, p.MetaDescription)
	setIf(&changed, "analyticsEnabled", &next.AnalyticsEnabled, p.AnalyticsEnabled)
	if p.ExpiresIn != nil {
		switch d, ok := ExpiresIn(*p.ExpiresIn); {
		case *p.ExpiresIn == "none":
			if next.ExpiresAt != nil {
				next.ExpiresAt = nil
				changed = append(changed, "expiresIn")
			}
		case ok:
			at := now.Add(d)
			next.ExpiresAt = &at
			changed = append(changed, "expiresIn")
		default:
			bad["expiresIn"] = "must be 15m, 1h, 24h, 7d or none"
		}
	}
	validAccess(next.Access, next.PasswordHash, bad)
	if next.Access != AccessPassword {
		// A password only means something with password access; keep none lying around.
		next.PasswordHash = ""
	}
	if len(bad) > 0 {
		return nil, bad
	}
	var evs []events.Event
	if len(changed) > 0 {
		evs = append(evs, events.ProjectSettingsUpdated{ProjectID: s.ID, Settings: next, Changed: changed, At: now})
	}
	if p.WorkspaceID.Set {
		to := ""
		if p.WorkspaceID.Value != nil {
			to = *p.WorkspaceID.Value
		}
		mv, err := Move(s, accountID, to, now)
		if err != nil {
			return nil, err
		}
		evs = append(evs, mv...)
	}
	return evs, nil
}
