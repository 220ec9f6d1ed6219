package main

import (
	"net/http"
	"testing"
	"time"

	"github.com/litehost/litehost/domain/customdomain"
	"github.com/litehost/litehost/events"
)

// A pending domain holds its hostname for LITEHOST_DOMAIN_PENDING_TTL only: after that another
// account can add it, and the stale pending domain is ended by the system.
func TestUnverifiedDomainReservationExpires(t *testing.T) {
	s, mb := startWithMail(t, "", map[string]string{"LITEHOST_DOMAIN_PENDING_TTL": "72h"})
	squatter := starter(t, s, mb, "squatter@example.com")
	s.advance(61 * time.Second)
	owner := starter(t, s, mb, "owner@example.com")

	r := s.do(http.MethodPost, "/v1/domains", map[string]any{"domain": "held.example"}, bearer(squatter))
	if r.status != http.StatusCreated {
		t.Fatalf("add = %d %s", r.status, r.body)
	}
	heldID := r.data(t)["id"].(string)
	if r := s.do(http.MethodPost, "/v1/domains", map[string]any{"domain": "held.example"}, bearer(owner)); r.status != http.StatusConflict || r.code(t) != "DOMAIN_TAKEN" {
		t.Errorf("add while pending = %d %s, want 409 DOMAIN_TAKEN", r.status, r.body)
	}
	s.advance(71 * time.Hour)
	if r := s.do(http.MethodPost, "/v1/domains", map[string]any{"domain": "held.example"}, bearer(owner)); r.status != http.StatusConflict {
		t.Errorf("add after 71 h = %d %s, want 409", r.status, r.body)
	}
	s.advance(2 * time.Hour)
	r = s.do(http.MethodPost, "/v1/domains", map[string]any{"domain": "held.example"}, bearer(owner))
	if r.status != http.StatusCreated || r.data(t)["status"] != "pending_verification" {
		t.Fatalf("add after 73 h = %d %s, want 201", r.status, r.body)
	}
	if r := s.do(http.MethodGet, "/v1/domains/"+heldID, nil, bearer(squatter)); r.status != http.StatusNotFound {
		t.Errorf("expired pending domain = %d %s, want 404 (released)", r.status, r.body)
	}
	// The new reservation is fresh: the former holder cannot take it back.
	if r := s.do(http.MethodPost, "/v1/domains", map[string]any{"domain": "held.example"}, bearer(squatter)); r.status != http.StatusConflict {
		t.Errorf("former holder re-adds = %d %s, want 409", r.status, r.body)
	}
	recs, err := s.app.store.ReadStream(t.Context(), customdomain.Stream(heldID), 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	last := recs[len(recs)-1]
	md, _ := events.ParseMetadata(last.Metadata)
	if last.Type != events.TypeDomainRemoved || md.Actor != events.SystemActor("domain-expiry") {
		t.Errorf("last event of the expired domain = %s by %s, want %s by system:domain-expiry", last.Type, md.Actor, events.TypeDomainRemoved)
	}
}
