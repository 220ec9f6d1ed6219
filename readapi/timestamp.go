package readapi

import (
	"time"
)

// TimeLayout is how the API writes instants: UTC with milliseconds (DESIGN §12),
// e.g. 2026-04-09T14:23:00.000Z.
const TimeLayout = "2006-01-02T15:04:05.000Z"

// Time is an instant in a response body, written in TimeLayout.
type Time time.Time

// MarshalJSON writes t in TimeLayout, in UTC.
func (t Time) MarshalJSON() ([]byte, error) {
	return []byte(`"` + time.Time(t).UTC().Format(TimeLayout) + `"`), nil
}
