package account_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/litehost/litehost/domain"
	"github.com/litehost/litehost/domain/account"
	"github.com/litehost/litehost/events"
)

var (
	t0   = time.Date(2026, 4, 9, 14, 23, 0, 0, time.UTC)
	free = events.PlanLimits{MaxProjects: 3, MaxStorageBytes: 52428800, MaxFilesPerProject: 50, MaxVisitorsPerMonth: 10000}
	reg  = events.AccountRegistered{AccountID: "a1", Email: "you@example.com", Plan: "free", Limits: free, At: t0}
)

func started(sid, key, refresh string, at time.Time) events.SessionStartedV2 {
	return events.SessionStartedV2{AccountID: "a1", SessionID: sid, KeyID: key, ExpiresAt: at.Add(account.DefaultKeyIdleTTL),
		RefreshTokenID: refresh, RefreshExpiresAt: at.Add(account.DefaultKeyIdleTTL), At: at}
}

func refreshed(sid, oldKey, oldRefresh, key, refresh string, at time.Time) events.SessionRefreshedV2 {
	return events.SessionRefreshedV2{AccountID: "a1", SessionID: sid, PreviousKeyID: oldKey, PreviousRefreshTokenID: oldRefresh,
		KeyID: key, ExpiresAt: at.Add(account.DefaultKeyIdleTTL), RefreshTokenID: refresh, RefreshExpiresAt: at.Add(account.DefaultKeyIdleTTL), At: at}
}

// startedV1 is a sign-in of the first release, whose credentials were retired with their format.
func startedV1(sid string, at time.Time) events.SessionStarted {
	return events.SessionStarted{AccountID: "a1", SessionID: sid, KeyHash: "h1", ExpiresAt: at.Add(7 * 24 * time.Hour),
		RefreshHash: "h2", RefreshExpiresAt: at.Add(30 * 24 * time.Hour), At: at}
}

func revoked(sid, reason string, at time.Time) events.SessionRevoked {
	return events.SessionRevoked{AccountID: "a1", SessionID: sid, Reason: reason, At: at}
}

func TestRegister(t *testing.T) {
	tests := []struct {
		name         string
		given        []events.Event
		email, phone string
		want         []events.Event
		wantErr      error
	}{
		{"new account is free", nil, "you@example.com", "", []events.Event{reg}, nil},
		{"phone account", nil, "", "+14155550100", []events.Event{events.AccountRegistered{AccountID: "a1", Phone: "+14155550100", Plan: "free", Limits: free, At: t0}}, nil},
		{"already registered", []events.Event{reg}, "you@example.com", "", nil, nil},
		{"no identifier", nil, "", "", nil, domain.Invalid{}},
		{"both identifiers", nil, "you@example.com", "+14155550100", nil, domain.Invalid{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := account.Register(account.Replay(tt.given), "a1", tt.email, tt.phone, 0, t0)
			checkErr(t, err, tt.wantErr)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

func TestStartSession(t *testing.T) {
	tests := []struct {
		name    string
		given   []events.Event
		want    []events.Event
		wantErr error
	}{
		{"registered", []events.Event{reg}, []events.Event{started("s1", "k1", "r1", t0)}, nil},
		{"second session alongside the first", []events.Event{reg, started("s0", "k0", "r0", t0)}, []events.Event{started("s1", "k1", "r1", t0)}, nil},
		{"same session again", []events.Event{reg, started("s1", "k1", "r1", t0)}, nil, nil},
		{"no account", nil, nil, account.ErrNotRegistered},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := account.StartSession(account.Replay(tt.given), "s1", "k1", "r1", 0, t0)
			checkErr(t, err, tt.wantErr)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRefresh(t *testing.T) {
	t1 := t0.Add(time.Hour)
	t2 := t0.Add(2 * time.Hour)
	tests := []struct {
		name    string
		given   []events.Event
		token   string
		now     time.Time
		want    []events.Event
		wantErr error
	}{
		{"current token rotates key and token", []events.Event{reg, started("s1", "k1", "r1", t0)}, "r1", t1,
			[]events.Event{refreshed("s1", "k1", "r1", "k9", "r9", t1)}, nil},
		{"rotated token again", []events.Event{reg, started("s1", "k1", "r1", t0), refreshed("s1", "k1", "r1", "k2", "r2", t1)}, "r2", t2,
			[]events.Event{refreshed("s1", "k2", "r2", "k9", "r9", t2)}, nil},
		{"reused old token revokes the session", []events.Event{reg, started("s1", "k1", "r1", t0), refreshed("s1", "k1", "r1", "k2", "r2", t1)}, "r1", t2,
			[]events.Event{revoked("s1", events.RevokeReasonRefreshReuse, t2)}, nil},
		{"reused token of a session already revoked", []events.Event{reg, started("s1", "k1", "r1", t0), refreshed("s1", "k1", "r1", "k2", "r2", t1), revoked("s1", events.RevokeReasonRefreshReuse, t1)}, "r1", t2,
			nil, account.ErrRefreshInvalid},
		{"current token of a revoked session", []events.Event{reg, started("s1", "k1", "r1", t0), revoked("s1", events.RevokeReasonClient, t1)}, "r1", t2,
			nil, account.ErrRefreshInvalid},
		{"unknown token", []events.Event{reg, started("s1", "k1", "r1", t0)}, "rX", t1, nil, account.ErrRefreshInvalid},
		{"empty token", []events.Event{reg, started("s1", "k1", "r1", t0)}, "", t1, nil, account.ErrRefreshInvalid},
		{"no account", nil, "r1", t1, nil, account.ErrRefreshInvalid},
		{"expired at the instant", []events.Event{reg, started("s1", "k1", "r1", t0)}, "r1", t0.Add(account.DefaultKeyIdleTTL), nil, account.ErrRefreshExpired},
		{"just before expiry", []events.Event{reg, started("s1", "k1", "r1", t0)}, "r1", t0.Add(account.DefaultKeyIdleTTL - time.Millisecond),
			[]events.Event{refreshed("s1", "k1", "r1", "k9", "r9", t0.Add(account.DefaultKeyIdleTTL-time.Millisecond))}, nil},
		{"other session untouched", []events.Event{reg, started("s0", "k0", "r0", t0), started("s1", "k1", "r1", t0)}, "r1", t1,
			[]events.Event{refreshed("s1", "k1", "r1", "k9", "r9", t1)}, nil},
		{"a first-release session is no session", []events.Event{reg, startedV1("s1", t0)}, "h2", t1, nil, account.ErrRefreshInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := account.Refresh(account.Replay(tt.given), tt.token, "k9", "r9", 0, tt.now)
			checkErr(t, err, tt.wantErr)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRefreshAgain(t *testing.T) {
	t1 := t0.Add(time.Hour)
	t2 := t0.Add(2 * time.Hour)
	done := refreshed("s1", "k1", "r1", "k2", "r2", t1)
	rotated := []events.Event{reg, started("s1", "k1", "r1", t0), done}
	tests := []struct {
		name      string
		given     []events.Event
		confirmed bool
		now       time.Time
		want      []events.Event
		wantErr   error
	}{
		{"confirmed retry while its rotation is current", rotated, true, t2, nil, nil},
		{"unconfirmed: the rotated-away token came back", rotated, false, t2,
			[]events.Event{revoked("s1", events.RevokeReasonRefreshReuse, t2)}, nil},
		{"rotated again since: reuse even when confirmed", append(rotated[:3:3], refreshed("s1", "k2", "r2", "k3", "r3", t1)), true, t2,
			[]events.Event{revoked("s1", events.RevokeReasonRefreshReuse, t2)}, nil},
		{"session revoked since", append(rotated[:3:3], revoked("s1", events.RevokeReasonClient, t1)), true, t2, nil, account.ErrRefreshInvalid},
		{"new token expired", rotated, true, t1.Add(account.DefaultKeyIdleTTL), nil, account.ErrRefreshExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := account.RefreshAgain(account.Replay(tt.given), done, tt.confirmed, tt.now)
			checkErr(t, err, tt.wantErr)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRevoke(t *testing.T) {
	t1 := t0.Add(time.Hour)
	tests := []struct {
		name    string
		given   []events.Event
		sid     string
		want    []events.Event
		wantErr error
	}{
		{"open session", []events.Event{reg, started("s1", "k1", "r1", t0)}, "s1", []events.Event{revoked("s1", events.RevokeReasonClient, t1)}, nil},
		{"already revoked", []events.Event{reg, started("s1", "k1", "r1", t0), revoked("s1", events.RevokeReasonClient, t0)}, "s1", nil, nil},
		{"unknown session", []events.Event{reg, started("s1", "k1", "r1", t0)}, "s2", nil, account.ErrSessionNotFound},
		{"no account", nil, "s1", nil, account.ErrSessionNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := account.Revoke(account.Replay(tt.given), tt.sid, events.RevokeReasonClient, t1)
			checkErr(t, err, tt.wantErr)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

func TestChangePlan(t *testing.T) {
	pro := events.PlanLimits{MaxProjects: 25, MaxStorageBytes: 5368709120, MaxFilesPerProject: 200, MaxVisitorsPerMonth: 100000}
	toPro := events.PlanChanged{AccountID: "a1", Plan: "pro", PreviousPlan: "free", Limits: pro, At: t0}
	tests := []struct {
		name    string
		given   []events.Event
		tier    string
		want    []events.Event
		wantErr error
	}{
		{"upgrade", []events.Event{reg}, "pro", []events.Event{toPro}, nil},
		{"same plan", []events.Event{reg, toPro}, "pro", nil, nil},
		{"back to free", []events.Event{reg, toPro}, "free",
			[]events.Event{events.PlanChanged{AccountID: "a1", Plan: "free", PreviousPlan: "pro", Limits: free, At: t0}}, nil},
		{"unknown tier", []events.Event{reg}, "agency", nil, domain.Invalid{}},
		{"no account", nil, "pro", nil, account.ErrNotRegistered},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := account.ChangePlan(account.Replay(tt.given), tt.tier, t0)
			checkErr(t, err, tt.wantErr)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEvolveKeepsEarlierStates(t *testing.T) {
	s1 := account.Replay([]events.Event{reg, started("s1", "k1", "r1", t0)})
	s2 := account.Evolve(s1, refreshed("s1", "k1", "r1", "k2", "r2", t0))
	s3 := account.Evolve(s2, revoked("s1", events.RevokeReasonClient, t0))
	if s1.Sessions["s1"].KeyID != "k1" || len(s1.Sessions["s1"].RotatedRefresh) != 0 {
		t.Errorf("refresh changed the earlier state: %+v", s1.Sessions["s1"])
	}
	if s2.Sessions["s1"].Revoked {
		t.Errorf("revoke changed the earlier state")
	}
	if !s3.Sessions["s1"].Revoked || s3.Sessions["s1"].KeyID != "k2" {
		t.Errorf("final state = %+v", s3.Sessions["s1"])
	}
	if ss, ok := s3.SessionByRefresh("r1"); !ok || ss.ID != "s1" {
		t.Errorf("SessionByRefresh(rotated) = %+v, %v", ss, ok)
	}
}

func TestPlans(t *testing.T) {
	want := map[string]events.PlanLimits{
		"free":    free,
		"starter": {MaxProjects: 10, MaxStorageBytes: 1073741824, MaxFilesPerProject: 200, MaxVisitorsPerMonth: 50000},
		"creator": {MaxProjects: 10, MaxStorageBytes: 2147483648, MaxFilesPerProject: 200, MaxVisitorsPerMonth: 100000},
		"pro":     {MaxProjects: 25, MaxStorageBytes: 5368709120, MaxFilesPerProject: 200, MaxVisitorsPerMonth: 100000},
		"scale":   {MaxProjects: -1, MaxStorageBytes: -1, MaxFilesPerProject: 1000, MaxVisitorsPerMonth: -1},
	}
	for _, tier := range account.Tiers() {
		got, ok := account.Limits(tier)
		if !ok {
			t.Errorf("Limits(%q) unknown", tier)
		}
		if diff := cmp.Diff(want[tier], got); diff != "" {
			t.Errorf("Limits(%q) (-want +got):\n%s", tier, diff)
		}
		if account.IsPaid(tier) != (tier != "free") {
			t.Errorf("IsPaid(%q) = %v", tier, account.IsPaid(tier))
		}
	}
	if _, ok := account.Limits("agency"); ok || account.IsPaid("agency") {
		t.Errorf("unknown tier accepted")
	}
}

// checkErr matches want with errors.Is, or any domain.Invalid when want is one.
func checkErr(t *testing.T, err, want error) {
	t.Helper()
	var inv domain.Invalid
	if _, isInv := want.(domain.Invalid); isInv {
		if !errors.As(err, &inv) {
			t.Fatalf("err = %v, want domain.Invalid", err)
		}
		return
	}
	if !errors.Is(err, want) {
		t.Fatalf("err = %v, want %v", err, want)
	}
}

func TestExtend(t *testing.T) {
	const day = 24 * time.Hour
	idle := account.DefaultKeyIdleTTL
	live := []events.Event{reg, started("s1", "k1", "r1", t0)}
	ext := func(at time.Time) events.SessionExtended {
		return events.SessionExtended{AccountID: "a1", SessionID: "s1", KeyID: "k1", ExpiresAt: at.Add(idle), RefreshExpiresAt: at.Add(idle), At: at}
	}
	tests := []struct {
		name    string
		given   []events.Event
		key     string
		now     time.Time
		want    []events.Event
		wantErr error
	}{
		{"same day: nothing", live, "k1", t0.Add(23 * time.Hour), nil, nil},
		{"a day behind: nothing", live, "k1", t0.Add(day), nil, nil},
		{"more than a day behind", live, "k1", t0.Add(30 * day), []events.Event{ext(t0.Add(30 * day))}, nil},
		{"renewed today: nothing", append(live, ext(t0.Add(30*day))), "k1", t0.Add(30*day + 12*time.Hour), nil, nil},
		{"expired: never", live, "k1", t0.Add(idle), nil, nil},
		{"revoked: never", append(live, revoked("s1", events.RevokeReasonClient, t0)), "k1", t0.Add(30 * day), nil, nil},
		{"rotated-away key: never", append(live, refreshed("s1", "k1", "r1", "k2", "r2", t0)), "k1", t0.Add(30 * day), nil, nil},
		{"unknown session", []events.Event{reg}, "k1", t0.Add(30 * day), nil, account.ErrSessionNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := account.Extend(account.Replay(tt.given), "s1", tt.key, idle, tt.now)
			checkErr(t, err, tt.wantErr)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
	// The renewal is folded into the session: its key expires later.
	s := account.Replay(append(live, ext(t0.Add(30*day))))
	if got := s.Sessions["s1"].ExpiresAt; !got.Equal(t0.Add(30*day + idle)) {
		t.Errorf("expiry after renewal = %s", got)
	}
}

func TestTrial(t *testing.T) {
	const week = 7 * 24 * time.Hour
	pro, _ := account.Limits(account.TierPro)
	regPro := events.AccountRegistered{AccountID: "a1", Email: "you@example.com", Plan: "pro", Limits: pro, At: t0}
	trial := events.TrialStarted{AccountID: "a1", Plan: "pro", EndsAt: t0.Add(week), At: t0}

	got, err := account.Register(account.State{}, "a1", "you@example.com", "", week, t0)
	checkErr(t, err, nil)
	if diff := cmp.Diff([]events.Event{regPro, trial}, got); diff != "" {
		t.Errorf("register with a trial (-want +got):\n%s", diff)
	}
	inTrial := account.Replay([]events.Event{regPro, trial})
	if evs, _ := account.EndTrial(inTrial, t0.Add(week-time.Millisecond)); evs != nil {
		t.Errorf("ended before its end: %v", evs)
	}
	end := t0.Add(week)
	want := []events.Event{
		events.TrialEnded{AccountID: "a1", Reason: events.TrialEndReasonExpired, At: end},
		events.PlanChanged{AccountID: "a1", Plan: "free", PreviousPlan: "pro", Limits: free, At: end},
	}
	got, _ = account.EndTrial(inTrial, end)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("trial end (-want +got):\n%s", diff)
	}
	if evs, _ := account.EndTrial(account.Replay(append([]events.Event{regPro, trial}, got...)), end.Add(time.Hour)); evs != nil {
		t.Errorf("ended twice: %v", evs)
	}
	// An operator's plan during the trial ends it, even the trial's own plan, and stays.
	got, _ = account.ChangePlan(inTrial, "pro", t0)
	if diff := cmp.Diff([]events.Event{events.TrialEnded{AccountID: "a1", Reason: events.TrialEndReasonPlanSet, At: t0}}, got); diff != "" {
		t.Errorf("set-plan pro during trial (-want +got):\n%s", diff)
	}
	after := account.Replay(append([]events.Event{regPro, trial}, got...))
	if evs, _ := account.EndTrial(after, end); evs != nil {
		t.Errorf("trial ended after set-plan: %v", evs)
	}
}
