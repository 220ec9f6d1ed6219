// Package domain holds Litehost's business rules as pure functions over aggregate state, in one
// subpackage per aggregate. It does no I/O and reads no clock: time is passed in.
package domain

import (
	"maps"
	"slices"
	"strings"
)

// Error is a broken business rule. Each aggregate declares its rules as constants of this type,
// so errors.Is matches one rule and errors.As to Error matches them all.
type Error string

// Error implements error with the rule's text.
func (e Error) Error() string { return string(e) }

// Invalid reports input that is well-formed but breaks field constraints: field name → problem.
type Invalid map[string]string

// Error implements error, listing the fields in name order.
func (v Invalid) Error() string {
	var b strings.Builder
	b.WriteString("invalid input: ")
	for i, k := range slices.Sorted(maps.Keys(v)) {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(k + ": " + v[k])
	}
	return b.String()
}
