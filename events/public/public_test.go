package public_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/litehost/litehost/docs/schemas"
	"github.com/litehost/litehost/events"
	"github.com/litehost/litehost/events/public"
)

// privateField tells the JSON property names that must never leave the service, whatever the
// event: secrets and values derived from them, personal addresses, request origins, and the
// identifiers of sessions and codes.
func privateField(name string) bool {
	l := strings.ToLower(name)
	for _, s := range []string{"hash", "nonce", "token", "email", "phone", "address", "clientip", "clientnetwork", "useragent", "sessionid", "password"} {
		if strings.Contains(l, s) && l != "passwordprotected" {
			return true
		}
	}
	return false
}

// TestEveryTypeHasADecision fails when an event type constant of package events is neither
// listed as private nor projected to a public struct: a new type must get a decision.
func TestEveryTypeHasADecision(t *testing.T) {
	docs, err := schemas.ParseDocs("..")
	if err != nil {
		t.Fatal(err)
	}
	if len(docs.TypeConst) == 0 {
		t.Fatal("no Type* constants found in package events")
	}
	for name, typ := range docs.TypeConst {
		_, private := public.Private[typ]
		ev, err := events.Decode(typ, []byte(`{}`))
		if err != nil {
			t.Errorf("events.%s = %q: Decode: %v", name, typ, err)
			continue
		}
		_, projected := public.Project(ev)
		switch {
		case private && projected:
			t.Errorf("%s is both private and projected", typ)
		case !private && !projected:
			t.Errorf("%s has no public-contract decision: add a case to public.Project or an entry to public.Private", typ)
		}
	}
	known := map[string]bool{}
	for _, typ := range docs.TypeConst {
		known[typ] = true
	}
	for typ := range public.Private {
		if !known[typ] {
			t.Errorf("Private lists %q, which no Type* constant names", typ)
		}
	}
}

// TestPublicStructsHoldNoPrivateField walks every public struct: no property name may be one of
// a secret, a hash, an address or a request origin.
func TestPublicStructsHoldNoPrivateField(t *testing.T) {
	var walk func(path string, typ reflect.Type)
	walk = func(path string, typ reflect.Type) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || typ == reflect.TypeFor[time.Time]() {
			return
		}
		for i := range typ.NumField() {
			f := typ.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if privateField(name) {
				t.Errorf("%s.%s: public property %q", path, f.Name, name)
			}
			walk(path+"."+name, f.Type)
		}
	}
	for _, e := range schemas.Catalogue() {
		if v, ok := public.Project(e.Event); ok {
			walk(e.Event.EventType(), reflect.TypeOf(v))
		}
	}
	walk("metadata", reflect.TypeFor[public.Metadata]())
}

// TestFilledEventsLeaveNoSecretValue fills every field of every event with a value naming the
// field, projects it and checks that no value of a private field survives anywhere in the JSON.
func TestFilledEventsLeaveNoSecretValue(t *testing.T) {
	for _, e := range schemas.Catalogue() {
		filled := fill(reflect.TypeOf(e.Event), "").Interface().(events.Event)
		v, ok := public.Project(filled)
		if !ok {
			continue
		}
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var secrets []string
		collect(reflect.ValueOf(filled), "", &secrets)
		for _, s := range secrets {
			if strings.Contains(string(b), s) {
				t.Errorf("%s: public data holds %q: %s", e.Event.EventType(), s, b)
			}
		}
		if e.Event.EventType() == events.TypeProjectCreated && !strings.Contains(string(b), `"passwordProtected":true`) {
			t.Errorf("project.created.v1 with a password hash: %s", b)
		}
	}
}

func TestFromRecord(t *testing.T) {
	md := events.Metadata{CorrelationID: "c", CausationID: "k", Actor: "account:a", RequestID: "r",
		ClientIP: "198.51.100.23", UserAgent: "curl/8.5.0 (x86_64-pc-linux-gnu)"}
	rec := func(ev events.Event) events.RecordedEvent {
		d, err := events.Encode(ev, uuid.New(), md)
		if err != nil {
			t.Fatal(err)
		}
		return events.RecordedEvent{ID: d.ID, Stream: "s-1", Type: d.Type, Data: d.Data, Metadata: d.Metadata}
	}
	got, ok, err := public.FromRecord(rec(events.ProjectCreated{ProjectID: "p", ClaimTokenHash: "claimhash",
		Settings: events.ProjectSettings{PasswordHash: "$argon2id$v=19$x"}, Deployment: events.Deployment{ManifestHash: "mh"}}))
	if err != nil || !ok {
		t.Fatalf("project.created: %v %v", ok, err)
	}
	if got.Metadata != (public.Metadata{Actor: "account:a", CorrelationID: "c", CausationID: "k", RequestID: "r"}) {
		t.Errorf("metadata %+v", got.Metadata)
	}
	for _, s := range []string{"claimhash", "argon2id", "mh", "Hash"} {
		if strings.Contains(string(got.Data), s) {
			t.Errorf("data holds %q: %s", s, got.Data)
		}
	}
	if _, ok, err := public.FromRecord(rec(events.OTPRequested{Address: "a@example.com", Nonce: "n"})); ok || err != nil {
		t.Errorf("otp.requested left: %v %v", ok, err)
	}
	if _, ok, err := public.FromRecord(events.RecordedEvent{Type: "$system.thing", Data: []byte(`{}`)}); ok || err != nil {
		t.Errorf("unknown type left: %v %v", ok, err)
	}
	if _, _, err := public.FromRecord(events.RecordedEvent{Type: events.TypeSlugReserved, Data: []byte(`{`)}); err == nil {
		t.Error("corrupt data accepted")
	}
}

// fill returns a value of t with every string set to its JSON property path (so a leaked value
// names its field), numbers 1, true, a time, one-element slices and non-nil pointers.
func fill(t reflect.Type, path string) reflect.Value {
	v := reflect.New(t).Elem()
	switch {
	case t == reflect.TypeFor[time.Time]():
		v.Set(reflect.ValueOf(time.Date(2026, 4, 9, 14, 23, 0, 0, time.UTC)))
	case t.Kind() == reflect.Pointer:
		p := reflect.New(t.Elem())
		p.Elem().Set(fill(t.Elem(), path))
		v.Set(p)
	case t.Kind() == reflect.Struct:
		for i := range t.NumField() {
			name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
			v.Field(i).Set(fill(t.Field(i).Type, path+"."+name))
		}
	case t.Kind() == reflect.Slice:
		s := reflect.MakeSlice(t, 1, 1)
		s.Index(0).Set(fill(t.Elem(), path))
		v.Set(s)
	case t.Kind() == reflect.String:
		v.SetString("value-of" + path)
	case t.Kind() == reflect.Bool:
		v.SetBool(true)
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Int64:
		v.SetInt(1)
	}
	return v
}

// collect gathers the string values of the private fields of v.
func collect(v reflect.Value, name string, out *[]string) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			collect(v.Elem(), name, out)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			n, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("json"), ",")
			collect(v.Field(i), n, out)
		}
	case reflect.Slice:
		for i := range v.Len() {
			collect(v.Index(i), name, out)
		}
	case reflect.String:
		if privateField(name) {
			*out = append(*out, v.String())
		}
	}
}
