package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/litehost/litehost/commands"
	"github.com/litehost/litehost/domain/otp"
	"github.com/litehost/litehost/events"
	"github.com/litehost/litehost/events/pgstore"
	"github.com/litehost/litehost/events/pgtest"
	"github.com/litehost/litehost/events/secret"
)

// crashSignInsEnv turns TestSignInsSurviveKills into its stress mode: it runs until that many
// sign-ins were acknowledged (README: "Crash stress").
const crashSignInsEnv = "LITEHOST_CRASH_SIGNINS"

// crashClients is how many clients sign in at once.
const crashClients = 8

// ackedSignIn is a verify that answered 200: its key must work from then on.
type ackedSignIn struct {
	email   string
	key     string
	pending bool // answered with X-Litehost-Consistency: pending
	life    int  // the server process that answered it
}

// TestSignInsSurviveKills runs 8 clients through OTP request and verify for fresh addresses
// against the real binary while it is SIGKILLed at random moments and restarted. After every
// restart each key acknowledged before the kill (and a sample of older ones) must answer 200 on
// GET /v1/user: an acknowledged sign-in is never lost. A key answered without the pending
// header must work at once (its read model was committed before the answer); one answered
// pending gets a while for the projector to catch up. Codes are derived from their request
// events in the log, as the mailer does (LITEHOST_DEV=true: no mail is sent).
//
// CI runs a short round (about 30 s, at least 3 kills). With LITEHOST_CRASH_SIGNINS=N it runs
// until N sign-ins were acknowledged (see the README for the command).
func TestSignInsSurviveKills(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds and runs the binary")
	}
	target := 0
	if v := os.Getenv(crashSignInsEnv); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			t.Fatalf("%s: want a positive number of sign-ins, got %q", crashSignInsEnv, v)
		}
		target = n
	}
	const key = "crash-secret-crash-secret-crash-secret-0123456789"
	dsn := pgtest.NewDatabase(t)
	addr := freeAddr(t)
	b := &binary{t: t, path: buildBinary(t), url: "http://" + addr, env: append(os.Environ(),
		"LITEHOST_DATABASE_URL="+dsn, "LITEHOST_HTTP_ADDR="+addr, "LITEHOST_DATA_DIR="+t.TempDir(),
		"LITEHOST_SECRET="+key, "LITEHOST_DEV=true", "LITEHOST_PUBLIC_URL=http://"+addr,
		// Each sign-in comes from its own address (X-Forwarded-For), so that the per-client
		// limits of OTP request and verify do not throttle the load.
		"LITEHOST_TRUSTED_PROXIES=127.0.0.1", "LOG_LEVEL=warn")}
	keys, err := secret.New([]byte(key))
	if err != nil {
		t.Fatal(err)
	}
	b.start()
	defer func() {
		if b.cmd.ProcessState == nil {
			b.kill()
		}
		if t.Failed() {
			t.Logf("log of the last server process:\n%s", b.logs.String())
		}
	}()
	pcfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	pcfg.MaxConns = 4
	pool, err := pgxpool.NewWithConfig(t.Context(), pcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	c := &crashClient{
		url: b.url, keys: keys, store: pgstore.New(pool, slog.New(slog.DiscardHandler)),
		http: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 2 * crashClients}},
	}
	defer c.http.CloseIdleConnections()

	ctx, stopClients := context.WithCancel(t.Context())
	defer stopClients()
	var wg sync.WaitGroup
	for range crashClients {
		wg.Go(func() { c.signInLoop(ctx) })
	}

	ciRound := 30 * time.Second
	// The longest a process lives before its kill: the stress mode lets each live longer, so
	// more of its time goes to sign-ins than to restarts.
	maxUptime := 2500 * time.Millisecond
	if target > 0 {
		maxUptime = 4 * time.Second
	}
	started := time.Now()
	deadline, hasDeadline := t.Deadline()
	kills, checked := 0, 0
	var lost, late []ackedSignIn
	for life := 1; ; life++ {
		// A random moment: anywhere from right after start to a few seconds in.
		c.life.Store(int64(life))
		time.Sleep(time.Duration(rand.Int64N(int64(maxUptime))) + 50*time.Millisecond)
		acked := c.ackedCount()
		enough := (target == 0 && time.Since(started) >= ciRound && kills >= 3) || (target > 0 && acked >= target)
		outOfTime := hasDeadline && time.Until(deadline) < 2*time.Minute
		if enough || outOfTime {
			break
		}
		b.kill()
		kills++
		b.start()
		// The keys acknowledged before this kill, plus a sample of older ones.
		batch := c.acked(checked)
		checked += len(batch)
		batch = append(batch, c.sample(checked-len(batch), 100)...)
		l, d := c.check(batch)
		lost, late = append(lost, l...), append(late, d...)
		if target > 0 || kills%5 == 0 {
			t.Logf("kill %d: %d sign-ins acknowledged (%d pending), %d lost, %d late; answers %v",
				kills, acked, c.pendingCount(), len(lost), len(late), c.statusCounts())
		}
	}
	stopClients()
	wg.Wait()
	// One last restart, then every key there is.
	b.kill()
	kills++
	b.start()
	defer b.stop()
	l, d := c.check(c.acked(0))
	lost, late = append(lost, l...), append(late, d...)
	total := c.ackedCount()
	t.Logf("%d sign-ins acknowledged (%d with consistency pending) over %d kills in %s: %d lost, %d late; answers %v",
		total, c.pendingCount(), kills, time.Since(started).Round(time.Second), len(lost), len(late), c.statusCounts())
	for _, s := range lost {
		t.Errorf("acknowledged sign-in lost: %s (life %d, pending %v): its key never answered 200", s.email, s.life, s.pending)
	}
	for _, s := range late {
		t.Errorf("acknowledged sign-in not readable after the restart: %s (life %d): 401 before it answered 200, though it was answered without the pending header", s.email, s.life)
	}
	if target > 0 && total < target {
		t.Errorf("stopped at the test deadline with %d of %d sign-ins", total, target)
	}
	if total == 0 {
		t.Error("no sign-in was acknowledged")
	}
}

// crashClient runs sign-ins against the binary and keeps the acknowledged ones.
type crashClient struct {
	url   string
	keys  *secret.Keyring
	store *pgstore.Store
	http  *http.Client
	next  atomic.Int64
	life  atomic.Int64

	mu       sync.Mutex
	signIns  []ackedSignIn
	pending  int
	statuses map[string]int
}

// signInLoop signs in fresh addresses until ctx ends. A request that fails on the connection
// (the server is down) is retried for a while; any other failure abandons the address.
func (c *crashClient) signInLoop(ctx context.Context) {
	for ctx.Err() == nil {
		n := c.next.Add(1)
		email := fmt.Sprintf("crash%d@example.com", n)
		ip := fmt.Sprintf("10.%d.%d.%d", n>>16&255, n>>8&255, n&255)
		status, _, _ := c.post(ctx, "request", "/v1/auth/otp/request", ip, map[string]string{"email": email})
		if status != http.StatusOK {
			continue
		}
		code, err := c.code(ctx, email)
		if err != nil {
			c.count("code error")
			continue
		}
		body := map[string]string{"email": email, "code": code}
		life := int(c.life.Load())
		status, hdr, raw := c.post(ctx, "verify", "/v1/auth/otp/verify", ip, body)
		for tries := 0; status == 0 && tries < 100 && ctx.Err() == nil; tries++ {
			// The server is down; the code may still be open (or consumed by the verify that was
			// cut off: then it is refused, unacknowledged, which is fine).
			sleepCtx(ctx, 100*time.Millisecond)
			life = int(c.life.Load())
			status, hdr, raw = c.post(ctx, "verify", "/v1/auth/otp/verify", ip, body)
		}
		if status != http.StatusOK {
			continue
		}
		var v struct {
			Data struct {
				APIKey string `json:"apiKey"`
			} `json:"data"`
		}
		if err := json.Unmarshal(raw, &v); err != nil || v.Data.APIKey == "" {
			c.count("verify 200 without key")
			continue
		}
		pending := hdr.Get(commands.ConsistencyHeader) == "pending"
		c.mu.Lock()
		c.signIns = append(c.signIns, ackedSignIn{email: email, key: v.Data.APIKey, pending: pending, life: life})
		if pending {
			c.pending++
		}
		c.mu.Unlock()
	}
}

// post sends a JSON POST from client address ip; status 0 means no answer (connection failed).
func (c *crashClient) post(ctx context.Context, name, path, ip string, body any) (int, http.Header, []byte) {
	raw, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url+path, bytes.NewReader(raw))
	if err != nil {
		return 0, nil, nil
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Forwarded-For", ip)
	resp, err := c.http.Do(req)
	if err != nil {
		c.count(name + " no answer")
		if ctx.Err() == nil {
			sleepCtx(ctx, 20*time.Millisecond) // do not spin while the server is down
		}
		return 0, nil, nil
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		c.count(name + " cut off")
		return 0, nil, nil
	}
	c.count(fmt.Sprintf("%s %d", name, resp.StatusCode))
	return resp.StatusCode, resp.Header, out
}

// code returns the newest code sent to email, derived from its request event in the log the way
// the mailer derives it.
func (c *crashClient) code(ctx context.Context, email string) (string, error) {
	norm, err := otp.NormalizeEmail(email)
	if err != nil {
		return "", err
	}
	recs, err := c.store.ReadStream(ctx, commands.OTPStream(c.keys, norm), 0, 100)
	if err != nil {
		return "", err
	}
	code := ""
	for _, r := range recs {
		ev, err := events.Decode(r.Type, r.Data)
		if err != nil {
			return "", err
		}
		if got, ok := commands.OTPCodeOf(c.keys, ev); ok {
			code = got
		}
	}
	if code == "" {
		return "", fmt.Errorf("no code in the log for %s", email)
	}
	return code, nil
}

// check asks GET /v1/user with every key of batch (8 at a time). A key answered without the
// pending header must answer 200 at once (late otherwise); every key must answer 200 within
// 30 s (lost otherwise).
func (c *crashClient) check(batch []ackedSignIn) (lost, late []ackedSignIn) {
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		work = make(chan ackedSignIn)
	)
	for range crashClients {
		wg.Go(func() {
			for s := range work {
				ok, first := c.userAnswers(s.key, 30*time.Second)
				mu.Lock()
				switch {
				case !ok:
					lost = append(lost, s)
				case !first && !s.pending:
					late = append(late, s)
				}
				mu.Unlock()
			}
		})
	}
	for _, s := range batch {
		work <- s
	}
	close(work)
	wg.Wait()
	return lost, late
}

// userAnswers reports whether GET /v1/user with key answered 200 within wait, and whether it
// did on the first answer. Answers other than 200 and 401 (none expected) are asked again.
func (c *crashClient) userAnswers(key string, wait time.Duration) (ok, first bool) {
	deadline := time.Now().Add(wait)
	first = true
	for {
		req, _ := http.NewRequest(http.MethodGet, c.url+"/v1/user", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := c.http.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return true, first
			}
			if resp.StatusCode == http.StatusUnauthorized {
				first = false
			} else {
				c.count(fmt.Sprintf("user %d", resp.StatusCode))
			}
		}
		if time.Now().After(deadline) {
			return false, false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (c *crashClient) count(what string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.statuses == nil {
		c.statuses = map[string]int{}
	}
	c.statuses[what]++
}

func (c *crashClient) statusCounts() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.statuses))
	for k, v := range c.statuses {
		out[k] = v
	}
	return out
}

// acked returns the acknowledged sign-ins from index from on.
func (c *crashClient) acked(from int) []ackedSignIn {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]ackedSignIn(nil), c.signIns[from:]...)
}

// sample returns up to n random sign-ins among the first upto.
func (c *crashClient) sample(upto, n int) []ackedSignIn {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []ackedSignIn
	for i := 0; i < n && upto > 0; i++ {
		out = append(out, c.signIns[rand.IntN(upto)])
	}
	return out
}

func (c *crashClient) ackedCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.signIns)
}

func (c *crashClient) pendingCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pending
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
