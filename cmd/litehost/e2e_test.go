package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/litehost/litehost/events/pgtest"
)

// binary is a built litehost binary under test, started as a real process.
type binary struct {
	t    *testing.T
	path string
	env  []string
	url  string
	cmd  *exec.Cmd
	logs *syncBuffer
}

func buildBinary(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "litehost")
	out, err := exec.CommandContext(t.Context(), "go", "build", "-o", path, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return path
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func (b *binary) start() {
	b.t.Helper()
	b.logs = &syncBuffer{}
	b.cmd = exec.Command(b.path, "serve")
	b.cmd.Env = b.env
	b.cmd.Stdout, b.cmd.Stderr = b.logs, b.logs
	if err := b.cmd.Start(); err != nil {
		b.t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(b.url + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("server did not become healthy: %v\n%s", err, b.logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// kill ends the process abruptly (SIGKILL): no shutdown code runs.
func (b *binary) kill() {
	_ = b.cmd.Process.Signal(syscall.SIGKILL)
	_ = b.cmd.Wait()
}

// stop asks for a graceful shutdown and requires it to finish in time.
func (b *binary) stop() {
	b.t.Helper()
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- b.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			b.t.Errorf("graceful stop: %v\n%s", err, b.logs.String())
		}
	case <-time.After(20 * time.Second):
		b.kill()
		b.t.Errorf("no graceful stop within 20 s")
	}
}

func (b *binary) call(method, path, key string, body []byte, ctype string) (int, map[string]any) {
	b.t.Helper()
	req, _ := http.NewRequest(method, b.url+path, bytes.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return resp.StatusCode, m
}

// TestBinarySurvivesKillBetweenAppendAndProjection builds the real binary, signs in through a
// real SMTP conversation, then kills the server with SIGKILL in the middle of a burst of writes,
// so some events are appended but not yet projected. After a restart every appended project is
// in the read model exactly once: nothing lost, nothing applied twice.
func TestBinarySurvivesKillBetweenAppendAndProjection(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds and runs the binary")
	}
	mb := startMailbox(t)
	dsn := pgtest.NewDatabase(t)
	addr := freeAddr(t)
	b := &binary{t: t, path: buildBinary(t), url: "http://" + addr, env: append(os.Environ(),
		"LITEHOST_DATABASE_URL="+dsn, "LITEHOST_HTTP_ADDR="+addr, "LITEHOST_DATA_DIR="+t.TempDir(),
		"LITEHOST_SECRET=e2e-secret-e2e-secret-e2e-secret-0123", "LITEHOST_SMTP_URL="+mb.url(),
		"LITEHOST_PUBLIC_URL=http://"+addr, "LOG_LEVEL=warn")}
	b.start()
	defer func() {
		if b.cmd.ProcessState == nil {
			b.kill()
		}
		if t.Failed() {
			t.Logf("server log:\n%s", b.logs.String())
		}
	}()

	status, _ := b.call(http.MethodPost, "/v1/auth/otp/request", "", []byte(`{"email":"e2e@example.com"}`), "application/json")
	if status != http.StatusOK {
		t.Fatalf("otp request = %d", status)
	}
	code := mb.waitCode(t, "e2e@example.com", 1)
	status, body := b.call(http.MethodPost, "/v1/auth/otp/verify", "", []byte(`{"email":"e2e@example.com","code":"`+code+`"}`), "application/json")
	if status != http.StatusOK {
		t.Fatalf("verify = %d %v", status, body)
	}
	key := body["data"].(map[string]any)["apiKey"].(string)
	cmd := exec.Command(b.path, "admin", "set-plan", "e2e@example.com", "scale")
	cmd.Env = b.env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("set-plan: %v %s", err, out)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, u := b.call(http.MethodGet, "/v1/user", key, nil, "")
		if d, ok := u["data"].(map[string]any); ok && d["plan"].(map[string]any)["tier"] == "scale" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("plan change not projected")
		}
		time.Sleep(50 * time.Millisecond)
	}

	// A burst of creates; kill the server once the first answers arrive, while others are in flight.
	var wg sync.WaitGroup
	answered := make(chan struct{}, 100)
	for i := 0; i < 60; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body, ctype := multipartBody(t, map[string]string{"title": fmt.Sprintf("burst %d", i)}, upload{"index.html", []byte(fmt.Sprintf("<p>%d</p>", i))})
			if s, _ := b.call(http.MethodPost, "/v1/projects", key, body, ctype); s == http.StatusCreated {
				answered <- struct{}{}
			}
		}()
	}
	select {
	case <-answered:
	case <-time.After(20 * time.Second):
		t.Fatal("no create answered")
	}
	b.kill()
	wg.Wait()
	ok := len(answered) + 1

	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var logged, projectedAtKill int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM events WHERE event_type = 'project.created.v1'`).Scan(&logged); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM projects`).Scan(&projectedAtKill); err != nil {
		t.Fatal(err)
	}
	t.Logf("at the kill: %d creates answered, %d appended, %d projected", ok, logged, projectedAtKill)
	b.start()
	defer b.stop()
	if logged < ok {
		t.Fatalf("%d creates were answered but only %d are in the log", ok, logged)
	}
	// Appends the killed server had already sent may still commit in PostgreSQL after the kill,
	// so the log is counted again on every look.
	deadline = time.Now().Add(15 * time.Second)
	for {
		var projected, usage int
		// The read model first: it can only hold events the log already had.
		_ = conn.QueryRow(context.Background(), `SELECT count(*) FROM projects`).Scan(&projected)
		_ = conn.QueryRow(context.Background(), `SELECT coalesce(sum(active_projects), 0) FROM account_usage`).Scan(&usage)
		_ = conn.QueryRow(context.Background(), `SELECT count(*) FROM events WHERE event_type = 'project.created.v1'`).Scan(&logged)
		if projected == logged && usage == logged {
			break
		}
		if time.Now().After(deadline) || projected > logged || usage > logged {
			t.Fatalf("after restart: %d projects and usage %d in the read model, %d in the log", projected, usage, logged)
		}
		time.Sleep(50 * time.Millisecond)
	}
	_, list := b.call(http.MethodGet, "/v1/projects?limit=100", key, nil, "")
	if n := len(list["data"].(map[string]any)["projects"].([]any)); n != logged {
		t.Errorf("API lists %d projects, log has %d", n, logged)
	}
	t.Logf("answered before the kill: %d; appended: %d; all projected once after restart", ok, logged)
}
