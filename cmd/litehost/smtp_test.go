package main

import (
	"io"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// mailbox is a real SMTP server on loopback that keeps every message it is sent, so tests read
// OTP codes the way a person would: from the mail.
type mailbox struct {
	mu    sync.Mutex
	msgs  []mail
	added chan struct{}
	addr  string
}

type mail struct {
	from string
	to   []string
	data string
}

func startMailbox(t *testing.T) *mailbox {
	t.Helper()
	mb := &mailbox{added: make(chan struct{}, 1000)}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		return &mailSession{mb: mb}, nil
	}))
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("smtp listen: %v", err)
	}
	mb.addr = l.Addr().String()
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return mb
}

// url is the LITEHOST_SMTP_URL of the mailbox.
func (mb *mailbox) url() string { return "smtp://" + mb.addr + "?tls=none" }

var codePattern = regexp.MustCompile(`\b(\d{6})\b`)

// waitCode waits for the n-th message to rcpt (1-based) and returns the 6-digit code in it.
func (mb *mailbox) waitCode(t *testing.T, rcpt string, n int) string {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		mb.mu.Lock()
		var seen []mail
		for _, m := range mb.msgs {
			for _, to := range m.to {
				if strings.EqualFold(to, rcpt) {
					seen = append(seen, m)
				}
			}
		}
		mb.mu.Unlock()
		if len(seen) >= n {
			m := codePattern.FindStringSubmatch(seen[n-1].data)
			if m == nil {
				t.Fatalf("no code in the mail to %s:\n%s", rcpt, seen[n-1].data)
			}
			return m[1]
		}
		select {
		case <-mb.added:
		case <-deadline:
			t.Fatalf("no mail #%d to %s within 15 s (have %d)", n, rcpt, len(seen))
		}
	}
}

// count returns how many messages went to rcpt.
func (mb *mailbox) count(rcpt string) int {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	n := 0
	for _, m := range mb.msgs {
		for _, to := range m.to {
			if strings.EqualFold(to, rcpt) {
				n++
			}
		}
	}
	return n
}

type mailSession struct {
	mb   *mailbox
	from string
	to   []string
}

func (s *mailSession) AuthPlain(string, string) error { return nil }
func (s *mailSession) Mail(from string, _ *smtp.MailOptions) error {
	s.from = from
	return nil
}
func (s *mailSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}
func (s *mailSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.mb.mu.Lock()
	s.mb.msgs = append(s.mb.msgs, mail{from: s.from, to: s.to, data: string(b)})
	s.mb.mu.Unlock()
	select {
	case s.mb.added <- struct{}{}:
	default:
	}
	return nil
}
func (s *mailSession) Reset()        { s.from, s.to = "", nil }
func (s *mailSession) Logout() error { return nil }
