package mailer

import (
	"context"
	"fmt"
	"strings"

	"github.com/litehost/litehost/commands"
	"github.com/litehost/litehost/domain/otp"
)

// compose words the message for one requested code. This is where what the API must not reveal
// (whether an account exists, whether sign-up is open) is told — to the address's owner only.
func (m *Mailer) compose(ctx context.Context, req codeRequest) (Message, error) {
	id := commands.Identifier{Kind: req.Channel, Value: req.Address}
	exists, known := true, false
	if m.accounts != nil {
		e, err := m.accounts.AccountExists(ctx, id)
		if err != nil {
			return Message{}, fmt.Errorf("look up account: %w", err)
		}
		exists, known = e, true
	}
	code := req.Code
	until := req.ExpiresAt.UTC().Format("15:04 UTC")
	msg := Message{Channel: req.Channel, To: req.Address}

	if known && !exists && !m.cfg.AutoCreate {
		// The code would be refused at verify: do not send one, say why.
		msg.Subject = "Litehost sign-in request"
		msg.Text = "Someone asked to sign in to Litehost with this address, but no Litehost account uses it and " +
			"sign-up is closed on this server, so no code was sent.\n\nIf you did not ask for this, you can ignore this message.\n"
		if req.Channel == otp.ChannelPhone {
			msg.Text = "Litehost: no account uses this number and sign-up is closed, so no code was sent."
		}
		return msg, nil
	}

	var note string
	switch {
	case known && !exists:
		note = "No Litehost account uses this address yet: entering the code creates one on the free plan."
	case known && exists && req.Purpose == otp.PurposeSignUp:
		note = "You already have a Litehost account with this address: the code signs you in to it."
	}
	if req.Channel == otp.ChannelPhone {
		msg.Text = "Your Litehost code is " + code + " (valid until " + until + ")."
		if note != "" {
			msg.Text += " " + strings.ReplaceAll(note, "address", "number")
		}
		return msg, nil
	}
	msg.Subject = "Your Litehost code: " + code
	var b strings.Builder
	fmt.Fprintf(&b, "Your Litehost code is %s.\n\nIt is valid for %d minutes, until %s, and works once.\n", code, int(otp.CodeTTL.Minutes()), until)
	if note != "" {
		b.WriteString("\n" + note + "\n")
	}
	b.WriteString("\nIf you did not ask for this code, you can ignore this message: nobody can sign in without it.\n")
	msg.Text = b.String()
	return msg, nil
}
