package mailer_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/litehost/litehost/commands"
	"github.com/litehost/litehost/commands/mailer"
	"github.com/litehost/litehost/events/pgtest"
)

type smsProvider struct {
	mu     sync.Mutex
	status []int // answers in order; 200 once exhausted
	got    chan map[string]string
	auth   []string
}

func (p *smsProvider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	p.auth = append(p.auth, r.Header.Get("Authorization"))
	status := http.StatusOK
	if len(p.status) > 0 {
		status, p.status = p.status[0], p.status[1:]
	}
	p.mu.Unlock()
	var body map[string]string
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" || json.NewDecoder(r.Body).Decode(&body) != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	if status != http.StatusOK {
		http.Error(w, "provider says no", status)
		return
	}
	p.got <- body
	w.WriteHeader(http.StatusAccepted)
}

func TestHTTPSMSStatuses(t *testing.T) {
	p := &smsProvider{got: make(chan map[string]string, 10), status: []int{http.StatusBadRequest, http.StatusTooManyRequests, http.StatusServiceUnavailable}}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	s := mailer.NewHTTPSMS(srv.URL, "tok-123", srv.Client())
	msg := mailer.Message{Channel: "phone", To: "+14155550123", Text: "Your Litehost code is 123456."}

	if err := s.Send(t.Context(), msg); err == nil || !mailer.IsPermanent(err) {
		t.Errorf("400: err = %v, want permanent", err)
	}
	for _, st := range []string{"429", "503"} {
		if err := s.Send(t.Context(), msg); err == nil || mailer.IsPermanent(err) {
			t.Errorf("%s: err = %v, want a temporary error", st, err)
		}
	}
	if err := s.Send(t.Context(), msg); err != nil {
		t.Fatalf("202: %v", err)
	}
	got := <-p.got
	if got["to"] != "+14155550123" || got["body"] != msg.Text {
		t.Errorf("provider got %v", got)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, a := range p.auth {
		if a != "Bearer tok-123" {
			t.Errorf("Authorization %q", a)
		}
	}

	down := mailer.NewHTTPSMS("http://127.0.0.1:1/", "t", nil)
	if err := down.Send(t.Context(), msg); err == nil || mailer.IsPermanent(err) {
		t.Errorf("unreachable provider: err = %v, want a temporary error", err)
	}
}

func TestMailerSendsPhoneCodesBySMSWithRetries(t *testing.T) {
	p := &smsProvider{got: make(chan map[string]string, 10), status: []int{http.StatusServiceUnavailable, http.StatusBadGateway}}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	w := newWorld(t, true)
	pgtest.Background(t, w.mailer(t, mailer.Config{SMS: mailer.NewHTTPSMS(srv.URL, "tok", srv.Client()), AutoCreate: true}, nil).Run)

	phone := commands.Identifier{Kind: "phone", Value: "+919876543210"}
	w.request(t, phone, "signin")
	var got map[string]string
	select {
	case got = <-p.got:
	case <-time.After(15 * time.Second):
		t.Fatal("no SMS arrived")
	}
	if got["to"] != "+919876543210" {
		t.Errorf("sms to %q", got["to"])
	}
	res, err := w.otp.Verify(t.Context(), commands.VerifyOTP{Identifier: phone, Code: codeIn(t, got["body"])})
	if err != nil {
		t.Fatalf("verify the texted code: %v", err)
	}
	if res.Phone != "+919876543210" || !res.AccountCreated {
		t.Errorf("result %+v", res)
	}
}
