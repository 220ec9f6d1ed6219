package projections

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"github.com/litehost/litehost/events"
)

// Message metadata keys set by the Subscriber.
const (
	MetaName     = "name"     // event type, e.g. "project.created.v1"
	MetaStream   = "stream"   // stream name
	MetaVersion  = "version"  // 0-based version in the stream
	MetaPosition = "position" // events.Position.String()
	MetaCreated  = "created"  // RFC 3339 with nanoseconds, UTC
	MetaMetadata = "metadata" // the event's JSON metadata (events.Metadata)
)

// marshaler connects stored events to typed cqrs handlers: messages are named by their event
// type and decoded the way events.Decode decodes them, so a projector sees exactly the structs
// the domain sees.
type marshaler struct{}

var _ interface {
	Marshal(v any) (*message.Message, error)
	Unmarshal(msg *message.Message, v any) error
	Name(v any) string
	NameFromMessage(msg *message.Message) string
} = marshaler{}

// Marshal encodes an event as a message the way the Subscriber would deliver it (without a
// position: it has not been stored). Projections only consume, but cqrs requires the method.
func (marshaler) Marshal(v any) (*message.Message, error) {
	ev, ok := v.(events.Event)
	if !ok {
		return nil, fmt.Errorf("marshal %T: not an events.Event", v)
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("marshal %s: %w", ev.EventType(), err)
	}
	msg := message.NewMessage(uuid.NewString(), b)
	msg.Metadata.Set(MetaName, ev.EventType())
	return msg, nil
}

// Unmarshal decodes the payload into v, a pointer to the handler's event struct. Types that
// events.Decode knows go through it (so upcasters and validation apply); types it does not know
// (ErrUnknownType) are plain JSON, as Decode's own unmarshal would do.
func (marshaler) Unmarshal(msg *message.Message, v any) error {
	return decodeInto(msg.Metadata.Get(MetaName), msg.Payload, v)
}

// decodeInto decodes an event payload of type name into v, a pointer to its struct.
func decodeInto(name string, payload []byte, v any) error {
	ev, err := events.Decode(name, payload)
	if errors.Is(err, events.ErrUnknownType) {
		if err := json.Unmarshal(payload, v); err != nil {
			return fmt.Errorf("decode %s: %w", name, err)
		}
		return nil
	}
	if err != nil {
		return err
	}
	dst := reflect.ValueOf(v)
	if dst.Kind() != reflect.Pointer || dst.IsNil() {
		return fmt.Errorf("decode %s into %T: want a non-nil pointer", name, v)
	}
	src := reflect.ValueOf(ev)
	if src.Kind() == reflect.Pointer && !src.Type().AssignableTo(dst.Elem().Type()) {
		src = src.Elem()
	}
	if !src.Type().AssignableTo(dst.Elem().Type()) {
		return fmt.Errorf("decode %s: got %T, handler wants %T", name, ev, v)
	}
	dst.Elem().Set(src)
	return nil
}

// Name is the event type of a handler's event (a pointer to an events.Event struct).
func (marshaler) Name(v any) string {
	if ev, ok := v.(events.Event); ok {
		return ev.EventType()
	}
	return ""
}

// NameFromMessage is the event type the Subscriber stored in the metadata.
func (marshaler) NameFromMessage(msg *message.Message) string {
	return msg.Metadata.Get(MetaName)
}
