// Package public is the public event contract: what of the event log leaves the service through
// the SSE stream (GET /v1/events/stream, litehost events tail), the NATS forwarder and a project's
// audit log (GET /v1/projects/{id}/events). It is an allow-list: each public event type has its
// own struct here naming the fields that leave, so a field added to an event stays inside until
// someone adds it to the struct below, and a new event type stays inside until it gets a case in
// project (TestEveryTypeHasADecision fails until it has one).
//
// Nothing here carries a secret or something derived from one (API-key, refresh-token, claim-token
// or code hashes, password hashes, OTP nonces, DNS challenge tokens), a personal address (e-mail,
// phone: an account ID stands for the person), or where a request came from (client IP, user agent).
package public

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/litehost/litehost/events"
)

// Private lists the event types that never leave the service, with the reason docs/events.md
// gives. Every other type known to events.Decode must have a case in project.
var Private = map[string]string{
	events.TypeIdentityClaimed:    "Its stream name is the keyed hash of an e-mail address or phone number; account.registered.v1 tells the same without it.",
	events.TypeOTPRequested:       "The sign-in code flow: the address, the nonce the code is derived from and the code's hash.",
	events.TypeOTPAttemptFailed:   "The sign-in code flow: the code's nonce, in a stream named by the keyed hash of an address.",
	events.TypeOTPVerified:        "The sign-in code flow: the address and the code's nonce; account.session_started.v1 tells that a sign-in happened.",
	events.TypeOTPCancelled:       "The sign-in code flow: the code's nonce, in a stream named by the keyed hash of an address.",
	events.TypeOTPLocked:          "The sign-in code flow, in a stream named by the keyed hash of an address.",
	events.TypeOTPRequestedV2:     "The sign-in code flow: the address the code goes to, in a stream named by the keyed hash of it.",
	events.TypeOTPAttemptFailedV2: "The sign-in code flow: a keyed hash of the guessing client's network, in a stream named by the keyed hash of an address.",
	events.TypeOTPVerifiedV2:      "The sign-in code flow: the address; account.session_started tells that a sign-in happened.",
}

// Metadata is the public part of an event's metadata: who acted and which request or process run
// it belongs to. The client's network and user agent stay in the log for operators.
type Metadata struct {
	Actor         string `json:"actor"`
	CorrelationID string `json:"correlationId"`
	CausationID   string `json:"causationId"`
	RequestID     string `json:"requestId"`
}

// Event is one recorded event as it leaves the service.
type Event struct {
	ID        string
	Stream    string
	Version   uint64
	Type      string
	Position  events.Position
	CreatedAt time.Time
	Data      json.RawMessage // the JSON of the type's public struct
	Metadata  Metadata
}

// FromRecord returns the public form of rec, or false when its type is private or unknown to this
// build (an event the service cannot name is not one it can vouch for). A known type whose data
// or metadata does not decode is an error: a corrupt event.
func FromRecord(rec events.RecordedEvent) (Event, bool, error) {
	if _, private := Private[rec.Type]; private {
		return Event{}, false, nil
	}
	ev, err := events.Decode(rec.Type, rec.Data)
	if errors.Is(err, events.ErrUnknownType) {
		return Event{}, false, nil
	}
	if err != nil {
		return Event{}, false, fmt.Errorf("event %s: %w", rec.ID, err)
	}
	v, ok := Project(ev)
	if !ok {
		return Event{}, false, nil
	}
	data, err := json.Marshal(v)
	if err != nil {
		return Event{}, false, fmt.Errorf("event %s: encode public data: %w", rec.ID, err)
	}
	md, err := events.ParseMetadata(rec.Metadata)
	if err != nil {
		return Event{}, false, fmt.Errorf("event %s: %w", rec.ID, err)
	}
	return Event{
		ID: rec.ID.String(), Stream: rec.Stream, Version: rec.Version, Type: rec.Type, Position: rec.Position,
		CreatedAt: rec.CreatedAt, Data: data,
		Metadata: Metadata{Actor: md.Actor, CorrelationID: md.CorrelationID, CausationID: md.CausationID, RequestID: md.RequestID},
	}, true, nil
}

// Project returns the public struct of ev, or false when ev's type is private. A type without a
// case here is private too: leaving the service is opt-in.
func Project(ev events.Event) (any, bool) {
	switch e := ev.(type) {
	case events.AccountRegistered:
		return AccountRegistered{AccountID: e.AccountID, Plan: e.Plan, Limits: e.Limits, At: e.At}, true
	case events.PlanChanged:
		return PlanChanged{AccountID: e.AccountID, Plan: e.Plan, PreviousPlan: e.PreviousPlan, Limits: e.Limits, At: e.At}, true
	case events.SessionStarted:
		return SessionStarted{AccountID: e.AccountID, ExpiresAt: e.ExpiresAt, RefreshExpiresAt: e.RefreshExpiresAt, At: e.At}, true
	case events.SessionRefreshed:
		return SessionRefreshed{AccountID: e.AccountID, ExpiresAt: e.ExpiresAt, RefreshExpiresAt: e.RefreshExpiresAt, At: e.At}, true
	case events.SessionStartedV2: // key and token IDs stay inside: with the server secret they are the credentials
		return SessionStarted{AccountID: e.AccountID, ExpiresAt: e.ExpiresAt, RefreshExpiresAt: e.RefreshExpiresAt, At: e.At}, true
	case events.SessionRefreshedV2:
		return SessionRefreshed{AccountID: e.AccountID, ExpiresAt: e.ExpiresAt, RefreshExpiresAt: e.RefreshExpiresAt, At: e.At}, true
	case events.SessionExtended:
		return SessionExtended{AccountID: e.AccountID, ExpiresAt: e.ExpiresAt, At: e.At}, true
	case events.TrialStarted:
		return TrialStarted{AccountID: e.AccountID, Plan: e.Plan, EndsAt: e.EndsAt, At: e.At}, true
	case events.TrialEnded:
		return TrialEnded{AccountID: e.AccountID, Reason: e.Reason, At: e.At}, true
	case events.SessionRevoked:
		return SessionRevoked{AccountID: e.AccountID, Reason: e.Reason, At: e.At}, true
	case events.ProjectCreated:
		return ProjectCreated{ProjectID: e.ProjectID, OwnerID: e.OwnerID, WorkspaceID: e.WorkspaceID, Temporary: e.Temporary,
			Settings: settings(e.Settings), Deployment: deployment(e.Deployment), At: e.At}, true
	case events.ProjectVersionPushed:
		return ProjectVersionPushed{ProjectID: e.ProjectID, Deployment: deployment(e.Deployment), At: e.At}, true
	case events.ProjectSettingsUpdated:
		return ProjectSettingsUpdated{ProjectID: e.ProjectID, Settings: settings(e.Settings), Changed: e.Changed, At: e.At}, true
	case events.ProjectArchived:
		return ProjectArchived{ProjectID: e.ProjectID, At: e.At}, true
	case events.ProjectUnarchived:
		return ProjectUnarchived{ProjectID: e.ProjectID, At: e.At}, true
	case events.ProjectClaimed:
		return ProjectClaimed{ProjectID: e.ProjectID, OwnerID: e.OwnerID, ExpiresAt: e.ExpiresAt, At: e.At}, true
	case events.ProjectExpired:
		return ProjectExpired{ProjectID: e.ProjectID, ExpiresAt: e.ExpiresAt, At: e.At}, true
	case events.ProjectMoved:
		return ProjectMoved{ProjectID: e.ProjectID, FromWorkspaceID: e.FromWorkspaceID, ToWorkspaceID: e.ToWorkspaceID, At: e.At}, true
	case events.ProjectDeleted:
		return ProjectDeleted{ProjectID: e.ProjectID, Slug: e.Slug, At: e.At}, true
	case events.SlugReserved:
		return SlugReserved{Slug: e.Slug, ProjectID: e.ProjectID, At: e.At}, true
	case events.SlugReleased:
		return SlugReleased{Slug: e.Slug, ProjectID: e.ProjectID, At: e.At}, true
	case events.WorkspaceCreated:
		return WorkspaceCreated{WorkspaceID: e.WorkspaceID, OwnerID: e.OwnerID, Name: e.Name, At: e.At}, true
	case events.WorkspaceRenamed:
		return WorkspaceRenamed{WorkspaceID: e.WorkspaceID, Name: e.Name, PreviousName: e.PreviousName, At: e.At}, true
	case events.WorkspaceDeleted:
		return WorkspaceDeleted{WorkspaceID: e.WorkspaceID, OwnerID: e.OwnerID, At: e.At}, true
	case events.DomainAdded:
		return DomainAdded{DomainID: e.DomainID, OwnerID: e.OwnerID, Hostname: e.Hostname, Status: e.Status,
			VerifiedAt: e.VerifiedAt, At: e.At}, true
	case events.DomainStatusChanged:
		return DomainStatusChanged{DomainID: e.DomainID, Hostname: e.Hostname, Status: e.Status,
			PreviousStatus: e.PreviousStatus, VerifiedAt: e.VerifiedAt, At: e.At}, true
	case events.DomainRemoved:
		return DomainRemoved{DomainID: e.DomainID, Hostname: e.Hostname, At: e.At}, true
	case events.DomainHostnameReserved:
		return DomainHostnameReserved{Hostname: e.Hostname, DomainID: e.DomainID, At: e.At}, true
	case events.DomainHostnameReleased:
		return DomainHostnameReleased{Hostname: e.Hostname, DomainID: e.DomainID, At: e.At}, true
	}
	return nil, false
}

func settings(s events.ProjectSettings) ProjectSettings {
	return ProjectSettings{Title: s.Title, Slug: s.Slug, DomainID: s.DomainID, Status: s.Status, Access: s.Access,
		PasswordProtected: s.PasswordHash != "", NoIndex: s.NoIndex, DisableDownloads: s.DisableDownloads,
		PageTitle: s.PageTitle, MetaDescription: s.MetaDescription, AnalyticsEnabled: s.AnalyticsEnabled, ExpiresAt: s.ExpiresAt}
}

func deployment(d events.Deployment) Deployment {
	return Deployment{DeploymentID: d.DeploymentID, Version: d.Version, Type: d.Type, IndexPath: d.IndexPath,
		FileCount: d.FileCount, SizeBytes: d.SizeBytes, RollbackOf: d.RollbackOf}
}
