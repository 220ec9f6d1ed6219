// Package slug holds the rules of site addresses: what a slug may look like, how one is derived
// from a title, and the reservation stream (slug-<slug>) that makes each slug unique.
//
// Rules:
//   - a slug is a DNS label: ^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$, and not a reserved word;
//   - a slug belongs to at most one project; reserving a slug held by another project fails with
//     ErrTaken, reserving one's own slug again changes nothing;
//   - only the holder releases a slug; releasing a free slug changes nothing.
package slug

import (
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"

	"golang.org/x/text/unicode/norm"

	"github.com/litehost/litehost/domain"
	"github.com/litehost/litehost/events"
)

// ErrTaken is a reservation of a slug that another project holds.
const ErrTaken = domain.Error("slug is already taken")

// MaxLen is the longest slug: a DNS label.
const MaxLen = 63

var label = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// reserved are names a site may not take: they are, or could become, Litehost's own hosts.
var reserved = map[string]bool{
	"www": true, "api": true, "admin": true, "app": true, "mail": true, "smtp": true, "imap": true,
	"pop": true, "ftp": true, "ns": true, "ns1": true, "ns2": true, "dns": true, "mx": true,
	"dashboard": true, "docs": true, "status": true, "static": true, "assets": true, "cdn": true,
	"blog": true, "help": true, "support": true, "auth": true, "login": true, "account": true,
	"billing": true, "connect": true, "litehost": true, "root": true, "localhost": true,
	"internal": true, "system": true, "claim": true, "temp": true, "mcp": true,
}

// Stream is the reservation stream of slug s.
func Stream(s string) string { return "slug-" + s }

// Validate returns a message for a slug that cannot be used, or "" for a good one.
func Validate(s string) string {
	switch {
	case s == "":
		return "must not be empty"
	case len(s) > MaxLen:
		return "must be at most 63 characters"
	case !label.MatchString(s):
		return "must be lowercase letters, digits and hyphens, not starting or ending with a hyphen"
	case reserved[s]:
		return "is reserved"
	}
	return ""
}

// FromTitle derives a slug base from a title: accents stripped, lowercase, runs of anything else
// turned into one hyphen, cut to fit a suffix. A title with nothing usable gives "site", and a
// base that is a reserved word gets "-site" appended, so the result always validates.
func FromTitle(title string) string {
	var b strings.Builder
	hyphen := false
	for _, r := range norm.NFKD.String(title) {
		switch {
		case unicode.Is(unicode.Mn, r):
			continue
		case r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)):
			if hyphen && b.Len() > 0 {
				b.WriteByte('-')
			}
			hyphen = false
			b.WriteRune(unicode.ToLower(r))
		default:
			hyphen = true
		}
	}
	s := b.String()
	// Leave room for "-NNNN" so every suffixed candidate is still a valid label.
	if len(s) > MaxLen-5 {
		s = strings.TrimRight(s[:MaxLen-5], "-")
	}
	if s == "" {
		return "site"
	}
	if reserved[s] {
		return s + "-site"
	}
	return s
}

// Candidate returns the n-th slug to try for base: base itself, then base-2, base-3, …
func Candidate(base string, n int) string {
	if n <= 1 {
		return base
	}
	return base + "-" + strconv.Itoa(n)
}

// State is a slug stream folded: who holds the slug, if anyone.
type State struct {
	Holder string // project ID; "" when free
}

// Evolve applies one event.
func Evolve(s State, e events.Event) State {
	switch e := e.(type) {
	case events.SlugReserved:
		s.Holder = e.ProjectID
	case events.SlugReleased:
		s.Holder = ""
	}
	return s
}

// Replay folds a stream's events.
func Replay(evs []events.Event) State {
	var s State
	for _, e := range evs {
		s = Evolve(s, e)
	}
	return s
}

// Reserve gives slug to projectID. A slug that breaks the label rules or is reserved is refused
// here too, not only by callers that ran Validate first: a reserved name such as "api" would take
// one of Litehost's own hosts, so no path to the slug stream may hand it out.
func Reserve(s State, slug, projectID string, now time.Time) ([]events.Event, error) {
	if msg := Validate(slug); msg != "" {
		return nil, domain.Invalid{"slug": msg}
	}
	switch s.Holder {
	case projectID:
		return nil, nil
	case "":
		return []events.Event{events.SlugReserved{Slug: slug, ProjectID: projectID, At: now}}, nil
	}
	return nil, ErrTaken
}

// Release frees slug if projectID holds it.
func Release(s State, slug, projectID string, now time.Time) []events.Event {
	if s.Holder != projectID || projectID == "" {
		return nil
	}
	return []events.Event{events.SlugReleased{Slug: slug, ProjectID: projectID, At: now}}
}

var adjectives = []string{
	"amber", "bold", "brave", "bright", "calm", "clever", "cosy", "crisp", "eager", "fancy",
	"gentle", "golden", "happy", "jolly", "keen", "lively", "lucky", "mellow", "merry", "misty",
	"noble", "proud", "quick", "quiet", "rapid", "royal", "shiny", "silver", "sunny", "swift",
	"tidy", "vivid", "warm", "wild", "wise", "zesty",
}

var nouns = []string{
	"badger", "bear", "bee", "cloud", "comet", "crane", "deer", "dove", "eagle", "falcon",
	"fern", "fox", "frog", "hawk", "heron", "lake", "lark", "leaf", "lynx", "maple",
	"moon", "moss", "otter", "owl", "panda", "pine", "river", "robin", "seal", "star",
	"stone", "swan", "tiger", "wave", "whale", "wolf",
}

// Random returns a temporary project's slug, adjective-noun-NN (e.g. "blue-fox-42"), drawing
// from intn (rand.IntN in production; a fixed sequence in tests). None of them is reserved.
func Random(intn func(n int) int) string {
	return adjectives[intn(len(adjectives))] + "-" + nouns[intn(len(nouns))] + "-" + strconv.Itoa(10+intn(90))
}
