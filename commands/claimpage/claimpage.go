// Package claimpage serves the browser claim page of a temporary project (spec [S4] claimUrl):
// a visitor signs in with an e-mailed code and claims the project, in server-rendered HTML that
// needs no JavaScript. It calls the same command handlers as the API (OTP request and verify,
// project claim), so the API's rules and limits hold here too; the pages and their browser
// protections come from internal/webpage.
//
// Flow: GET /claim/:token shows the project and an e-mail field; POST /claim/:token/email sends
// the code (the API's anti-enumeration answer) and remembers the address in a signed, short-lived
// state cookie; POST /claim/:token/code verifies the code, signs in, claims, and revokes the
// session it just opened, all in that one request, so no credential outlives it.
package claimpage

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/litehost/litehost/commands"
	"github.com/litehost/litehost/domain/otp"
	"github.com/litehost/litehost/domain/project"
	"github.com/litehost/litehost/events"
	"github.com/litehost/litehost/internal/webpage"
)

// Projects is the part of commands.Projects the page uses.
type Projects interface {
	ClaimView(ctx context.Context, token string) (commands.ClaimView, error)
	Claim(ctx context.Context, commandID uuid.UUID, accountID, token string) (commands.Claimed, error)
}

// SignIn is the part of commands.OTP the page uses.
type SignIn interface {
	Request(ctx context.Context, cmd commands.RequestOTP) (commands.OTPRequested, error)
	Verify(ctx context.Context, cmd commands.VerifyOTP) (commands.SignInResult, error)
}

// Sessions ends the session the page opened (commands.Accounts).
type Sessions interface {
	RevokeRefresh(ctx context.Context, commandID uuid.UUID, refreshToken string) (events.Position, error)
}

// Config is what the page needs to know of the deployment.
type Config struct {
	// SiteURL renders a project's public address from its slug.
	SiteURL func(slug string) string
	// EmailEnabled is false when the server does not sign in by e-mail (LITEHOST_OTP_CHANNELS).
	EmailEnabled bool
	// Key derives the reference to the claim token kept in the state cookie.
	Key []byte
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Page is the claim page.
type Page struct {
	pages    *webpage.Pages
	projects Projects
	signIn   SignIn
	sessions Sessions
	waiter   commands.Waiter
	cfg      Config
	logger   *slog.Logger
}

// New returns the claim page. waiter (may be nil) makes the success page wait until the claim is
// visible through the API.
func New(pages *webpage.Pages, projects Projects, signIn SignIn, sessions Sessions, waiter commands.Waiter, cfg Config, logger *slog.Logger) *Page {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Page{pages: pages, projects: projects, signIn: signIn, sessions: sessions, waiter: waiter, cfg: cfg, logger: logger}
}

// Register adds GET /claim/:token, POST /claim/:token/email and POST /claim/:token/code. Logs and
// metrics name these routes by their template, never by the path that holds the token.
func (p *Page) Register(r gin.IRoutes) {
	r.GET("/claim/:token", p.start)
	r.POST("/claim/:token/email", p.sendCode)
	r.POST("/claim/:token/code", p.verify)
}

// stateName is the state cookie of the flow; stateTTL matches the code's lifetime.
const (
	stateName = "claim"
	stateTTL  = otp.CodeTTL
)

func (p *Page) start(c *gin.Context) {
	token := c.Param("token")
	v, ok := p.project(c, token)
	if !ok {
		return
	}
	p.render(c, http.StatusOK, webpage.PageEmail, p.emailView(token, v, "", ""))
}

func (p *Page) sendCode(c *gin.Context) {
	token := c.Param("token")
	if !p.form(c) {
		return
	}
	v, ok := p.project(c, token)
	if !ok {
		return
	}
	raw := c.Request.PostFormValue("email")
	email, err := otp.NormalizeEmail(raw)
	if err != nil {
		p.render(c, http.StatusUnprocessableEntity, webpage.PageEmail,
			p.emailView(token, v, raw, "Enter a valid e-mail address, like name@example.com."))
		return
	}
	if !p.cfg.EmailEnabled {
		p.message(c, http.StatusForbidden, "Sign-in by e-mail is off", "This server does not sign in by e-mail, so the project cannot be claimed here. Use the API instead.")
		return
	}
	ctx := c.Request.Context()
	res, err := p.signIn.Request(ctx, commands.RequestOTP{
		Identifier: commands.Identifier{Kind: commands.IdentifierEmail, Value: email},
		Purpose:    otp.PurposeSignIn, ClientIP: clientIP(c),
	})
	if err != nil {
		p.fail(c, err, webpage.PageEmail, func(msg string) webpage.View { return p.emailView(token, v, raw, msg) })
		return
	}
	p.pages.SetState(c.Writer, stateName, url.Values{"email": {email}, "ref": {p.ref(token)}}.Encode(), stateTTL)
	// The same words for every address, as the API: nothing here tells whether an account exists.
	lead := "We sent a 6-digit code to " + email + ". Enter it below to sign in and claim the project."
	if res.CodeAlreadySent {
		lead = "A code was already sent to " + email + " and is still valid. Enter it below to sign in and claim the project."
	}
	p.render(c, http.StatusOK, webpage.PageCode, p.codeView(token, lead, ""))
}

func (p *Page) verify(c *gin.Context) {
	token := c.Param("token")
	if !p.form(c) {
		return
	}
	v, ok := p.project(c, token) // a claimed or gone project keeps its code unspent
	if !ok {
		return
	}
	email, ok := p.state(c, token)
	if !ok {
		p.render(c, http.StatusBadRequest, webpage.PageEmail,
			p.emailView(token, v, "", "Your sign-in step ran out of time. Enter your e-mail address again to get a new code."))
		return
	}
	code := strings.Join(strings.Fields(c.Request.PostFormValue("code")), "")
	lead := "Enter the 6-digit code we sent to " + email + "."
	if len(code) != 6 || strings.Trim(code, "0123456789") != "" {
		p.render(c, http.StatusUnprocessableEntity, webpage.PageCode, p.codeView(token, lead, "The code is 6 digits, like 123456."))
		return
	}
	ctx := c.Request.Context()
	res, err := p.signIn.Verify(ctx, commands.VerifyOTP{
		Identifier: commands.Identifier{Kind: commands.IdentifierEmail, Value: email}, Code: code,
		ClientIP: clientIP(c), // the per-client wrong-code limit counts the page's tries as the API's
	})
	if err != nil {
		p.fail(c, err, webpage.PageCode, func(msg string) webpage.View { return p.codeView(token, lead, msg) })
		return
	}
	claimed, err := p.projects.Claim(ctx, uuid.New(), res.AccountID, token)
	last := claimed.Position
	// The session existed only to claim: end it whatever the claim's outcome. Its key and
	// refresh token were never shown to anyone.
	if pos, rerr := p.sessions.RevokeRefresh(context.WithoutCancel(ctx), uuid.New(), res.RefreshToken); rerr != nil {
		p.logger.Error("revoke the claim page's session", "error", rerr, "path", c.FullPath())
	} else if pos.Compare(last) > 0 {
		last = pos
	}
	if err != nil {
		p.fail(c, err, webpage.PageCode, func(msg string) webpage.View { return p.codeView(token, lead, msg) })
		return
	}
	p.pages.ClearState(c.Writer, stateName)
	if p.waiter != nil && !last.IsZero() {
		// Best effort: the claim is durable; a late projection only delays what the API shows.
		_ = p.waiter.WaitFor(ctx, last)
	}
	site := p.cfg.SiteURL(claimed.Slug)
	lead2 := "It stays online for good."
	if claimed.ExpiresAt != nil {
		lead2 = "On the free plan it stays online until " + when(*claimed.ExpiresAt) + "; a paid plan keeps it for good."
	}
	p.render(c, http.StatusOK, webpage.PageMessage, webpage.View{
		Title: "Project claimed",
		Lead:  []string{"The project " + claimed.Slug + " is now in the account of " + email + ".", lead2},
		Facts: []webpage.Fact{{Term: "Address", Value: site, Href: site}},
	})
}

// project loads the project of token and answers the page itself when there is none to claim.
func (p *Page) project(c *gin.Context, token string) (commands.ClaimView, bool) {
	v, err := p.projects.ClaimView(c.Request.Context(), token)
	switch {
	case errors.Is(err, project.ErrNotFound):
		p.message(c, http.StatusNotFound, "Claim link not valid",
			"This claim link does not name a project that can be claimed: it may be mistyped, or the project expired.")
		return v, false
	case err != nil:
		p.serverError(c, err)
		return v, false
	case v.Claimed:
		p.alreadyClaimed(c)
		return v, false
	}
	return v, true
}

// form parses the body and applies the CSRF protections; a refused form does nothing else.
func (p *Page) form(c *gin.Context) bool {
	if err := webpage.ParseForm(c.Writer, c.Request); err != nil {
		p.message(c, http.StatusBadRequest, "Form not readable", "The form could not be read. Go back and try again.")
		return false
	}
	if err := p.pages.Check(c.Request); err != nil {
		p.logger.Info("form refused", "error", err, "path", c.FullPath())
		p.message(c, http.StatusForbidden, "Form expired or sent from elsewhere",
			"For your safety this form was not accepted: it was sent from another site, or the page was open too long. Open the claim link again and retry.")
		return false
	}
	return true
}

// fail answers an error of a command: limits get the retry page, a wrong or expired code the
// form again with the error on its field, the claim rules their own message.
func (p *Page) fail(c *gin.Context, err error, page string, again func(msg string) webpage.View) {
	var httpErr *commands.HTTPError
	switch {
	case errors.As(err, &httpErr) && httpErr.Status == http.StatusTooManyRequests:
		p.render(c, http.StatusTooManyRequests, webpage.PageRetry, webpage.View{
			Title: "Too many tries", Lead: []string{httpErr.Message}, RetryAfter: httpErr.RetryAfter,
			Links: []webpage.Link{{Text: "Back to the claim page", Href: "/claim/" + c.Param("token")}},
		})
	case errors.As(err, &httpErr) && httpErr.Code == "OTP_INVALID":
		msg := "The code is not correct."
		if left, ok := httpErr.Details["attemptsLeft"].(int); ok {
			msg += fmt.Sprintf(" %d tries left.", left)
		}
		p.render(c, http.StatusUnprocessableEntity, page, again(msg))
	case errors.As(err, &httpErr) && httpErr.Code == "OTP_EXPIRED":
		p.pages.ClearState(c.Writer, stateName) // a new code starts from the e-mail step
		p.render(c, http.StatusUnprocessableEntity, webpage.PageMessage, webpage.View{
			Title: "Code expired", Alert: "There is no open code for this address any more: it expired or was already used.",
			Links: []webpage.Link{{Text: "Get a new code", Href: "/claim/" + c.Param("token")}},
		})
	case errors.As(err, &httpErr) && httpErr.Status < 500:
		p.render(c, httpErr.Status, page, again(httpErr.Message))
	case errors.Is(err, commands.ErrSignupDisabled):
		p.message(c, http.StatusForbidden, "No account for this address",
			"This server does not create accounts on sign-in, and this address has none.")
	case errors.Is(err, project.ErrAlreadyClaimed):
		p.alreadyClaimed(c)
	case errors.Is(err, project.ErrNotFound):
		p.message(c, http.StatusNotFound, "Claim link not valid", "The project can no longer be claimed: it expired or is gone.")
	case errors.Is(err, project.ErrProjectLimit), errors.Is(err, project.ErrStorageLimit), errors.Is(err, project.ErrFileLimit):
		p.message(c, http.StatusForbidden, "Your plan is full",
			"Your account is at its plan's limit ("+err.Error()+"). Archive or delete a project, or upgrade, then open the claim link again.")
	default:
		p.serverError(c, err)
	}
}

func (p *Page) alreadyClaimed(c *gin.Context) {
	p.message(c, http.StatusConflict, "Already claimed", "This project has already been claimed into an account.")
}

func (p *Page) serverError(c *gin.Context, err error) {
	p.logger.Error("claim page failed", "error", err, "method", c.Request.Method, "path", c.FullPath(),
		"request_id", events.MetadataFrom(c.Request.Context()).RequestID)
	p.message(c, http.StatusInternalServerError, "Something went wrong", "Something went wrong on our side. It is safe to try again.")
}

func (p *Page) message(c *gin.Context, status int, title, text string) {
	p.render(c, status, webpage.PageMessage, webpage.View{Title: title, Lead: []string{text}})
}

func (p *Page) render(c *gin.Context, status int, page string, v webpage.View) {
	if err := p.pages.Render(c.Writer, c.Request, status, page, v); err != nil {
		p.logger.Error("render claim page", "error", err, "path", c.FullPath())
	}
	c.Abort()
}

func (p *Page) emailView(token string, v commands.ClaimView, email, errMsg string) webpage.View {
	site := p.cfg.SiteURL(v.Slug)
	facts := []webpage.Fact{{Term: "Project", Value: v.Slug}, {Term: "Address", Value: site, Href: site}}
	if v.ExpiresAt != nil {
		facts = append(facts, webpage.Fact{Term: "Expires", Value: when(*v.ExpiresAt)})
	}
	view := webpage.View{
		Title:  "Claim your project",
		Lead:   []string{"Sign in with your e-mail address to keep this temporary project in your Litehost account. Unclaimed, it is deleted when it expires."},
		Facts:  facts,
		Action: "/claim/" + token + "/email", Submit: "Send me a code",
		Values: map[string]string{"email": email},
	}
	if errMsg != "" {
		view.Errors = map[string]string{"email": errMsg}
	}
	return view
}

func (p *Page) codeView(token, lead, errMsg string) webpage.View {
	view := webpage.View{
		Title:  "Enter your code",
		Lead:   []string{lead},
		Action: "/claim/" + token + "/code", Submit: "Sign in and claim",
		Links: []webpage.Link{{Text: "Use another e-mail address", Href: "/claim/" + token}},
	}
	if errMsg != "" {
		view.Errors = map[string]string{"code": errMsg}
	}
	return view
}

// state returns the e-mail address of the flow's state cookie, if the cookie belongs to token.
func (p *Page) state(c *gin.Context, token string) (string, bool) {
	raw, ok := p.pages.State(c.Request, stateName)
	if !ok {
		return "", false
	}
	vals, err := url.ParseQuery(raw)
	if err != nil || !hmac.Equal([]byte(vals.Get("ref")), []byte(p.ref(token))) || vals.Get("email") == "" {
		return "", false
	}
	return vals.Get("email"), true
}

// ref is the state cookie's reference to a claim token: keyed, so the cookie (readable by the
// client and sent on every request to the host) never holds the token itself.
func (p *Page) ref(token string) string {
	m := hmac.New(sha256.New, p.cfg.Key)
	m.Write([]byte("claim-page-ref\x00" + token))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16])
}

// clientIP is the address the per-client limits count, as the API resolves it (trusted proxies).
func clientIP(c *gin.Context) string {
	if ip := events.MetadataFrom(c.Request.Context()).ClientIP; ip != "" {
		return ip
	}
	return c.ClientIP()
}

// when renders a time for people, in UTC.
func when(t time.Time) string { return t.UTC().Format("2 January 2006, 15:04 UTC") }
