package mailer

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/wneessen/go-mail"
)

// SMTP sends e-mail through an SMTP server with go-mail.
type SMTP struct {
	host string
	from string
	opts []mail.Option
}

// NewSMTP parses rawURL — smtp://[user:pass@]host[:port][?tls=none|starttls|tls] or smtps://… —
// and returns a sender whose messages come from from. Without tls=, smtp:// uses STARTTLS when
// the server offers it and smtps:// uses implicit TLS. Credentials require TLS unless tls=none is
// explicit (then they go in clear, as asked).
func NewSMTP(rawURL, from string) (*SMTP, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, errors.New("smtp url: cannot parse")
	}
	if u.Scheme != "smtp" && u.Scheme != "smtps" {
		return nil, fmt.Errorf("smtp url: scheme %q, want smtp or smtps", u.Scheme)
	}
	if u.Hostname() == "" {
		return nil, errors.New("smtp url: no host")
	}
	if from == "" {
		return nil, errors.New("smtp: a From address is required")
	}
	if err := mail.NewMsg().From(from); err != nil {
		return nil, fmt.Errorf("smtp: From %q: %w", from, err)
	}
	mode := u.Query().Get("tls")
	if mode == "" {
		mode = "opportunistic"
		if u.Scheme == "smtps" {
			mode = "tls"
		}
	}
	port := map[string]int{"none": 25, "opportunistic": 25, "starttls": 587, "tls": 465}[mode]
	if port == 0 {
		return nil, fmt.Errorf("smtp url: tls=%q, want none, starttls or tls", mode)
	}
	if p := u.Port(); p != "" {
		if port, err = strconv.Atoi(p); err != nil || port <= 0 || port > 65535 {
			return nil, fmt.Errorf("smtp url: bad port %q", p)
		}
	}
	opts := []mail.Option{mail.WithPort(port), mail.WithTimeout(30 * time.Second)}
	switch mode {
	case "none":
		opts = append(opts, mail.WithTLSPolicy(mail.NoTLS))
	case "opportunistic":
		opts = append(opts, mail.WithTLSPolicy(mail.TLSOpportunistic))
	case "starttls":
		opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory))
	case "tls":
		opts = append(opts, mail.WithSSL())
	}
	if user := u.User.Username(); user != "" {
		pass, _ := u.User.Password()
		// AutoDiscover picks the strongest mechanism but offers none on a connection that may be in
		// clear; PLAIN itself refuses to send credentials in clear except to localhost.
		auth := mail.SMTPAuthAutoDiscover
		switch mode {
		case "opportunistic":
			auth = mail.SMTPAuthPlain
		case "none":
			auth = mail.SMTPAuthPlainNoEnc
		}
		opts = append(opts, mail.WithSMTPAuth(auth), mail.WithUsername(user), mail.WithPassword(pass))
	}
	return &SMTP{host: u.Hostname(), from: from, opts: opts}, nil
}

// Send delivers one message. A 5xx refusal of the sender, recipient or content is permanent;
// everything else (connection failures, 4xx) is worth retrying.
func (s *SMTP) Send(ctx context.Context, m Message) error {
	msg := mail.NewMsg()
	if err := msg.From(s.from); err != nil {
		return Permanent(fmt.Errorf("from: %w", err))
	}
	if err := msg.To(m.To); err != nil {
		return Permanent(fmt.Errorf("to: %w", err))
	}
	msg.Subject(m.Subject)
	msg.SetBodyString(mail.TypeTextPlain, m.Text)
	c, err := mail.NewClient(s.host, s.opts...)
	if err != nil {
		return Permanent(fmt.Errorf("smtp client: %w", err))
	}
	if err := c.DialAndSendWithContext(ctx, msg); err != nil {
		var se *mail.SendError
		if errors.As(err, &se) && !se.IsTemp() && se.ErrorCode() >= 500 && se.ErrorCode() < 600 {
			switch se.Reason {
			case mail.ErrSMTPMailFrom, mail.ErrSMTPRcptTo, mail.ErrSMTPData, mail.ErrSMTPDataClose:
				return Permanent(fmt.Errorf("smtp send: %w", err))
			}
		}
		return fmt.Errorf("smtp send: %w", err)
	}
	return nil
}
