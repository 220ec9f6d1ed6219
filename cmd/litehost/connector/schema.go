package connector

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
)

// The tools' schemas are cut out of docs/openapi.yaml rather than written a second time, so a
// tool cannot promise what its route does not do: the input schema is the operation's path and
// query parameters and JSON body, the output schema the data of its success answer.

const componentPrefix = "#/components/schemas/"

// inline returns s as a plain JSON Schema value with every component reference replaced by the
// component itself (an MCP client resolves no references into the API document).
func inline(doc *openapi3.T, s *openapi3.SchemaRef) (map[string]any, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("marshal schema: %w", err)
	}
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("unmarshal schema: %w", err)
	}
	out, err := resolveRefs(doc, v, 0)
	if err != nil {
		return nil, err
	}
	m, _ := out.(map[string]any)
	return m, nil
}

func resolveRefs(doc *openapi3.T, v any, depth int) (any, error) {
	if depth > 32 {
		return nil, fmt.Errorf("schema nests too deep (a reference cycle?)")
	}
	switch x := v.(type) {
	case map[string]any:
		if ref, ok := x["$ref"].(string); ok {
			name, found := strings.CutPrefix(ref, componentPrefix)
			comp, known := doc.Components.Schemas[name]
			if !found || !known {
				return nil, fmt.Errorf("unknown schema reference %q", ref)
			}
			sub, err := inline(doc, &openapi3.SchemaRef{Value: comp.Value})
			if err != nil {
				return nil, err
			}
			return resolveRefs(doc, sub, depth+1)
		}
		for k, e := range x {
			r, err := resolveRefs(doc, e, depth+1)
			if err != nil {
				return nil, err
			}
			x[k] = r
		}
		return x, nil
	case []any:
		for i, e := range x {
			r, err := resolveRefs(doc, e, depth+1)
			if err != nil {
				return nil, err
			}
			x[i] = r
		}
		return x, nil
	}
	return v, nil
}

// successData returns the schema of the data field of op's success answer (the first 2xx status),
// or nil when the operation documents none.
func successData(doc *openapi3.T, op *openapi3.Operation) (map[string]any, error) {
	for _, status := range []string{"200", "201"} {
		resp := op.Responses.Value(status)
		if resp == nil || resp.Value == nil {
			continue
		}
		mt := resp.Value.Content.Get("application/json")
		if mt == nil || mt.Schema == nil {
			continue
		}
		whole, err := inline(doc, mt.Schema)
		if err != nil {
			return nil, err
		}
		if data := dataOf(whole); data != nil {
			return data, nil
		}
	}
	return nil, nil
}

// dataOf finds the "data" property of an envelope schema, also inside an allOf.
func dataOf(s map[string]any) map[string]any {
	if props, ok := s["properties"].(map[string]any); ok {
		if d, ok := props["data"].(map[string]any); ok {
			return d
		}
	}
	if all, ok := s["allOf"].([]any); ok {
		for _, part := range all {
			if m, ok := part.(map[string]any); ok {
				if d := dataOf(m); d != nil {
					return d
				}
			}
		}
	}
	return nil
}

// requestBodySchema returns the schema of op's body for content type ct, or nil.
func requestBodySchema(doc *openapi3.T, op *openapi3.Operation, ct string) (map[string]any, error) {
	if op.RequestBody == nil || op.RequestBody.Value == nil {
		return nil, nil
	}
	mt := op.RequestBody.Value.Content.Get(ct)
	if mt == nil || mt.Schema == nil {
		return nil, nil
	}
	return inline(doc, mt.Schema)
}

// parameters returns op's (and its path item's) path and query parameters.
func parameters(item *openapi3.PathItem, op *openapi3.Operation) []*openapi3.Parameter {
	var out []*openapi3.Parameter
	seen := map[string]bool{}
	for _, list := range []openapi3.Parameters{op.Parameters, item.Parameters} {
		for _, p := range list {
			if p.Value == nil || (p.Value.In != openapi3.ParameterInPath && p.Value.In != openapi3.ParameterInQuery) {
				continue
			}
			if seen[p.Value.Name] {
				continue
			}
			seen[p.Value.Name] = true
			out = append(out, p.Value)
		}
	}
	return out
}
