// Package readapi serves the read side: Gin handlers over the PostgreSQL read models, the
// bearer-key authentication, and the hosted sites.
package readapi

import (
	"errors"
	"maps"
	"slices"
	"strings"
)

// ErrNotFound is returned for a resource that does not exist or is not the caller's; the two are
// indistinguishable on purpose.
var ErrNotFound = errors.New("not found")

// InvalidQuery reports bad query parameters: parameter → problem.
type InvalidQuery map[string]string

// Error implements error, listing the parameters in name order.
func (q InvalidQuery) Error() string {
	var b strings.Builder
	b.WriteString("invalid query: ")
	for i, k := range slices.Sorted(maps.Keys(q)) {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(k + ": " + q[k])
	}
	return b.String()
}
