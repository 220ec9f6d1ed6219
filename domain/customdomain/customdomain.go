// Package customdomain holds the rules of a custom domain (stream domain-<uuid>) and of the
// reservation that makes its hostname unique (stream hostname-<hostname>). The package is not
// called "domain" because that name belongs to the rules' parent package.
//
// Rules (spec §4.5; DESIGN §2, §5, §12):
//   - a hostname is lowercase DNS labels (1–63 of a-z, 0-9 and inner hyphens) joined by dots, at
//     least two labels, no trailing dot, at most 253 characters, and its last label starts with a
//     letter (so an IP address is never a hostname); input is trimmed and lowercased first;
//   - a hostname belongs to at most one domain: reserving one that another domain holds is
//     ErrTaken; only the holder releases it, and removing a domain releases its hostname;
//   - statuses are those of spec §4.5; only active and ssl_active domains can be assigned to a
//     project (ErrNotActive otherwise);
//   - a domain is visible only to its owner; a removed one, another account's one and a missing
//     one are all ErrNotFound;
//   - an owner proves control of the hostname with a DNS TXT record holding the domain's challenge
//     token: found, the domain becomes active (verifiedAt set once); not found is
//     ErrVerificationFailed; verifying a domain that is already verified changes nothing;
//   - a domain that a project still uses cannot be removed (ErrInUse);
//   - a domain that never proved control holds its hostname against other domains only for the
//     pending time-to-live (DefaultPendingTTL, 72 h) after it was added: after that it is stale,
//     and a new domain for the hostname ends it (Expire) and takes the hostname. Until then the
//     owner may still verify it.
package customdomain

import (
	"slices"
	"strings"
	"time"

	"github.com/litehost/litehost/domain"
	"github.com/litehost/litehost/events"
)

// Rule errors of custom domains.
const (
	ErrNotFound           = domain.Error("domain not found")
	ErrTaken              = domain.Error("this domain is already registered")
	ErrInUse              = domain.Error("the domain is still assigned to projects; move them off it first")
	ErrNotActive          = domain.Error("the domain is not active yet; only active or ssl_active domains can be assigned")
	ErrVerificationFailed = domain.Error("the DNS TXT record proving control of the domain was not found")
)

// Statuses of spec §4.5.
const (
	StatusPendingVerification = "pending_verification"
	StatusPropagationWait     = "propagation_wait"
	StatusActive              = "active"
	StatusErrorDNS            = "error_dns"
	StatusSSLPending          = "ssl_pending"
	StatusSSLActive           = "ssl_active"
)

// Statuses returns every status, in lifecycle order.
func Statuses() []string {
	return []string{StatusPendingVerification, StatusPropagationWait, StatusActive, StatusErrorDNS,
		StatusSSLPending, StatusSSLActive}
}

// ValidStatus reports whether s is a status of spec §4.5.
func ValidStatus(s string) bool { return slices.Contains(Statuses(), s) }

// CheckStatus returns a domain.Invalid on "status" unless s is a status of spec §4.5.
func CheckStatus(s string) error {
	if !ValidStatus(s) {
		return domain.Invalid{"status": "must be one of " + strings.Join(Statuses(), ", ")}
	}
	return nil
}

// Assignable reports whether a domain in status can be assigned to a project.
func Assignable(status string) bool { return status == StatusActive || status == StatusSSLActive }

// verified reports whether reaching status means control of the hostname was shown.
func verified(status string) bool {
	return status != StatusPendingVerification && status != StatusErrorDNS
}

// ChallengePrefix is the label under which the TXT record of a domain's challenge lives.
const ChallengePrefix = "_litehost-challenge."

// ChallengeName is the DNS name of hostname's challenge TXT record.
func ChallengeName(hostname string) string { return ChallengePrefix + hostname }

// ChallengeValue is the text the challenge TXT record must hold for token.
func ChallengeValue(token string) string { return "litehost-verification=" + token }

// Stream is the event stream of domain id.
func Stream(id string) string { return "domain-" + id }

// HostnameStream is the reservation stream of a normalized hostname.
func HostnameStream(hostname string) string { return "hostname-" + hostname }

// MaxHostname is the longest hostname (RFC 1035 without the trailing dot).
const MaxHostname = 253

// Hostname normalizes raw (trim, lowercase) and checks it; the problem is a domain.Invalid on
// field.
func Hostname(field, raw string) (string, error) {
	h := strings.ToLower(strings.TrimSpace(raw))
	if msg := hostnameProblem(h); msg != "" {
		return "", domain.Invalid{field: msg}
	}
	return h, nil
}

func hostnameProblem(h string) string {
	switch {
	case h == "":
		return "must not be empty"
	case len(h) > MaxHostname:
		return "must be at most 253 characters"
	case strings.HasSuffix(h, "."):
		return "must not end with a dot"
	}
	labels := strings.Split(h, ".")
	if len(labels) < 2 {
		return "must have at least two labels, like example.com"
	}
	for _, l := range labels {
		if !validLabel(l) {
			return "must be DNS labels of 1 to 63 lowercase letters, digits and inner hyphens, joined by dots"
		}
	}
	if tld := labels[len(labels)-1]; tld[0] < 'a' || tld[0] > 'z' {
		return "must end in a top-level domain that starts with a letter"
	}
	return ""
}

func validLabel(l string) bool {
	if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// State is a domain stream folded.
type State struct {
	ID             string
	Exists         bool
	Removed        bool
	OwnerID        string
	Hostname       string
	Status         string
	ChallengeToken string // only of domains added before tokens were derived (events.DomainAdded)
	VerifiedAt     *time.Time
	CreatedAt      time.Time
}

// Evolve applies one event. It never fails: events are facts.
func Evolve(s State, e events.Event) State {
	switch e := e.(type) {
	case events.DomainAdded:
		s = State{ID: e.DomainID, Exists: true, OwnerID: e.OwnerID, Hostname: e.Hostname, Status: e.Status,
			ChallengeToken: e.ChallengeToken, VerifiedAt: e.VerifiedAt, CreatedAt: e.At}
	case events.DomainStatusChanged:
		s.Status = e.Status
		s.VerifiedAt = e.VerifiedAt
	case events.DomainRemoved:
		s.Removed = true
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

// Live reports whether the domain exists and was not removed.
func (s State) Live() bool { return s.Exists && !s.Removed }

// OwnedBy returns ErrNotFound unless accountID owns the live domain.
func (s State) OwnedBy(accountID string) error {
	if !s.Live() || s.OwnerID != accountID {
		return ErrNotFound
	}
	return nil
}

// Add is the command that records a new domain. Its challenge token is derived from DomainID by
// the caller, not recorded.
type Add struct {
	DomainID string
	OwnerID  string
	Hostname string // normalized (Hostname)
	Status   string
}

// Decide records the domain. The hostname must already be reserved for it.
func (c Add) Decide(s State, now time.Time) ([]events.Event, error) {
	if err := CheckStatus(c.Status); err != nil {
		return nil, err
	}
	if msg := hostnameProblem(c.Hostname); msg != "" {
		return nil, domain.Invalid{"domain": msg}
	}
	if s.Exists {
		return nil, ErrTaken
	}
	var verifiedAt *time.Time
	if verified(c.Status) {
		verifiedAt = &now
	}
	return []events.Event{events.DomainAdded{DomainID: c.DomainID, OwnerID: c.OwnerID, Hostname: c.Hostname,
		Status: c.Status, VerifiedAt: verifiedAt, At: now}}, nil
}

// SetStatus moves a live domain to status (operators). The current status changes nothing.
func SetStatus(s State, status string, now time.Time) ([]events.Event, error) {
	if err := CheckStatus(status); err != nil {
		return nil, err
	}
	if !s.Live() {
		return nil, ErrNotFound
	}
	if s.Status == status {
		return nil, nil
	}
	verifiedAt := s.VerifiedAt
	if verifiedAt == nil && verified(status) {
		verifiedAt = &now
	}
	return []events.Event{events.DomainStatusChanged{DomainID: s.ID, Hostname: s.Hostname, Status: status,
		PreviousStatus: s.Status, VerifiedAt: verifiedAt, At: now}}, nil
}

// NeedsVerification reports whether the domain still waits for its DNS challenge.
func (s State) NeedsVerification() bool {
	return s.Status == StatusPendingVerification || s.Status == StatusErrorDNS
}

// Verify judges the TXT records found at the domain's challenge name: the owner's domain becomes
// active when one of them holds the challenge value of token, the domain's token derived from the
// server secret, or of the token a domain added before that recorded in its event.
func Verify(s State, accountID string, txt []string, token string, now time.Time) ([]events.Event, error) {
	if err := s.OwnedBy(accountID); err != nil {
		return nil, err
	}
	if !s.NeedsVerification() {
		return nil, nil
	}
	ok := token != "" && slices.Contains(txt, ChallengeValue(token))
	ok = ok || s.ChallengeToken != "" && slices.Contains(txt, ChallengeValue(s.ChallengeToken))
	if !ok {
		return nil, ErrVerificationFailed
	}
	return SetStatus(s, StatusActive, now)
}

// Remove ends the owner's domain; inUse is how many projects are assigned to it.
func Remove(s State, accountID string, inUse int, now time.Time) ([]events.Event, error) {
	if err := s.OwnedBy(accountID); err != nil {
		return nil, err
	}
	if inUse > 0 {
		return nil, ErrInUse
	}
	return []events.Event{events.DomainRemoved{DomainID: s.ID, Hostname: s.Hostname, At: now}}, nil
}

// CheckAssignable is the rule a project's domainId must pass: the caller's live domain, active.
func CheckAssignable(s State, accountID string) error {
	if err := s.OwnedBy(accountID); err != nil {
		return err
	}
	if !Assignable(s.Status) {
		return ErrNotActive
	}
	return nil
}

// DefaultPendingTTL is how long an unverified domain holds its hostname against others.
const DefaultPendingTTL = 72 * time.Hour

// Stale reports whether the domain no longer holds its hostname against other domains: it is
// live, has never been verified, and was added ttl or more before now.
func (s State) Stale(now time.Time, ttl time.Duration) bool {
	return s.Live() && s.VerifiedAt == nil && s.NeedsVerification() && !now.Before(s.CreatedAt.Add(ttl))
}

// Expire ends a stale domain so another domain can take its hostname (the hostname is released
// by the same command). A domain that is not stale keeps its hostname: ErrTaken; one already
// gone changes nothing.
func Expire(s State, now time.Time, ttl time.Duration) ([]events.Event, error) {
	if !s.Live() {
		return nil, nil
	}
	if !s.Stale(now, ttl) {
		return nil, ErrTaken
	}
	return []events.Event{events.DomainRemoved{DomainID: s.ID, Hostname: s.Hostname, At: now}}, nil
}

// Reservation is a hostname reservation stream folded: the domain holding it, "" when free.
type Reservation struct {
	Holder string
}

// ReplayReservation folds a hostname stream.
func ReplayReservation(evs []events.Event) Reservation {
	var r Reservation
	for _, e := range evs {
		switch e := e.(type) {
		case events.DomainHostnameReserved:
			r.Holder = e.DomainID
		case events.DomainHostnameReleased:
			if r.Holder == e.DomainID {
				r.Holder = ""
			}
		}
	}
	return r
}

// Reserve makes domainID the holder of hostname; its own reservation again changes nothing.
func Reserve(r Reservation, hostname, domainID string, now time.Time) ([]events.Event, error) {
	switch r.Holder {
	case domainID:
		return nil, nil
	case "":
		return []events.Event{events.DomainHostnameReserved{Hostname: hostname, DomainID: domainID, At: now}}, nil
	}
	return nil, ErrTaken
}

// Release frees hostname if domainID holds it; otherwise nothing changes.
func Release(r Reservation, hostname, domainID string, now time.Time) []events.Event {
	if r.Holder != domainID || domainID == "" {
		return nil
	}
	return []events.Event{events.DomainHostnameReleased{Hostname: hostname, DomainID: domainID, At: now}}
}
