package commands

import (
	"context"
	"time"

	"github.com/litehost/litehost/domain/project"
)

// ClaimView is what the browser claim page shows of the project a claim token names, before
// anyone signs in.
type ClaimView struct {
	ProjectID string
	Slug      string
	ExpiresAt *time.Time
	// Claimed is true once the project has been claimed (the token then only answers that).
	Claimed bool
}

// ClaimView finds the project of a claim token as the claim page shows it. A token that names no
// project, or a project that is gone or past its expiry, is project.ErrNotFound, exactly as Claim
// would answer; a claimed one is returned with Claimed set.
func (p *Projects) ClaimView(ctx context.Context, token string) (ClaimView, error) {
	projectID, tokenValid, err := p.claimTarget(ctx, token)
	if err != nil {
		return ClaimView{}, err
	}
	st, err := p.state(ctx, projectID)
	if err != nil {
		return ClaimView{}, err
	}
	if !st.Exists || st.Deleted || !tokenValid(st) {
		return ClaimView{}, project.ErrNotFound
	}
	v := ClaimView{ProjectID: projectID, Slug: st.Settings.Slug, ExpiresAt: st.Settings.ExpiresAt, Claimed: !st.Temporary}
	if !v.Claimed && (st.Expired || (v.ExpiresAt != nil && !p.now().Before(*v.ExpiresAt))) {
		return ClaimView{}, project.ErrNotFound
	}
	return v, nil
}
