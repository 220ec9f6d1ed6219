package main

import (
	"net"
	"net/url"
	"slices"
	"strings"

	"github.com/litehost/litehost/commands"
	"github.com/litehost/litehost/commands/claimpage"
	"github.com/litehost/litehost/internal/webpage"
)

// claimURL is the browser claim page of a claim token (spec [S4] claimUrl):
// <public URL>/claim/<token>. The token sits in the path, so the page sends no Referer and
// the logs and metrics name the route by its template only.
func (a *app) claimURL(token string) string {
	return a.publicBase() + "/claim/" + token
}

// publicBase is LITEHOST_PUBLIC_URL without a trailing slash, or the listen address on a
// developer machine where none is set.
func (a *app) publicBase() string {
	if a.cfg.PublicURL != "" {
		return strings.TrimRight(a.cfg.PublicURL, "/")
	}
	host, port, err := net.SplitHostPort(a.cfg.HTTPAddr)
	if err != nil {
		return "http://localhost"
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// claimPage builds the claim page over the API's own OTP handlers and claim command, so the
// API's limits and rules apply to it unchanged.
func (a *app) claimPage(otp *commands.OTP, accounts *commands.Accounts) *claimpage.Page {
	secure := false
	if u, err := url.Parse(a.cfg.PublicURL); err == nil && u.Scheme == "https" {
		secure = true
	}
	pages, err := webpage.New(webpage.Config{Key: a.keyring.Sum("web-pages", "cookies-v1"), Secure: secure, Now: a.now})
	if err != nil {
		// The templates are embedded: a parse failure is a programming error.
		panic("web pages: " + err.Error())
	}
	channels := a.cfg.OTPChannels
	return claimpage.New(pages, a.projects, otp, accounts, a.runner, claimpage.Config{
		SiteURL:      a.siteURL,
		EmailEnabled: len(channels) == 0 || slices.Contains(channels, commands.IdentifierEmail),
		Key:          a.keyring.Sum("web-pages", "claim-ref-v1"),
		Now:          a.now,
	}, a.logger.With("component", "claim-page"))
}
