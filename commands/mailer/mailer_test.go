package mailer_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/litehost/litehost/commands"
	"github.com/litehost/litehost/commands/mailer"
	"github.com/litehost/litehost/events"
	"github.com/litehost/litehost/events/pgstore"
	"github.com/litehost/litehost/events/pgtest"
	"github.com/litehost/litehost/events/secret"
)

// ---- a real SMTP server (emersion/go-smtp) on loopback, capturing what it accepts ----

type mail struct {
	from string
	to   []string
	data string
}

type smtpServer struct {
	addr string
	got  chan mail

	mu         sync.Mutex
	failData   int    // answer this many DATA commands with 451 first
	rejectRcpt string // answer RCPT TO for this address with 550
	user, pass string // require AUTH PLAIN with these when set
	auths      int
}

func startSMTP(t *testing.T, configure func(*smtpServer)) *smtpServer {
	t.Helper()
	s := &smtpServer{got: make(chan mail, 100)}
	if configure != nil {
		configure(s)
	}
	srv := smtp.NewServer(s)
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	l, err := net.Listen("tcp", "127.0.0.1:0")
	pgtest.Must(t, err, "listen")
	s.addr = l.Addr().String()
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return s
}

func (s *smtpServer) NewSession(*smtp.Conn) (smtp.Session, error) { return &smtpSession{srv: s}, nil }

type smtpSession struct {
	srv    *smtpServer
	authed bool
	m      mail
}

func (ss *smtpSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (ss *smtpSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		ss.srv.mu.Lock()
		defer ss.srv.mu.Unlock()
		if user != ss.srv.user || pass != ss.srv.pass {
			return errors.New("bad credentials")
		}
		ss.authed = true
		ss.srv.auths++
		return nil
	}), nil
}

func (ss *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	if ss.srv.user != "" && !ss.authed {
		return &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "authentication required"}
	}
	ss.m.from = from
	return nil
}

func (ss *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.srv.mu.Lock()
	reject := to == ss.srv.rejectRcpt
	ss.srv.mu.Unlock()
	if reject {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
	}
	ss.m.to = append(ss.m.to, to)
	return nil
}

func (ss *smtpSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	ss.srv.mu.Lock()
	fail := ss.srv.failData > 0
	if fail {
		ss.srv.failData--
	}
	ss.srv.mu.Unlock()
	if fail {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
	}
	ss.m.data = string(b)
	ss.srv.got <- ss.m
	return nil
}

func (ss *smtpSession) Reset()        { ss.m = mail{} }
func (ss *smtpSession) Logout() error { return nil }

func (s *smtpServer) next(t *testing.T) mail {
	t.Helper()
	select {
	case m := <-s.got:
		return m
	case <-time.After(15 * time.Second):
		t.Fatal("no mail arrived")
		return mail{}
	}
}

func (s *smtpServer) none(t *testing.T, within time.Duration) {
	t.Helper()
	select {
	case m := <-s.got:
		t.Fatalf("unexpected mail to %v: %s", m.to, m.data)
	case <-time.After(within):
	}
}

// ---- the system under test: event store, OTP handlers, accounts, mailer on one database ----

type world struct {
	pool  *pgxpool.Pool
	store *pgstore.Store
	keys  *secret.Keyring
	otp   *commands.OTP
	now   func() time.Time
}

func newWorld(t *testing.T, autoCreate bool) *world {
	t.Helper()
	pool := pgtest.NewPool(t)
	pgtest.Must(t, commands.Migrate(t.Context(), pool), "migrate commands")
	store := pgstore.New(pool, slog.New(slog.DiscardHandler))
	pgtest.Must(t, store.Migrate(t.Context()), "migrate event store")
	keys, err := secret.New([]byte("0123456789abcdef0123456789abcdef"))
	pgtest.Must(t, err, "keyring")
	w := &world{pool: pool, store: store, keys: keys, now: time.Now}
	cfg := commands.OTPConfig{AutoCreate: autoCreate, Channels: []string{"email", "phone"}, SMSCountries: []string{"1", "91"}, IPLimit: 1000}
	w.otp = commands.NewOTP(store, keys, commands.NewLimiter(pool), commands.NewAccounts(store, keys, commands.NewPGRevocations(pool), time.Now), nil, cfg, slog.New(slog.DiscardHandler))
	return w
}

func (w *world) mailer(t *testing.T, cfg mailer.Config, logger *slog.Logger) *mailer.Mailer {
	t.Helper()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg.RetryMin, cfg.RetryMax, cfg.LockPoll = 20*time.Millisecond, 100*time.Millisecond, 50*time.Millisecond
	return mailer.New(w.store, w.pool, w.keys, mailer.NewIdentityLookup(w.store, w.keys), cfg, logger)
}

func email(v string) commands.Identifier { return commands.Identifier{Kind: "email", Value: v} }

func (w *world) request(t *testing.T, id commands.Identifier, purpose string) {
	t.Helper()
	if _, err := w.otp.Request(t.Context(), commands.RequestOTP{Identifier: id, Purpose: purpose, ClientIP: "192.0.2.1"}); err != nil {
		t.Fatalf("request %s: %v", id.Value, err)
	}
}

var codeRE = regexp.MustCompile(`code is ([0-9]{6})`)

func codeIn(t *testing.T, text string) string {
	t.Helper()
	m := codeRE.FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no code in %q", text)
	}
	return m[1]
}

func newSMTP(t *testing.T, s *smtpServer, query string) *mailer.SMTP {
	t.Helper()
	u := "smtp://" + s.addr + query
	if s.user != "" {
		u = "smtp://" + s.user + ":" + s.pass + "@" + s.addr + query
	}
	sender, err := mailer.NewSMTP(u, "Litehost <no-reply@litehost.test>")
	pgtest.Must(t, err, "smtp sender")
	return sender
}

func TestMailerSendsTheCodeOverSMTPAndItVerifies(t *testing.T) {
	srv := startSMTP(t, func(s *smtpServer) { s.user, s.pass = "mailer", "s3cret" })
	w := newWorld(t, true)
	pgtest.Background(t, w.mailer(t, mailer.Config{Email: newSMTP(t, srv, ""), AutoCreate: true}, nil).Run)

	w.request(t, email("new@example.com"), "signin")
	m := srv.next(t)
	if len(m.to) != 1 || m.to[0] != "new@example.com" || m.from != "no-reply@litehost.test" {
		t.Errorf("envelope from %q to %v", m.from, m.to)
	}
	srv.mu.Lock()
	auths := srv.auths
	srv.mu.Unlock()
	if auths == 0 {
		t.Error("the sender did not authenticate")
	}
	body := strings.ReplaceAll(m.data, "=\r\n", "") // undo quoted-printable soft breaks
	code := codeIn(t, body)
	if !strings.Contains(body, "Subject: Your Litehost code: "+code) {
		t.Errorf("subject missing in %s", m.data)
	}
	if !strings.Contains(body, "No Litehost account uses this address yet") {
		t.Errorf("an unknown address should be told an account will be created:\n%s", body)
	}

	res, err := w.otp.Verify(t.Context(), commands.VerifyOTP{Identifier: email("new@example.com"), Code: code})
	if err != nil {
		t.Fatalf("verify the mailed code: %v", err)
	}
	if !res.AccountCreated || res.APIKey == "" {
		t.Errorf("sign-in result %+v", res)
	}
}

func TestMailerWordingFollowsAccountAndSignupState(t *testing.T) {
	srv := startSMTP(t, nil)
	w := newWorld(t, true)
	// Give existing@example.com an account first (the sign-in path the accounts side owns).
	if _, err := commands.NewAccounts(w.store, w.keys, commands.NewPGRevocations(w.pool), time.Now).SignIn(t.Context(), [16]byte{1}, email("existing@example.com"), true); err != nil {
		t.Fatalf("create account: %v", err)
	}
	pgtest.Background(t, w.mailer(t, mailer.Config{Email: newSMTP(t, srv, "?tls=none"), AutoCreate: false}, nil).Run)

	w.request(t, email("existing@example.com"), "signup")
	m := srv.next(t)
	body := strings.ReplaceAll(m.data, "=\r\n", "")
	codeIn(t, body)
	if !strings.Contains(body, "You already have a Litehost account") {
		t.Errorf("signup with an account:\n%s", body)
	}

	w.request(t, email("stranger@example.com"), "signin")
	m = srv.next(t)
	body = strings.ReplaceAll(m.data, "=\r\n", "")
	if codeRE.MatchString(body) || !strings.Contains(body, "sign-up is closed") {
		t.Errorf("no account with sign-up closed must get an explanation and no code:\n%s", body)
	}
}

func TestMailerRetriesUntilDeliveredAndAdvancesItsCheckpoint(t *testing.T) {
	srv := startSMTP(t, func(s *smtpServer) { s.failData = 3 })
	w := newWorld(t, true)
	m := w.mailer(t, mailer.Config{Email: newSMTP(t, srv, ""), AutoCreate: true}, nil)
	pgtest.Background(t, m.Run)

	w.request(t, email("a@example.com"), "signin")
	got := srv.next(t)
	if got.to[0] != "a@example.com" {
		t.Fatalf("mail to %v", got.to)
	}
	recs, err := w.store.ReadStream(t.Context(), commands.OTPStream(w.keys, "a@example.com"), 0, 10)
	pgtest.Must(t, err, "read")
	waitCheckpoint(t, m, recs[0].Position)
}

func waitCheckpoint(t *testing.T, m *mailer.Mailer, want events.Position) {
	t.Helper()
	pgtest.Eventually(t, func() (bool, string) {
		got, err := m.Checkpoint(t.Context())
		pgtest.Must(t, err, "checkpoint")
		return got.Compare(want) >= 0, fmt.Sprintf("checkpoint %v never reached %v", got, want)
	})
}

func TestMailerGivesUpOnExpiredCodesAndPermanentRefusals(t *testing.T) {
	srv := startSMTP(t, nil)
	w := newWorld(t, true)
	w.request(t, email("late@example.com"), "signin")
	w.request(t, email("fine@example.com"), "signin")

	// A mailer whose clock is past the codes' expiry skips them all and still advances.
	late := w.mailer(t, mailer.Config{Email: newSMTP(t, srv, ""), Now: func() time.Time { return time.Now().Add(11 * time.Minute) }}, nil)
	stop := pgtest.Background(t, late.Run)
	recs, err := w.store.ReadStream(t.Context(), commands.OTPStream(w.keys, "fine@example.com"), 0, 10)
	pgtest.Must(t, err, "read")
	waitCheckpoint(t, late, recs[0].Position)
	stop()
	srv.none(t, 200*time.Millisecond)

	// Now a live mailer: the refused address is given up (not retried forever), the next one is sent.
	live := w.mailer(t, mailer.Config{Email: newSMTP(t, srv, "")}, nil)
	pgtest.Background(t, live.Run)
	// New codes for new addresses (the old ones are open: a plain request would send nothing).
	srv.mu.Lock()
	srv.rejectRcpt = "gone2@example.com"
	srv.mu.Unlock()
	w.request(t, email("gone2@example.com"), "signin")
	w.request(t, email("after@example.com"), "signin")
	if got := srv.next(t); got.to[0] != "after@example.com" {
		t.Errorf("mail to %v, want after@example.com (gone2 refused for good)", got.to)
	}
}

func TestOnlyOneMailerSendsAndAnotherTakesOver(t *testing.T) {
	srv := startSMTP(t, nil)
	w := newWorld(t, true)
	sender := newSMTP(t, srv, "")
	stopA := pgtest.Background(t, w.mailer(t, mailer.Config{Email: sender}, nil).Run)
	pgtest.Background(t, w.mailer(t, mailer.Config{Email: sender}, nil).Run)

	for _, a := range []string{"one@example.com", "two@example.com", "three@example.com"} {
		w.request(t, email(a), "signin")
	}
	seen := map[string]int{}
	for range 3 {
		seen[srv.next(t).to[0]]++
	}
	srv.none(t, 300*time.Millisecond)
	for _, a := range []string{"one@example.com", "two@example.com", "three@example.com"} {
		if seen[a] != 1 {
			t.Errorf("%s got %d mails, want 1 (%v)", a, seen[a], seen)
		}
	}

	stopA() // whichever held the lock, one instance is left and must carry on
	w.request(t, email("four@example.com"), "signin")
	if got := srv.next(t); got.to[0] != "four@example.com" {
		t.Errorf("after take-over: mail to %v", got.to)
	}
	srv.none(t, 300*time.Millisecond)
}

func TestDevModeLogsTheCodeLoudly(t *testing.T) {
	w := newWorld(t, true)
	var buf syncBuffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn}))
	pgtest.Background(t, w.mailer(t, mailer.Config{AutoCreate: true}, logger).Run)

	w.request(t, commands.Identifier{Kind: "phone", Value: "+14155550123"}, "signin")
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(buf.String(), "NO DELIVERY CONFIGURED") {
		if time.Now().After(deadline) {
			t.Fatalf("no warning logged: %s", buf.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	out := buf.String()
	code := codeIn(t, out)
	if !strings.Contains(out, "level=WARN") || !strings.Contains(out, "+14155550123") {
		t.Errorf("log %s", out)
	}
	if _, err := w.otp.Verify(t.Context(), commands.VerifyOTP{Identifier: commands.Identifier{Kind: "phone", Value: "+14155550123"}, Code: code}); err != nil {
		t.Errorf("verify the logged code: %v", err)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func TestNewSMTPRejectsBadConfiguration(t *testing.T) {
	for _, tt := range []struct{ url, from string }{
		{"http://mail.example.com", "a@example.com"},
		{"smtp://", "a@example.com"},
		{"smtp://mail.example.com?tls=maybe", "a@example.com"},
		{"smtp://mail.example.com:99999", "a@example.com"},
		{"smtp://mail.example.com", ""},
		{"smtp://mail.example.com", "not an address"},
		{"::", "a@example.com"},
	} {
		if _, err := mailer.NewSMTP(tt.url, tt.from); err == nil {
			t.Errorf("NewSMTP(%q, %q) accepted", tt.url, tt.from)
		}
	}
	for _, u := range []string{"smtp://mail.example.com", "smtps://u:p@mail.example.com", "smtp://mail.example.com:2525?tls=starttls", "smtp://u:p@127.0.0.1:25?tls=none"} {
		if _, err := mailer.NewSMTP(u, "no-reply@example.com"); err != nil {
			t.Errorf("NewSMTP(%q): %v", u, err)
		}
	}
}
