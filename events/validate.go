package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/google/uuid"
)

// ValidateAppend rejects what the Store port forbids in an Append, with an error that says what
// is wrong. Every adapter calls it before anything is written, so that all of them refuse the
// same input: EventStoreDB itself would write an empty batch, duplicate ids and non-JSON data.
func ValidateAppend(stream string, expected Expected, evs []EventData) error {
	switch {
	case stream == "":
		return errors.New("append: empty stream name")
	case strings.HasPrefix(stream, "$"):
		return fmt.Errorf("append %s: system streams are read-only", stream)
	case len(evs) == 0:
		return fmt.Errorf("append %s: no events", stream)
	case expected.Kind < KindAny || expected.Kind > KindExact:
		return fmt.Errorf("append %s: unknown expected kind %d", stream, expected.Kind)
	case expected.Kind == KindExact && expected.Version > math.MaxInt64:
		return fmt.Errorf("append %s: expected version %d out of range", stream, expected.Version)
	}
	seen := make(map[uuid.UUID]struct{}, len(evs))
	for i, e := range evs {
		switch {
		case e.ID == uuid.Nil:
			return fmt.Errorf("append %s: event %d has no id", stream, i)
		case e.Type == "":
			return fmt.Errorf("append %s: event %d has no type", stream, i)
		case !json.Valid(e.Data):
			return fmt.Errorf("append %s: event %d (%s): data is not valid JSON", stream, i, e.Type)
		case len(e.Metadata) > 0 && !json.Valid(e.Metadata):
			return fmt.Errorf("append %s: event %d (%s): metadata is not valid JSON", stream, i, e.Type)
		}
		if _, dup := seen[e.ID]; dup {
			return fmt.Errorf("append %s: event id %s appears twice in the batch", stream, e.ID)
		}
		seen[e.ID] = struct{}{}
	}
	return nil
}
