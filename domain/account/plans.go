package account

import (
	"strings"

	"github.com/litehost/litehost/events"
)

// Tiers (spec §2.1). "Paid" is starter or higher.
const (
	TierFree    = "free"
	TierStarter = "starter"
	TierCreator = "creator"
	TierPro     = "pro"
	TierScale   = "scale"
)

// Unlimited is the limit value that means no cap.
const Unlimited = -1

// Limits returns the current limits of tier (DESIGN §8) and whether tier exists. Accounts keep
// the limits their plan event carried (State.Limits); this table decides what a plan change
// grants. Visitors per month are documented only for creator and pro (100 000); the others are
// our choice: free 10 000, starter 50 000, scale unlimited.
func Limits(tier string) (events.PlanLimits, bool) {
	switch tier {
	case TierFree:
		return events.PlanLimits{MaxProjects: 3, MaxStorageBytes: 50 << 20, MaxFilesPerProject: 50, MaxVisitorsPerMonth: 10_000}, true
	case TierStarter:
		return events.PlanLimits{MaxProjects: 10, MaxStorageBytes: 1 << 30, MaxFilesPerProject: 200, MaxVisitorsPerMonth: 50_000}, true
	case TierCreator:
		return events.PlanLimits{MaxProjects: 10, MaxStorageBytes: 2 << 30, MaxFilesPerProject: 200, MaxVisitorsPerMonth: 100_000}, true
	case TierPro:
		return events.PlanLimits{MaxProjects: 25, MaxStorageBytes: 5 << 30, MaxFilesPerProject: 200, MaxVisitorsPerMonth: 100_000}, true
	case TierScale:
		return events.PlanLimits{MaxProjects: Unlimited, MaxStorageBytes: Unlimited, MaxFilesPerProject: 1000, MaxVisitorsPerMonth: Unlimited}, true
	}
	return events.PlanLimits{}, false
}

// IsPaid reports whether tier is a paid plan (starter or higher), which FREE_TIER_RESTRICTED
// endpoints require.
func IsPaid(tier string) bool {
	_, ok := Limits(tier)
	return ok && tier != TierFree
}

// Tiers returns the tier names in upgrade order.
func Tiers() []string {
	return []string{TierFree, TierStarter, TierCreator, TierPro, TierScale}
}

func tierList() string { return strings.Join(Tiers(), ", ") }
