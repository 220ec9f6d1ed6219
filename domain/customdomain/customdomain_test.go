package customdomain_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/litehost/litehost/domain"
	"github.com/litehost/litehost/domain/customdomain"
	"github.com/litehost/litehost/events"
)

var now = time.Date(2026, 4, 9, 14, 23, 0, 0, time.UTC)

func TestHostname(t *testing.T) {
	label63 := strings.Repeat("a", 63)
	long := strings.Repeat(label63+".", 3) + strings.Repeat("b", 61) // 253
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"example.com", "example.com", true},
		{"  WWW.Example.COM ", "www.example.com", true},
		{"a-b.c-d.example.co.uk", "a-b.c-d.example.co.uk", true},
		{"xn--bcher-kva.example", "xn--bcher-kva.example", true},
		{label63 + ".com", label63 + ".com", true},
		{long, long, true},
		{long + "b", "", false},
		{strings.Repeat("a", 64) + ".com", "", false},
		{"", "", false},
		{"localhost", "", false},
		{"example.com.", "", false},
		{".example.com", "", false},
		{"exa..mple.com", "", false},
		{"-example.com", "", false},
		{"example-.com", "", false},
		{"exa_mple.com", "", false},
		{"exa mple.com", "", false},
		{"bücher.de", "", false},
		{"192.168.1.1", "", false},
		{"example.123", "", false},
		{"http://example.com", "", false},
	}
	for _, tt := range tests {
		got, err := customdomain.Hostname("domain", tt.in)
		var inv domain.Invalid
		if tt.ok {
			if err != nil || got != tt.want {
				t.Errorf("Hostname(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
			continue
		}
		if !errors.As(err, &inv) || inv["domain"] == "" {
			t.Errorf("Hostname(%q) = %q, %v; want a domain.Invalid on domain", tt.in, got, err)
		}
	}
}

func added(status string) events.DomainAdded {
	return events.DomainAdded{DomainID: "d1", OwnerID: "a1", Hostname: "example.com", Status: status,
		At: now.Add(-time.Hour)}
}

func ptr[T any](v T) *T { return &v }

func TestDecide(t *testing.T) {
	earlier := now.Add(-30 * time.Minute)
	verifiedActive := events.DomainStatusChanged{DomainID: "d1", Hostname: "example.com", Status: "active",
		PreviousStatus: "pending_verification", VerifiedAt: &earlier, At: earlier}
	removed := events.DomainRemoved{DomainID: "d1", Hostname: "example.com", At: earlier}
	good := []string{"other", customdomain.ChallengeValue("tok")}
	legacy := added("pending_verification")
	legacy.ChallengeToken = "old" // recorded by a domain added before tokens were derived
	tests := []struct {
		name    string
		given   []events.Event
		when    func(customdomain.State) ([]events.Event, error)
		want    []events.Event
		wantErr error
	}{
		{"add pending", nil, func(s customdomain.State) ([]events.Event, error) {
			return customdomain.Add{DomainID: "d1", OwnerID: "a1", Hostname: "example.com", Status: "pending_verification"}.Decide(s, now)
		}, []events.Event{events.DomainAdded{DomainID: "d1", OwnerID: "a1", Hostname: "example.com", Status: "pending_verification", At: now}}, nil},
		{"add active by an operator is verified now", nil, func(s customdomain.State) ([]events.Event, error) {
			return customdomain.Add{DomainID: "d1", OwnerID: "a1", Hostname: "example.com", Status: "active"}.Decide(s, now)
		}, []events.Event{events.DomainAdded{DomainID: "d1", OwnerID: "a1", Hostname: "example.com", Status: "active", VerifiedAt: ptr(now), At: now}}, nil},
		{"add with an unknown status", nil, func(s customdomain.State) ([]events.Event, error) {
			return customdomain.Add{DomainID: "d1", OwnerID: "a1", Hostname: "example.com", Status: "live"}.Decide(s, now)
		}, nil, domain.Invalid{}},
		{"add over an existing domain", []events.Event{added("active")}, func(s customdomain.State) ([]events.Event, error) {
			return customdomain.Add{DomainID: "d1", OwnerID: "a2", Hostname: "example.com", Status: "active"}.Decide(s, now)
		}, nil, customdomain.ErrTaken},
		{"verify with the record", []events.Event{added("pending_verification")}, func(s customdomain.State) ([]events.Event, error) {
			return customdomain.Verify(s, "a1", good, "tok", now)
		}, []events.Event{events.DomainStatusChanged{DomainID: "d1", Hostname: "example.com", Status: "active",
			PreviousStatus: "pending_verification", VerifiedAt: ptr(now), At: now}}, nil},
		{"verify after error_dns", []events.Event{added("error_dns")}, func(s customdomain.State) ([]events.Event, error) {
			return customdomain.Verify(s, "a1", good, "tok", now)
		}, []events.Event{events.DomainStatusChanged{DomainID: "d1", Hostname: "example.com", Status: "active",
			PreviousStatus: "error_dns", VerifiedAt: ptr(now), At: now}}, nil},
		{"verify without the record", []events.Event{added("pending_verification")}, func(s customdomain.State) ([]events.Event, error) {
			return customdomain.Verify(s, "a1", []string{"tok", "litehost-verification=other"}, "tok", now)
		}, nil, customdomain.ErrVerificationFailed},
		{"verify without a token to check", []events.Event{added("pending_verification")}, func(s customdomain.State) ([]events.Event, error) {
			return customdomain.Verify(s, "a1", []string{"litehost-verification="}, "", now)
		}, nil, customdomain.ErrVerificationFailed},
		{"verify a domain added with a recorded token by that token", []events.Event{legacy}, func(s customdomain.State) ([]events.Event, error) {
			return customdomain.Verify(s, "a1", []string{customdomain.ChallengeValue("old")}, "tok", now)
		}, []events.Event{events.DomainStatusChanged{DomainID: "d1", Hostname: "example.com", Status: "active",
			PreviousStatus: "pending_verification", VerifiedAt: ptr(now), At: now}}, nil},
		{"verify a domain added with a recorded token by the derived one", []events.Event{legacy}, func(s customdomain.State) ([]events.Event, error) {
			return customdomain.Verify(s, "a1", good, "tok", now)
		}, []events.Event{events.DomainStatusChanged{DomainID: "d1", Hostname: "example.com", Status: "active",
			PreviousStatus: "pending_verification", VerifiedAt: ptr(now), At: now}}, nil},
		{"verify an active domain again", []events.Event{added("pending_verification"), verifiedActive}, func(s customdomain.State) ([]events.Event, error) {
			return customdomain.Verify(s, "a1", nil, "tok", now)
		}, nil, nil},
		{"verify another account's domain", []events.Event{added("pending_verification")}, func(s customdomain.State) ([]events.Event, error) {
			return customdomain.Verify(s, "a2", good, "tok", now)
		}, nil, customdomain.ErrNotFound},
		{"set status keeps the first verification time", []events.Event{added("pending_verification"), verifiedActive}, func(s customdomain.State) ([]events.Event, error) {
			return customdomain.SetStatus(s, "ssl_active", now)
		}, []events.Event{events.DomainStatusChanged{DomainID: "d1", Hostname: "example.com", Status: "ssl_active",
			PreviousStatus: "active", VerifiedAt: &earlier, At: now}}, nil},
		{"set the current status", []events.Event{added("active")}, func(s customdomain.State) ([]events.Event, error) {
			return customdomain.SetStatus(s, "active", now)
		}, nil, nil},
		{"set an unknown status", []events.Event{added("active")}, func(s customdomain.State) ([]events.Event, error) {
			return customdomain.SetStatus(s, "ready", now)
		}, nil, domain.Invalid{}},
		{"set the status of a removed domain", []events.Event{added("active"), removed}, func(s customdomain.State) ([]events.Event, error) {
			return customdomain.SetStatus(s, "active", now)
		}, nil, customdomain.ErrNotFound},
		{"remove", []events.Event{added("active")}, func(s customdomain.State) ([]events.Event, error) {
			return customdomain.Remove(s, "a1", 0, now)
		}, []events.Event{events.DomainRemoved{DomainID: "d1", Hostname: "example.com", At: now}}, nil},
		{"remove one in use", []events.Event{added("active")}, func(s customdomain.State) ([]events.Event, error) {
			return customdomain.Remove(s, "a1", 2, now)
		}, nil, customdomain.ErrInUse},
		{"remove twice", []events.Event{added("active"), removed}, func(s customdomain.State) ([]events.Event, error) {
			return customdomain.Remove(s, "a1", 0, now)
		}, nil, customdomain.ErrNotFound},
		{"remove another account's", []events.Event{added("active")}, func(s customdomain.State) ([]events.Event, error) {
			return customdomain.Remove(s, "a2", 0, now)
		}, nil, customdomain.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.when(customdomain.Replay(tt.given))
			var inv domain.Invalid
			switch {
			case errors.As(tt.wantErr, &inv):
				if !errors.As(err, &inv) || inv["status"] == "" {
					t.Fatalf("err = %v, want a domain.Invalid on status", err)
				}
			case !errors.Is(err, tt.wantErr):
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCheckAssignable(t *testing.T) {
	for _, st := range customdomain.Statuses() {
		s := customdomain.Replay([]events.Event{added(st)})
		err := customdomain.CheckAssignable(s, "a1")
		want := error(customdomain.ErrNotActive)
		if st == "active" || st == "ssl_active" {
			want = nil
		}
		if !errors.Is(err, want) {
			t.Errorf("%s: err = %v, want %v", st, err, want)
		}
		if err := customdomain.CheckAssignable(s, "a2"); !errors.Is(err, customdomain.ErrNotFound) {
			t.Errorf("%s for another account: err = %v", st, err)
		}
	}
}

func TestReservation(t *testing.T) {
	reserved := events.DomainHostnameReserved{Hostname: "example.com", DomainID: "d1", At: now}
	released := events.DomainHostnameReleased{Hostname: "example.com", DomainID: "d1", At: now}
	r := customdomain.ReplayReservation(nil)
	if got, err := customdomain.Reserve(r, "example.com", "d1", now); err != nil || !cmp.Equal(got, []events.Event{reserved}) {
		t.Errorf("reserve free = %v, %v", got, err)
	}
	r = customdomain.ReplayReservation([]events.Event{reserved})
	if got, err := customdomain.Reserve(r, "example.com", "d1", now); err != nil || got != nil {
		t.Errorf("reserve own again = %v, %v", got, err)
	}
	if _, err := customdomain.Reserve(r, "example.com", "d2", now); !errors.Is(err, customdomain.ErrTaken) {
		t.Errorf("reserve taken: err = %v", err)
	}
	if got := customdomain.Release(r, "example.com", "d2", now); got != nil {
		t.Errorf("release by another domain = %v", got)
	}
	if got := customdomain.Release(r, "example.com", "d1", now); !cmp.Equal(got, []events.Event{released}) {
		t.Errorf("release by holder = %v", got)
	}
	r = customdomain.ReplayReservation([]events.Event{reserved, released})
	if r.Holder != "" {
		t.Errorf("holder after release = %q", r.Holder)
	}
	if got, err := customdomain.Reserve(r, "example.com", "d2", now); err != nil || len(got) != 1 {
		t.Errorf("reserve after release = %v, %v", got, err)
	}
}

// An unverified domain holds its hostname for the pending TTL only; a verified one for good.
func TestExpireStalePending(t *testing.T) {
	ttl := customdomain.DefaultPendingTTL
	added := events.DomainAdded{DomainID: "d1", OwnerID: "a1", Hostname: "example.com",
		Status: customdomain.StatusPendingVerification, ChallengeToken: "tok", At: now}
	pending := customdomain.Replay([]events.Event{added})
	if _, err := customdomain.Expire(pending, now.Add(ttl-time.Second), ttl); !errors.Is(err, customdomain.ErrTaken) {
		t.Errorf("expire before the TTL: %v, want ErrTaken", err)
	}
	got, err := customdomain.Expire(pending, now.Add(ttl), ttl)
	want := []events.Event{events.DomainRemoved{DomainID: "d1", Hostname: "example.com", At: now.Add(ttl)}}
	if err != nil || !cmp.Equal(got, want) {
		t.Errorf("expire at the TTL = %v, %v; want %v", got, err, want)
	}
	dnsErr := customdomain.Replay([]events.Event{added, events.DomainStatusChanged{DomainID: "d1", Status: customdomain.StatusErrorDNS, At: now}})
	if !dnsErr.Stale(now.Add(ttl), ttl) {
		t.Error("a never-verified error_dns domain is not stale")
	}
	verifiedAt := now.Add(time.Hour)
	active := customdomain.Replay([]events.Event{added, events.DomainStatusChanged{DomainID: "d1", Status: customdomain.StatusActive, VerifiedAt: &verifiedAt, At: verifiedAt}})
	if _, err := customdomain.Expire(active, now.Add(10*ttl), ttl); !errors.Is(err, customdomain.ErrTaken) {
		t.Errorf("expire a verified domain: %v, want ErrTaken", err)
	}
	lapsed := customdomain.Replay([]events.Event{added, events.DomainStatusChanged{DomainID: "d1", Status: customdomain.StatusActive, VerifiedAt: &verifiedAt, At: verifiedAt},
		events.DomainStatusChanged{DomainID: "d1", Status: customdomain.StatusErrorDNS, VerifiedAt: &verifiedAt, At: verifiedAt}})
	if lapsed.Stale(now.Add(10*ttl), ttl) {
		t.Error("a once-verified domain in error_dns is stale")
	}
	removed := customdomain.Replay([]events.Event{added, events.DomainRemoved{DomainID: "d1", Hostname: "example.com", At: now}})
	if got, err := customdomain.Expire(removed, now.Add(ttl), ttl); got != nil || err != nil {
		t.Errorf("expire a removed domain = %v, %v; want nothing", got, err)
	}
}
