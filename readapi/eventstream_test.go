package readapi_test

import (
	"bufio"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/litehost/litehost/events"
	"github.com/litehost/litehost/events/pgstore"
	"github.com/litehost/litehost/events/pgtest"
	"github.com/litehost/litehost/readapi"
)

// streamServer serves only the event stream over real HTTP, with a short heartbeat.
func streamServer(t *testing.T, heartbeat time.Duration) (*httptest.Server, *readapi.EventStream, *pgstore.Store) {
	t.Helper()
	pool := pgtest.NewPool(t)
	store := pgstore.New(pool, slog.New(slog.DiscardHandler))
	pgtest.Must(t, store.Migrate(t.Context()), "migrate event store")
	es := readapi.NewEventStream(store, "operator-token-0123456789", heartbeat, slog.New(slog.DiscardHandler))
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	es.Register(e)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return srv, es, store
}

func openStream(t *testing.T, srv *httptest.Server) (*bufio.Scanner, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/events/stream", nil)
	req.Header.Set("Authorization", "Bearer operator-token-0123456789")
	resp, err := srv.Client().Do(req)
	pgtest.Must(t, err, "open stream")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	closeFn := func() { cancel(); resp.Body.Close() }
	t.Cleanup(closeFn)
	return bufio.NewScanner(resp.Body), closeFn
}

// lines reads lines into a channel until the stream ends.
func lines(sc *bufio.Scanner) <-chan string {
	ch := make(chan string, 100)
	go func() {
		defer close(ch)
		for sc.Scan() {
			ch <- sc.Text()
		}
	}()
	return ch
}

func TestEventStreamHeartbeats(t *testing.T) {
	srv, _, store := streamServer(t, 50*time.Millisecond)
	sc, _ := openStream(t, srv)
	ch := lines(sc)
	heartbeats := 0
	deadline := time.After(5 * time.Second)
	for heartbeats < 3 {
		select {
		case l := <-ch:
			if l == ": heartbeat" {
				heartbeats++
			}
		case <-deadline:
			t.Fatalf("%d heartbeats within 5 s, want 3", heartbeats)
		}
	}
	// Events still flow between heartbeats.
	ev, err := events.Encode(events.SlugReserved{Slug: "hb", ProjectID: uuid.NewString(), At: time.Now().UTC()}, uuid.New(), events.Metadata{Actor: "system:test"})
	pgtest.Must(t, err, "encode")
	_, err = store.Append(t.Context(), "slug-hb", events.NoStream(), []events.EventData{ev})
	pgtest.Must(t, err, "append")
	for {
		select {
		case l := <-ch:
			if l == "event: "+events.TypeSlugReserved {
				return
			}
		case <-time.After(5 * time.Second):
			t.Fatal("event did not arrive")
		}
	}
}

func TestEventStreamEndsOnShutdown(t *testing.T) {
	srv, es, _ := streamServer(t, time.Hour)
	sc, _ := openStream(t, srv)
	ch := lines(sc)
	if l := <-ch; !strings.HasPrefix(l, "retry:") {
		t.Fatalf("first line %q", l)
	}
	es.Shutdown()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return // the server ended the response
			}
		case <-deadline:
			t.Fatal("stream still open after Shutdown")
		}
	}
}

func TestParseTypePrefixes(t *testing.T) {
	got, err := readapi.ParseTypePrefixes(" project., ,account.session_ ")
	if err != nil || strings.Join(got, "|") != "project.|account.session_" {
		t.Errorf("got %q, %v", got, err)
	}
	for _, bad := range []string{"project.*", "a\nb", "$all"} {
		if _, err := readapi.ParseTypePrefixes(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if got, err := readapi.ParseTypePrefixes(""); err != nil || got != nil {
		t.Errorf("empty: %q, %v", got, err)
	}
}

func TestEventStreamNeedsTheToken(t *testing.T) {
	pool := pgtest.NewPool(t)
	store := pgstore.New(pool, slog.New(slog.DiscardHandler))
	pgtest.Must(t, store.Migrate(t.Context()), "migrate event store")
	gin.SetMode(gin.ReleaseMode)
	tests := []struct {
		token, header string
		want          error
	}{
		{"", "Bearer anything", readapi.ErrNotFound},
		{"operator-token-0123456789", "", readapi.AuthError{Code: readapi.CodeAdminTokenMissing}},
		{"operator-token-0123456789", "Bearer nope", readapi.AuthError{Code: readapi.CodeAdminTokenInvalid}},
		{"operator-token-0123456789", "Bearer operator-token-0123456789x", readapi.AuthError{Code: readapi.CodeAdminTokenInvalid}},
		{"operator-token-0123456789", "operator-token-0123456789", readapi.AuthError{Code: readapi.CodeAdminTokenInvalid}},
	}
	for _, tt := range tests {
		var got error
		e := gin.New()
		e.Use(func(c *gin.Context) {
			c.Next()
			if len(c.Errors) > 0 {
				got = c.Errors[0].Err
			}
		})
		readapi.NewEventStream(store, tt.token, time.Hour, slog.New(slog.DiscardHandler)).Register(e)
		req := httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/events/stream", nil)
		if tt.header != "" {
			req.Header.Set("Authorization", tt.header)
		}
		e.ServeHTTP(httptest.NewRecorder(), req)
		var ae readapi.AuthError
		switch want := tt.want.(type) {
		case readapi.AuthError:
			if !errors.As(got, &ae) || ae != want {
				t.Errorf("token %q, Authorization %q: error %v, want %v", tt.token, tt.header, got, want)
			}
		default:
			if !errors.Is(got, want) {
				t.Errorf("token %q, Authorization %q: error %v, want %v", tt.token, tt.header, got, want)
			}
		}
	}
}
