package mailer

import (
	"context"
	"log/slog"
)

// LogSender "delivers" codes to the server log: for development, when no SMTP server or SMS
// provider is configured. It is loud on purpose, so nobody runs it in production by accident.
type LogSender struct {
	logger *slog.Logger
}

// NewLogSender returns a LogSender writing to logger.
func NewLogSender(logger *slog.Logger) *LogSender { return &LogSender{logger: logger} }

// Send logs the message, code included, at WARN.
func (s *LogSender) Send(ctx context.Context, m Message) error {
	s.logger.WarnContext(ctx, "NO DELIVERY CONFIGURED: OTP message written to the log instead of being sent (development only; set LITEHOST_SMTP_URL / LITEHOST_SMS_URL)",
		"channel", m.Channel, "to", m.To, "subject", m.Subject, "text", m.Text)
	return nil
}
