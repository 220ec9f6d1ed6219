package mailer

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// HTTPSMS sends text messages through an HTTP provider: POST {"to": "+…", "body": "…"} as JSON
// with a bearer token. Any 2xx is success; 4xx other than 408 and 429 are permanent refusals.
type HTTPSMS struct {
	url, token string
	client     *http.Client
}

// NewHTTPSMS returns an SMS sender posting to url with token. client nil means a client with a
// 30 s timeout.
func NewHTTPSMS(url, token string, client *http.Client) *HTTPSMS {
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	return &HTTPSMS{url: url, token: token, client: client}
}

type smsRequest struct {
	To   string `json:"to"`
	Body string `json:"body"`
}

// Send posts one message.
func (s *HTTPSMS) Send(ctx context.Context, m Message) error {
	payload, err := json.Marshal(smsRequest{To: m.To, Body: m.Text})
	if err != nil {
		return Permanent(fmt.Errorf("encode sms: %w", err))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(payload))
	if err != nil {
		return Permanent(fmt.Errorf("sms request: %w", err))
	}
	req.Header.Set("Content-Type", "application/json")
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("send sms: %w", err)
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests:
		return Permanent(fmt.Errorf("sms provider refused: %s: %s", resp.Status, bytes.TrimSpace(snippet)))
	}
	return fmt.Errorf("sms provider: %s: %s", resp.Status, bytes.TrimSpace(snippet))
}
