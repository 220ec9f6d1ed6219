// Package docs embeds the API contract (openapi.yaml) so the server can serve it and the tests
// can validate every request and response against it.
package docs

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"

	"github.com/getkin/kin-openapi/openapi3"
)

//go:embed openapi.yaml
var openapiYAML []byte

// OpenAPI parses and validates the embedded OpenAPI document.
func OpenAPI(ctx context.Context) (*openapi3.T, error) {
	doc, err := openapi3.NewLoader().LoadFromData(openapiYAML)
	if err != nil {
		return nil, fmt.Errorf("load openapi.yaml: %w", err)
	}
	if err := doc.Validate(ctx); err != nil {
		return nil, fmt.Errorf("validate openapi.yaml: %w", err)
	}
	return doc, nil
}

// OpenAPIJSON returns the OpenAPI document as JSON, for GET /v1/openapi.json.
func OpenAPIJSON(ctx context.Context) ([]byte, error) {
	doc, err := OpenAPI(ctx)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("openapi json: %w", err)
	}
	return b, nil
}
