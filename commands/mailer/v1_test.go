package mailer_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/litehost/litehost/commands"
	"github.com/litehost/litehost/commands/mailer"
	"github.com/litehost/litehost/domain/otp"
	"github.com/litehost/litehost/events"
	"github.com/litehost/litehost/events/pgtest"
)

// TestMailerDeliversV1CodesStillInTheLog: an otp.requested.v1 event written before the upgrade and
// not yet delivered is delivered with the code its nonce derives.
func TestMailerDeliversV1CodesStillInTheLog(t *testing.T) {
	srv := startSMTP(t, nil)
	w := newWorld(t, true)
	nonce := "ffeeddccbbaa99887766554433221100"
	now := time.Now().UTC()
	d, err := events.Encode(events.OTPRequested{Channel: "email", Address: "old@example.com", Purpose: "signin", Nonce: nonce,
		CodeHash: "unused-here", RequestedAt: now, ExpiresAt: now.Add(otp.CodeTTL)}, uuid.New(), events.Metadata{})
	pgtest.Must(t, err, "encode")
	_, err = w.store.Append(t.Context(), commands.OTPStream(w.keys, "old@example.com"), events.NoStream(), []events.EventData{d})
	pgtest.Must(t, err, "append v1")
	pgtest.Background(t, w.mailer(t, mailer.Config{Email: newSMTP(t, srv, "?tls=none"), AutoCreate: true}, nil).Run)

	m := srv.next(t)
	if got := codeIn(t, strings.ReplaceAll(m.data, "=\r\n", "")); got != commands.OTPCode(w.keys, nonce) {
		t.Errorf("delivered %s, want the v1 code %s", got, commands.OTPCode(w.keys, nonce))
	}
}
