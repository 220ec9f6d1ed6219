package slug_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/litehost/litehost/domain"
	"github.com/litehost/litehost/domain/slug"
	"github.com/litehost/litehost/events"
)

var now = time.Date(2026, 4, 9, 14, 23, 0, 0, time.UTC)

func TestValidate(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{"my-site", true},
		{"a", true},
		{"0", true},
		{"a1-b2", true},
		{strings.Repeat("a", 63), true},
		{strings.Repeat("a", 64), false},
		{"", false},
		{"-a", false},
		{"a-", false},
		{"My-Site", false},
		{"my_site", false},
		{"my.site", false},
		{"www", false},
		{"api", false},
		{"admin", false},
		{"app", false},
		{"mail", false},
	}
	for _, tt := range tests {
		if got := slug.Validate(tt.in) == ""; got != tt.ok {
			t.Errorf("Validate(%q) ok = %v, want %v (%s)", tt.in, got, tt.ok, slug.Validate(tt.in))
		}
	}
}

func TestFromTitle(t *testing.T) {
	tests := []struct{ in, want string }{
		{"My Project", "my-project"},
		{"  Héllo,   Wörld!! ", "hello-world"},
		{"API", "api-site"},
		{"!!!", "site"},
		{"日本語", "site"},
		{"Release 2.0 -- final", "release-2-0-final"},
		{strings.Repeat("ab ", 40), strings.TrimRight(strings.Repeat("ab-", 40)[:58], "-")},
	}
	for _, tt := range tests {
		got := slug.FromTitle(tt.in)
		if got != tt.want {
			t.Errorf("FromTitle(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if msg := slug.Validate(slug.Candidate(got, 9999)); msg != "" {
			t.Errorf("FromTitle(%q) suffixed does not validate: %s", tt.in, msg)
		}
	}
	if got := slug.Candidate("site", 1); got != "site" {
		t.Errorf("Candidate 1 = %q", got)
	}
	if got := slug.Candidate("site", 3); got != "site-3" {
		t.Errorf("Candidate 3 = %q", got)
	}
}

func TestRandom(t *testing.T) {
	seq := []int{0, 11, 32}
	i := 0
	got := slug.Random(func(n int) int { v := seq[i] % n; i++; return v })
	if got != "amber-fox-42" {
		t.Errorf("Random = %q, want amber-fox-42", got)
	}
	if msg := slug.Validate(got); msg != "" {
		t.Errorf("random slug invalid: %s", msg)
	}
}

func TestReserveRelease(t *testing.T) {
	reserved := func(p string) events.Event { return events.SlugReserved{Slug: "s", ProjectID: p, At: now} }
	released := func(p string) events.Event { return events.SlugReleased{Slug: "s", ProjectID: p, At: now} }
	tests := []struct {
		name    string
		given   []events.Event
		project string
		want    []events.Event
		wantErr error
	}{
		{"fresh", nil, "p1", []events.Event{reserved("p1")}, nil},
		{"own again", []events.Event{reserved("p1")}, "p1", nil, nil},
		{"taken", []events.Event{reserved("p1")}, "p2", nil, slug.ErrTaken},
		{"after release", []events.Event{reserved("p1"), released("p1")}, "p2", []events.Event{reserved("p2")}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := slug.Reserve(slug.Replay(tt.given), "s", tt.project, now)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
	if got := slug.Release(slug.Replay([]events.Event{reserved("p1")}), "s", "p2", now); got != nil {
		t.Errorf("release by non-holder = %v, want none", got)
	}
	if got := slug.Release(slug.State{}, "s", "p1", now); got != nil {
		t.Errorf("release of free slug = %v, want none", got)
	}
	want := []events.Event{released("p1")}
	if diff := cmp.Diff(want, slug.Release(slug.Replay([]events.Event{reserved("p1")}), "s", "p1", now)); diff != "" {
		t.Errorf("release (-want +got):\n%s", diff)
	}
}

// The slug stream itself refuses Litehost's own host names, whoever asks: "api" on the sites
// domain would be the API host.
func TestReserveRefusesReservedNames(t *testing.T) {
	for _, s := range []string{"api", "www", "admin", "mcp", "connect", "mail", "Bad_Slug"} {
		evs, err := slug.Reserve(slug.State{}, s, "p1", now)
		var bad domain.Invalid
		if !errors.As(err, &bad) || bad["slug"] == "" || evs != nil {
			t.Errorf("Reserve(%q) = %v, %v; want a slug validation error and no events", s, evs, err)
		}
	}
}
