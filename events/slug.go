package events

import "time"

// Slug event types. A slug-<slug> stream reserves one site address for one project at a time:
// reserved is appended with NoStream (or right after a release), so two projects can never hold
// the same slug even when their commands race.
const (
	TypeSlugReserved = "slug.reserved.v1"
	TypeSlugReleased = "slug.released.v1"
)

// SlugReserved gives Slug to ProjectID.
type SlugReserved struct {
	Slug      string    `json:"slug"`
	ProjectID string    `json:"projectId"`
	At        time.Time `json:"at"`
}

// EventType implements Event.
func (SlugReserved) EventType() string { return TypeSlugReserved }

// SlugReleased frees Slug, which ProjectID held, for anyone to reserve.
type SlugReleased struct {
	Slug      string    `json:"slug"`
	ProjectID string    `json:"projectId"`
	At        time.Time `json:"at"`
}

// EventType implements Event.
func (SlugReleased) EventType() string { return TypeSlugReleased }

// decodeSlug decodes the events of slug streams.
func decodeSlug(eventType string, data []byte) (Event, error) {
	switch eventType {
	case TypeSlugReserved:
		return unmarshal[SlugReserved](data)
	case TypeSlugReleased:
		return unmarshal[SlugReleased](data)
	}
	return nil, ErrUnknownType
}
