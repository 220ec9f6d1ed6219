package events

import "time"

// Custom-domain event types. A domain lives in stream domain-<uuid>; its hostname is made unique
// by the reservation stream hostname-<hostname>, whose events carry the "domain" prefix too so
// that one decoder and one type-prefix filter cover both.
const (
	TypeDomainAdded            = "domain.added.v1"
	TypeDomainStatusChanged    = "domain.status_changed.v1"
	TypeDomainRemoved          = "domain.removed.v1"
	TypeDomainHostnameReserved = "domain.hostname_reserved.v1"
	TypeDomainHostnameReleased = "domain.hostname_released.v1"
)

// DomainAdded records a custom domain of OwnerID. The value of the DNS TXT record that proves
// control of the hostname is derived from the server secret and DomainID
// (secret.Keyring.DomainChallenge), so the event does not carry it; ChallengeToken is set only in
// events written before that, whose token verification still accepts.
type DomainAdded struct {
	DomainID       string     `json:"domainId"`
	OwnerID        string     `json:"ownerId"`
	Hostname       string     `json:"hostname"`
	Status         string     `json:"status"`
	ChallengeToken string     `json:"challengeToken,omitempty"`
	VerifiedAt     *time.Time `json:"verifiedAt"`
	At             time.Time  `json:"at"`
}

// EventType implements Event.
func (DomainAdded) EventType() string { return TypeDomainAdded }

// DomainStatusChanged moves a domain to Status (spec §4.5). VerifiedAt is the time the domain was
// first verified, nil while it never was.
type DomainStatusChanged struct {
	DomainID       string     `json:"domainId"`
	Hostname       string     `json:"hostname"`
	Status         string     `json:"status"`
	PreviousStatus string     `json:"previousStatus"`
	VerifiedAt     *time.Time `json:"verifiedAt"`
	At             time.Time  `json:"at"`
}

// EventType implements Event.
func (DomainStatusChanged) EventType() string { return TypeDomainStatusChanged }

// DomainRemoved ends a domain; its hostname is released by the same command.
type DomainRemoved struct {
	DomainID string    `json:"domainId"`
	Hostname string    `json:"hostname"`
	At       time.Time `json:"at"`
}

// EventType implements Event.
func (DomainRemoved) EventType() string { return TypeDomainRemoved }

// DomainHostnameReserved makes DomainID the holder of Hostname (stream hostname-<hostname>).
type DomainHostnameReserved struct {
	Hostname string    `json:"hostname"`
	DomainID string    `json:"domainId"`
	At       time.Time `json:"at"`
}

// EventType implements Event.
func (DomainHostnameReserved) EventType() string { return TypeDomainHostnameReserved }

// DomainHostnameReleased frees Hostname, which DomainID held.
type DomainHostnameReleased struct {
	Hostname string    `json:"hostname"`
	DomainID string    `json:"domainId"`
	At       time.Time `json:"at"`
}

// EventType implements Event.
func (DomainHostnameReleased) EventType() string { return TypeDomainHostnameReleased }

// decodeDomain decodes the events of domain and hostname streams.
func decodeDomain(eventType string, data []byte) (Event, error) {
	switch eventType {
	case TypeDomainAdded:
		return unmarshal[DomainAdded](data)
	case TypeDomainStatusChanged:
		return unmarshal[DomainStatusChanged](data)
	case TypeDomainRemoved:
		return unmarshal[DomainRemoved](data)
	case TypeDomainHostnameReserved:
		return unmarshal[DomainHostnameReserved](data)
	case TypeDomainHostnameReleased:
		return unmarshal[DomainHostnameReleased](data)
	}
	return nil, ErrUnknownType
}
