package main

import (
	"slices"

	"github.com/litehost/litehost/commands"
	"github.com/litehost/litehost/commands/oauth"
	"github.com/litehost/litehost/readapi"
)

// oauthServer builds the authorization server of the MCP connector over the API's own OTP and
// account handlers: its tokens are the API's sessions.
func (a *app) oauthServer(otp *commands.OTP, accounts *commands.Accounts, auth *readapi.Authenticator) *oauth.Server {
	base := a.publicBase()
	channels := a.cfg.OTPChannels
	return oauth.New(oauth.Config{
		Issuer:       base,
		Resource:     base + "/mcp",
		EmailEnabled: len(channels) == 0 || slices.Contains(channels, commands.IdentifierEmail),
		Now:          a.now,
	}, a.keyring, a.webPages(), otp, accounts, auth, a.limiter, a.runner, a.logger.With("component", "oauth"))
}
