package commands

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/google/uuid"

	"github.com/litehost/litehost/domain/account"
	"github.com/litehost/litehost/domain/customdomain"
	"github.com/litehost/litehost/events"
	"github.com/litehost/litehost/events/secret"
)

// TXTResolver looks up DNS TXT records; *net.Resolver implements it.
type TXTResolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
}

// DomainCounter counts the projects assigned to a domain (the domains read model).
type DomainCounter interface {
	DomainProjectCount(ctx context.Context, domainID string) (int, error)
}

// NewDNSResolver returns the resolver that checks domain challenges. addr is "host:port" of the
// DNS server to ask (LITEHOST_DNS_RESOLVER); empty means the system's resolver.
func NewDNSResolver(addr string) *net.Resolver {
	if addr == "" {
		return &net.Resolver{}
	}
	var d net.Dialer
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return d.DialContext(ctx, network, addr)
	}}
}

// dnsTimeout bounds one challenge lookup.
const dnsTimeout = 5 * time.Second

// Domains handles the custom-domain commands: adding a domain (owners through the API with a
// DNS challenge; operators with any status), verifying it, changing its status (operators) and
// removing it. Hostnames are unique through hostname-<hostname> reservation streams, reserved
// before the domain stream is written and released when it is removed (or its write failed).
type Domains struct {
	store    EventStore
	exec     *Executor
	keys     *secret.Keyring
	resolver TXTResolver
	counts   DomainCounter
	// pendingTTL is how long an unverified domain holds its hostname against other domains.
	pendingTTL time.Duration
	now        func() time.Time
	logger     *slog.Logger
}

// NewDomains returns the domain command handlers. resolver answers the DNS challenge lookups
// (NewDNSResolver), counts tells whether a domain is still in use (a *PGScopes).
func NewDomains(store EventStore, keys *secret.Keyring, resolver TXTResolver, counts DomainCounter, now func() time.Time, logger *slog.Logger) *Domains {
	return &Domains{store: store, exec: NewExecutor(store), keys: keys, resolver: resolver, counts: counts,
		pendingTTL: customdomain.DefaultPendingTTL, now: now, logger: logger}
}

// WithPendingTTL sets how long an unverified domain holds its hostname (LITEHOST_DOMAIN_PENDING_TTL);
// ttl <= 0 keeps customdomain.DefaultPendingTTL.
func (d *Domains) WithPendingTTL(ttl time.Duration) *Domains {
	if ttl > 0 {
		d.pendingTTL = ttl
	}
	return d
}

// DomainResult is a domain as a command left it.
type DomainResult struct {
	ID             string
	Hostname       string
	Status         string
	ChallengeToken string
	VerifiedAt     *time.Time
	CreatedAt      time.Time
	Position       events.Position
}

// Add adds hostname as a domain of accountID waiting for its DNS challenge (POST /v1/domains).
func (d *Domains) Add(ctx context.Context, commandID uuid.UUID, accountID, hostname string) (DomainResult, error) {
	if err := requirePaid(ctx, d.store, accountID); err != nil {
		return DomainResult{}, err
	}
	h, err := customdomain.Hostname("domain", hostname)
	if err != nil {
		return DomainResult{}, err
	}
	return d.add(ctx, commandID, accountID, h, customdomain.StatusPendingVerification)
}

// AddDomain adds hostname for the account of owner with status ("" = active), for operators
// (litehost admin domains add). An unknown owner is ErrNotFound; a bad hostname or status is
// domain.Invalid; a hostname another domain holds is customdomain.ErrTaken. The command ID comes
// from ctx (CommandIDFrom).
func (d *Domains) AddDomain(ctx context.Context, owner Identifier, hostname, status string) (DomainResult, error) {
	if status == "" {
		status = customdomain.StatusActive
	}
	if err := customdomain.CheckStatus(status); err != nil {
		return DomainResult{}, err
	}
	h, err := customdomain.Hostname("domain", hostname)
	if err != nil {
		return DomainResult{}, err
	}
	if err := validIdentifier(owner); err != nil {
		return DomainResult{}, err
	}
	accountID, err := d.accountOf(ctx, owner)
	if err != nil {
		return DomainResult{}, err
	}
	ctx = operatorContext(ctx)
	return d.add(ctx, CommandIDFrom(ctx), accountID, h, status)
}

// accountOf finds the registered account of an identifier through its identity stream.
func (d *Domains) accountOf(ctx context.Context, id Identifier) (string, error) {
	s, err := Load(ctx, d.store, "identity-"+d.keys.Hash(secret.PurposeIdentifier, id.Value))
	if err != nil {
		return "", err
	}
	for _, e := range s.Events {
		if c, ok := e.(events.IdentityClaimed); ok {
			a, err := Load(ctx, d.store, "account-"+c.AccountID)
			if err != nil {
				return "", err
			}
			if !account.Replay(a.Events).Registered {
				return "", ErrNotFound
			}
			return c.AccountID, nil
		}
	}
	return "", ErrNotFound
}

func operatorContext(ctx context.Context) context.Context {
	md := events.MetadataFrom(ctx)
	if md.Actor == "" || md.Actor == events.ActorAnonymous {
		md.Actor = events.SystemActor("admin")
	}
	return events.WithMetadata(ctx, md)
}

func (d *Domains) add(ctx context.Context, commandID uuid.UUID, accountID, hostname, status string) (DomainResult, error) {
	now := d.now().UTC()
	domainID := subID(commandID, "domain")
	cmd := customdomain.Add{DomainID: domainID, OwnerID: accountID, Hostname: hostname, Status: status}
	// Decide once against an empty domain first, so a request that breaks a rule never touches
	// the hostname's reservation stream.
	if _, err := cmd.Decide(customdomain.State{}, now); err != nil {
		return DomainResult{}, err
	}
	reserve := func() error {
		_, err := d.exec.Execute(ctx, commandID, customdomain.HostnameStream(hostname), func(s Stream) ([]events.Event, error) {
			return customdomain.Reserve(customdomain.ReplayReservation(s.Events), hostname, domainID, now)
		})
		return err
	}
	err := reserve()
	if errors.Is(err, customdomain.ErrTaken) {
		// The holder may be a domain that never proved control within the pending TTL: it is
		// ended here, by the add that needs its hostname, and the reservation is tried again.
		var expired bool
		if expired, err = d.expireHolder(ctx, commandID, hostname, now); err == nil {
			err = customdomain.ErrTaken
			if expired {
				err = reserve()
			}
		}
	}
	if err != nil {
		return DomainResult{}, err
	}
	res, err := d.exec.Execute(ctx, commandID, customdomain.Stream(domainID), func(s Stream) ([]events.Event, error) {
		return cmd.Decide(customdomain.Replay(s.Events), now)
	})
	if err != nil {
		d.release(ctx, commandID, hostname, domainID)
		return DomainResult{}, err
	}
	return d.result(ctx, domainID, res.Position)
}

// expireHolder ends the domain holding hostname when it is stale (never verified, added at least
// the pending TTL before now) and releases the hostname, as the system (actor
// system:domain-expiry). It reports whether the hostname was freed; a holder that is not stale
// leaves everything as it was. The IDs derive from the add's command ID, so a retried add
// expires once.
func (d *Domains) expireHolder(ctx context.Context, commandID uuid.UUID, hostname string, now time.Time) (bool, error) {
	rs, err := Load(ctx, d.store, customdomain.HostnameStream(hostname))
	if err != nil {
		return false, err
	}
	holder := customdomain.ReplayReservation(rs.Events).Holder
	if holder == "" {
		return true, nil // released meanwhile
	}
	hs, err := Load(ctx, d.store, customdomain.Stream(holder))
	if err != nil {
		return false, err
	}
	if !customdomain.Replay(hs.Events).Stale(now, d.pendingTTL) {
		return false, nil
	}
	md := events.MetadataFrom(ctx)
	md.Actor = events.SystemActor("domain-expiry")
	ctx = events.WithMetadata(ctx, md)
	expireID := uuid.NewSHA1(commandID, []byte("expire:"+holder))
	if _, err := d.exec.Execute(ctx, expireID, customdomain.Stream(holder), func(s Stream) ([]events.Event, error) {
		return customdomain.Expire(customdomain.Replay(s.Events), now, d.pendingTTL)
	}); err != nil {
		if errors.Is(err, customdomain.ErrTaken) {
			return false, nil // verified meanwhile: it keeps the hostname
		}
		return false, err
	}
	d.release(ctx, expireID, hostname, holder)
	return true, nil
}

// release frees a hostname domainID holds. A failure is logged, not returned: the caller already
// answers with its own outcome, and a leftover reservation only blocks that hostname until an
// operator releases it.
func (d *Domains) release(ctx context.Context, commandID uuid.UUID, hostname, domainID string) {
	releaseID := uuid.NewSHA1(commandID, []byte("release:"+hostname))
	_, err := d.exec.Execute(ctx, releaseID, customdomain.HostnameStream(hostname), func(s Stream) ([]events.Event, error) {
		return customdomain.Release(customdomain.ReplayReservation(s.Events), hostname, domainID, d.now().UTC()), nil
	})
	if err != nil {
		d.logger.Error("release hostname", "hostname", hostname, "domain_id", domainID, "error", err)
	}
}

// result describes domain id from its stream.
func (d *Domains) result(ctx context.Context, id string, pos events.Position) (DomainResult, error) {
	s, err := Load(ctx, d.store, customdomain.Stream(id))
	if err != nil {
		return DomainResult{}, err
	}
	st := customdomain.Replay(s.Events)
	return DomainResult{ID: st.ID, Hostname: st.Hostname, Status: st.Status, ChallengeToken: d.keys.DomainChallenge(st.ID),
		VerifiedAt: st.VerifiedAt, CreatedAt: st.CreatedAt, Position: pos}, nil
}

// SetDomainStatus moves the domain of hostname to status, for operators (litehost admin domains
// set-status). An unknown hostname is ErrNotFound; the current status changes nothing and returns
// the zero Position. The command ID comes from ctx (CommandIDFrom).
func (d *Domains) SetDomainStatus(ctx context.Context, hostname, status string) (events.Position, error) {
	if err := customdomain.CheckStatus(status); err != nil {
		return events.Position{}, err
	}
	h, err := customdomain.Hostname("hostname", hostname)
	if err != nil {
		return events.Position{}, err
	}
	r, err := Load(ctx, d.store, customdomain.HostnameStream(h))
	if err != nil {
		return events.Position{}, err
	}
	id := customdomain.ReplayReservation(r.Events).Holder
	if id == "" {
		return events.Position{}, ErrNotFound
	}
	ctx = operatorContext(ctx)
	res, err := d.exec.Execute(ctx, CommandIDFrom(ctx), customdomain.Stream(id), func(s Stream) ([]events.Event, error) {
		return customdomain.SetStatus(customdomain.Replay(s.Events), status, d.now().UTC())
	})
	if errors.Is(err, customdomain.ErrNotFound) {
		return events.Position{}, ErrNotFound
	}
	return res.Position, err
}

// Verify looks up the challenge TXT record of accountID's domain id and makes the domain active
// when it holds the challenge value (customdomain.ErrVerificationFailed otherwise). A domain that
// is already verified stays as it is.
func (d *Domains) Verify(ctx context.Context, commandID uuid.UUID, accountID, id string) (DomainResult, error) {
	if err := requirePaid(ctx, d.store, accountID); err != nil {
		return DomainResult{}, err
	}
	if uuid.Validate(id) != nil {
		return DomainResult{}, customdomain.ErrNotFound
	}
	cur, err := Load(ctx, d.store, customdomain.Stream(id))
	if err != nil {
		return DomainResult{}, err
	}
	st := customdomain.Replay(cur.Events)
	if err := st.OwnedBy(accountID); err != nil {
		return DomainResult{}, err
	}
	var txt []string
	if st.NeedsVerification() {
		lctx, cancel := context.WithTimeout(ctx, dnsTimeout)
		txt, err = d.resolver.LookupTXT(lctx, customdomain.ChallengeName(st.Hostname))
		cancel()
		if err != nil {
			// A missing record and an unreachable DNS server both leave control unproven: the
			// owner is told to check the record; the detail goes to the debug log.
			d.logger.Debug("challenge lookup", "hostname", st.Hostname, "error", err)
		}
	}
	res, err := d.exec.Execute(ctx, commandID, customdomain.Stream(id), func(s Stream) ([]events.Event, error) {
		return customdomain.Verify(customdomain.Replay(s.Events), accountID, txt, d.keys.DomainChallenge(id), d.now().UTC())
	})
	if err != nil {
		return DomainResult{}, err
	}
	return d.result(ctx, id, res.Position)
}

// Remove removes accountID's domain id when no project uses it (customdomain.ErrInUse) and
// releases its hostname.
func (d *Domains) Remove(ctx context.Context, commandID uuid.UUID, accountID, id string) (events.Position, error) {
	if err := requirePaid(ctx, d.store, accountID); err != nil {
		return events.Position{}, err
	}
	if uuid.Validate(id) != nil {
		return events.Position{}, customdomain.ErrNotFound
	}
	// In use is judged on the read model: an assignment still being projected can slip past,
	// but every answered write has been projected, so a client's own sequence is always seen.
	n, err := d.counts.DomainProjectCount(ctx, id)
	if err != nil {
		return events.Position{}, fmt.Errorf("remove domain %s: %w", id, err)
	}
	var hostname string
	res, err := d.exec.Execute(ctx, commandID, customdomain.Stream(id), func(s Stream) ([]events.Event, error) {
		st := customdomain.Replay(s.Events)
		hostname = st.Hostname
		return customdomain.Remove(st, accountID, n, d.now().UTC())
	})
	if err != nil {
		return events.Position{}, err
	}
	if hostname == "" { // replayed: decide did not run
		for _, e := range res.Events {
			if r, ok := e.(events.DomainRemoved); ok {
				hostname = r.Hostname
			}
		}
	}
	d.release(ctx, commandID, hostname, id)
	return res.Position, nil
}
