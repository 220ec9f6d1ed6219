package schemas_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/litehost/litehost/docs/schemas"
	"github.com/litehost/litehost/events"
	"github.com/litehost/litehost/events/public"
)

// eventsDir is package events, whose sources the catalogue is generated from.
const eventsDir = "../../events"

func parseDocs(t *testing.T) schemas.Docs {
	t.Helper()
	d, err := schemas.ParseDocs(eventsDir)
	if err != nil {
		t.Fatalf("parse events: %v", err)
	}
	if len(d.TypeConst) == 0 {
		t.Fatal("no Type* constants found in package events")
	}
	return d
}

// TestCatalogueCoversEveryType cross-checks Catalogue against the Type* constants of package
// events and against events.Decode: every constant has exactly one entry, and every entry
// decodes back to its own Go type.
func TestCatalogueCoversEveryType(t *testing.T) {
	d := parseDocs(t)
	seen := map[string]bool{}
	for _, e := range schemas.Catalogue() {
		typ := e.Event.EventType()
		if seen[typ] {
			t.Errorf("%s listed twice", typ)
		}
		seen[typ] = true
		if !strings.HasPrefix(e.Stream, events.Category(e.Stream)+"-") || e.Stream == "" {
			t.Errorf("%s: stream %q is not category-id", typ, e.Stream)
		}
		if d.Types[reflect.TypeOf(e.Event).Name()] == "" {
			t.Errorf("%s: events.%s has no doc comment (it is the meaning in docs/events.md)", typ, reflect.TypeOf(e.Event).Name())
		}
		b, err := json.Marshal(e.Event)
		if err != nil {
			t.Fatalf("marshal %s: %v", typ, err)
		}
		got, err := events.Decode(typ, b)
		if err != nil {
			t.Errorf("Decode(%s): %v", typ, err)
		} else if reflect.TypeOf(got) != reflect.TypeOf(e.Event) {
			t.Errorf("Decode(%s) gives %T, want %T", typ, got, e.Event)
		}
	}
	consts := map[string]bool{}
	for name, typ := range d.TypeConst {
		consts[typ] = true
		if !seen[typ] {
			t.Errorf("events.%s = %q has no entry in schemas.Catalogue", name, typ)
		}
	}
	for typ := range seen {
		if !consts[typ] {
			t.Errorf("catalogue entry %s has no Type* constant in package events", typ)
		}
	}
}

// TestCatalogueIsUpToDate regenerates docs/events.md and docs/schemas/*.json and fails when a
// checked-in file differs; LITEHOST_UPDATE_SCHEMAS=1 rewrites them instead.
func TestCatalogueIsUpToDate(t *testing.T) {
	files, err := schemas.Generate(parseDocs(t))
	if err != nil {
		t.Fatalf("generate: %v", err)
	}
	update := os.Getenv(schemas.UpdateEnv) == "1"
	// A schema file of a type that no longer exists is stale.
	existing, _ := filepath.Glob("*.json")
	pub, _ := filepath.Glob("public/*.json")
	for _, f := range append(existing, pub...) {
		if _, ok := files["schemas/"+f]; !ok {
			if update {
				if err := os.Remove(f); err != nil {
					t.Fatal(err)
				}
				continue
			}
			t.Errorf("docs/schemas/%s describes no event type; run %s=1 go test ./docs/schemas/", f, schemas.UpdateEnv)
		}
	}
	if update {
		if err := schemas.WriteAll("..", files); err != nil {
			t.Fatalf("write: %v", err)
		}
		t.Logf("rewrote %d files", len(files))
		return
	}
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join("..", filepath.FromSlash(name)))
		if err != nil {
			t.Errorf("docs/%s: %v; run %s=1 go test ./docs/schemas/", name, err, schemas.UpdateEnv)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("docs/%s is out of date with package events; run %s=1 go test ./docs/schemas/", name, schemas.UpdateEnv)
		}
	}
}

// TestSchemasAcceptEventsAndRejectOthers validates real encodings of every event type, with
// every field empty and with every field filled, against its generated schema, and checks that
// the schema refuses an unknown property and a missing required one.
func TestSchemasAcceptEventsAndRejectOthers(t *testing.T) {
	files, err := schemas.Generate(parseDocs(t))
	if err != nil {
		t.Fatalf("generate: %v", err)
	}
	for _, e := range schemas.Catalogue() {
		typ := e.Event.EventType()
		t.Run(typ, func(t *testing.T) {
			c := jsonschema.NewCompiler()
			c.AssertFormat()
			doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(files["schemas/"+typ+".json"]))
			if err != nil {
				t.Fatalf("schema is not JSON: %v", err)
			}
			if err := c.AddResource(typ+".json", doc); err != nil {
				t.Fatal(err)
			}
			sch, err := c.Compile(typ + ".json")
			if err != nil {
				t.Fatalf("compile: %v", err)
			}
			validate := func(v any) error {
				b, err := json.Marshal(v)
				if err != nil {
					t.Fatal(err)
				}
				inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
				if err != nil {
					t.Fatal(err)
				}
				return sch.Validate(inst)
			}
			if err := validate(e.Event); err != nil {
				t.Errorf("zero event refused: %v", err)
			}
			full := fill(reflect.TypeOf(e.Event)).Interface()
			if err := validate(full); err != nil {
				t.Errorf("filled event refused: %v", err)
			}
			var m map[string]any
			b, _ := json.Marshal(full)
			_ = json.Unmarshal(b, &m)
			m["unexpectedField"] = 1
			if validate(m) == nil {
				t.Error("an unknown property was accepted")
			}
			delete(m, "unexpectedField")
			var shape struct{ Required []string }
			_ = json.Unmarshal(files["schemas/"+typ+".json"], &shape)
			if len(shape.Required) == 0 {
				t.Fatal("schema has no required fields")
			}
			delete(m, shape.Required[0])
			if validate(m) == nil {
				t.Errorf("missing required %q was accepted", shape.Required[0])
			}
		})
	}
}

// fill returns a value of t with every field set: strings "x", numbers 1, true, now, one-element
// slices and non-nil pointers, recursively.
func fill(t reflect.Type) reflect.Value {
	v := reflect.New(t).Elem()
	switch {
	case t == reflect.TypeFor[time.Time]():
		v.Set(reflect.ValueOf(time.Date(2026, 4, 9, 14, 23, 0, 0, time.UTC)))
	case t.Kind() == reflect.Pointer:
		p := reflect.New(t.Elem())
		p.Elem().Set(fill(t.Elem()))
		v.Set(p)
	case t.Kind() == reflect.Struct:
		for i := range t.NumField() {
			if t.Field(i).IsExported() {
				v.Field(i).Set(fill(t.Field(i).Type))
			}
		}
	case t.Kind() == reflect.Slice:
		s := reflect.MakeSlice(t, 1, 1)
		s.Index(0).Set(fill(t.Elem()))
		v.Set(s)
	case t.Kind() == reflect.String:
		v.SetString("x")
	case t.Kind() == reflect.Bool:
		v.SetBool(true)
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Int64:
		v.SetInt(1)
	case t.Kind() >= reflect.Uint && t.Kind() <= reflect.Uint64:
		v.SetUint(1)
	}
	return v
}

// TestPublicSchemasAcceptPublicForms validates the public form of every public event type, from
// an empty and from a filled event, against its generated public schema, and checks that a
// private type has no public schema and that a public schema refuses an unknown property.
func TestPublicSchemasAcceptPublicForms(t *testing.T) {
	files, err := schemas.Generate(parseDocs(t))
	if err != nil {
		t.Fatalf("generate: %v", err)
	}
	for _, e := range schemas.Catalogue() {
		typ := e.Event.EventType()
		raw, ok := files["schemas/public/"+typ+".json"]
		if _, private := public.Private[typ]; private {
			if ok {
				t.Errorf("private %s has a public schema", typ)
			}
			continue
		}
		if !ok {
			t.Errorf("public %s has no public schema", typ)
			continue
		}
		c := jsonschema.NewCompiler()
		c.AssertFormat()
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("%s: schema is not JSON: %v", typ, err)
		}
		if err := c.AddResource(typ+".json", doc); err != nil {
			t.Fatal(err)
		}
		sch, err := c.Compile(typ + ".json")
		if err != nil {
			t.Fatalf("%s: compile: %v", typ, err)
		}
		for _, ev := range []events.Event{e.Event, fill(reflect.TypeOf(e.Event)).Interface().(events.Event)} {
			v, _ := public.Project(ev)
			b, _ := json.Marshal(v)
			var m map[string]any
			_ = json.Unmarshal(b, &m)
			if err := sch.Validate(m); err != nil {
				t.Errorf("%s: public form %s refused: %v", typ, b, err)
			}
			m["unexpectedField"] = 1
			if sch.Validate(m) == nil {
				t.Errorf("%s: an unknown property was accepted", typ)
			}
		}
	}
}
