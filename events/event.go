package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"
)

// Event is a typed domain event. Type names are "<aggregate>.<fact_past_tense>.v<N>" and never
// change meaning; a new shape is a new version with an upcaster in Decode.
type Event interface {
	EventType() string
}

// ErrUnknownType is returned by Decode for a type name it does not know.
var ErrUnknownType = errors.New("unknown event type")

// Decode turns a stored payload into its typed event. It is a switch, not a registry, so the set
// of event types is visible in one place per aggregate (decodeAccount, decodeProject, …).
func Decode(eventType string, data []byte) (Event, error) {
	var (
		ev  Event
		err error
	)
	switch Aggregate(eventType) {
	case "account":
		ev, err = decodeAccount(eventType, data)
	case "identity":
		ev, err = decodeIdentity(eventType, data)
	case "otp":
		ev, err = decodeOTP(eventType, data)
	case "project":
		ev, err = decodeProject(eventType, data)
	case "slug":
		ev, err = decodeSlug(eventType, data)
	case "workspace":
		ev, err = decodeWorkspace(eventType, data)
	case "domain":
		ev, err = decodeDomain(eventType, data)
	default:
		err = ErrUnknownType
	}
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", eventType, err)
	}
	return ev, nil
}

// Aggregate returns the aggregate prefix of an event type name ("project" for
// "project.created.v1").
func Aggregate(eventType string) string {
	a, _, _ := strings.Cut(eventType, ".")
	return a
}

// unmarshal decodes data into a new T; the decode helpers use it in their switch arms.
func unmarshal[T Event](data []byte) (Event, error) {
	var v T
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, err
	}
	return v, nil
}

// Encode marshals a typed event into EventData with the given ID and metadata.
func Encode(ev Event, id uuid.UUID, md Metadata) (EventData, error) {
	b, err := json.Marshal(ev)
	if err != nil {
		return EventData{}, fmt.Errorf("encode %s: %w", ev.EventType(), err)
	}
	return EventData{ID: id, Type: ev.EventType(), Data: b, Metadata: md.Marshal()}, nil
}
