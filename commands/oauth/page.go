package oauth

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

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/ory/fosite"

	"github.com/litehost/litehost/commands"
	"github.com/litehost/litehost/domain/otp"
	"github.com/litehost/litehost/events"
	"github.com/litehost/litehost/internal/webpage"
)

// SignIn is the part of commands.OTP the sign-in page uses.
type SignIn interface {
	Request(ctx context.Context, cmd commands.RequestOTP) (commands.OTPRequested, error)
	Verify(ctx context.Context, cmd commands.VerifyOTP) (commands.SignInResult, error)
}

// page is the browser sign-in page of the authorization endpoint: e-mail → code → consent →
// redirect with the code. Every step re-validates the authorization request (its query), so a
// step can never be reached with a request fosite would refuse.
type page struct {
	srv          *Server
	pages        *webpage.Pages
	signIn       SignIn
	sessions     Sessions
	emailEnabled bool
	stateKey     []byte
	logger       *slog.Logger
}

const (
	stateName = "oauth"
	stateTTL  = otp.CodeTTL
)

// request validates the authorization request of c and answers the page itself when it is not
// valid: back to the client when its redirect URI is known to be its own, else an error page.
func (p *page) request(c *gin.Context) (fosite.AuthorizeRequester, *client, bool) {
	ctx := c.Request.Context()
	ar, redirectable, err := p.srv.authorizeRequest(ctx, c.Request)
	if err != nil {
		p.srv.logFosite("authorization request refused", err)
		if redirectable {
			p.srv.provider.WriteAuthorizeError(ctx, c.Writer, ar, err)
			c.Abort()
			return nil, nil, false
		}
		msg := "The application that sent you here made a request this server cannot accept."
		var rfc *fosite.RFC6749Error
		if errors.As(err, &rfc) && rfc.HintField != "" {
			msg += " " + rfc.HintField
		}
		p.message(c, http.StatusBadRequest, "Sign-in link not valid", msg)
		return nil, nil, false
	}
	cl, _ := ar.GetClient().(*client)
	return ar, cl, true
}

func (p *page) start(c *gin.Context) {
	_, cl, ok := p.request(c)
	if !ok {
		return
	}
	p.render(c, http.StatusOK, webpage.PageEmail, p.emailView(c, cl, "", ""))
}

func (p *page) sendCode(c *gin.Context) {
	if !p.form(c) {
		return
	}
	_, cl, ok := p.request(c)
	if !ok {
		return
	}
	raw := c.Request.PostFormValue("email")
	email, err := otp.NormalizeEmail(raw)
	if err != nil {
		p.render(c, http.StatusUnprocessableEntity, webpage.PageEmail, p.emailView(c, cl, raw, "Enter a valid e-mail address, like name@example.com."))
		return
	}
	if !p.emailEnabled {
		p.message(c, http.StatusForbidden, "Sign-in by e-mail is off", "This server does not sign in by e-mail. Use an API key instead.")
		return
	}
	res, err := p.signIn.Request(c.Request.Context(), commands.RequestOTP{
		Identifier: commands.Identifier{Kind: commands.IdentifierEmail, Value: email},
		Purpose:    otp.PurposeSignIn, ClientIP: clientIP(c),
	})
	if err != nil {
		p.fail(c, err, webpage.PageEmail, func(msg string) webpage.View { return p.emailView(c, cl, raw, msg) })
		return
	}
	p.pages.SetState(c.Writer, stateName, url.Values{"email": {email}, "ref": {p.ref(c)}}.Encode(), stateTTL)
	// The same words for every address, as the API: nothing here tells whether an account exists.
	lead := "We sent a 6-digit code to " + email + ". Enter it below to sign in."
	if res.CodeAlreadySent {
		lead = "A code was already sent to " + email + " and is still valid. Enter it below to sign in."
	}
	p.render(c, http.StatusOK, webpage.PageCode, p.codeView(c, lead, ""))
}

func (p *page) verify(c *gin.Context) {
	if !p.form(c) {
		return
	}
	_, cl, ok := p.request(c)
	if !ok {
		return
	}
	st, ok := p.state(c)
	if !ok || st.Get("email") == "" {
		p.render(c, http.StatusBadRequest, webpage.PageEmail,
			p.emailView(c, cl, "", "Your sign-in step ran out of time. Enter your e-mail address again to get a new code."))
		return
	}
	email := st.Get("email")
	code := strings.Join(strings.Fields(c.Request.PostFormValue("code")), "")
	lead := "Enter the 6-digit code we sent to " + email + "."
	if len(code) != 6 || strings.Trim(code, "0123456789") != "" {
		p.render(c, http.StatusUnprocessableEntity, webpage.PageCode, p.codeView(c, lead, "The code is 6 digits, like 123456."))
		return
	}
	ctx := c.Request.Context()
	res, err := p.signIn.Verify(ctx, commands.VerifyOTP{
		Identifier: commands.Identifier{Kind: commands.IdentifierEmail, Value: email}, Code: code, ClientIP: clientIP(c),
	})
	if err != nil {
		p.fail(c, err, webpage.PageCode, func(msg string) webpage.View { return p.codeView(c, lead, msg) })
		return
	}
	// The code proved the address; the client's own session starts when it exchanges its
	// authorization code. The session this sign-in opened was never shown to anyone: end it.
	if _, err := p.sessions.RevokeRefresh(context.WithoutCancel(ctx), uuid.New(), res.RefreshToken); err != nil {
		p.logger.Error("revoke the sign-in page's session", "error", err)
	}
	p.pages.SetState(c.Writer, stateName, url.Values{"email": {email}, "account": {res.AccountID}, "ref": {p.ref(c)}}.Encode(), stateTTL)
	p.render(c, http.StatusOK, webpage.PageConsent, p.consentView(c, cl, email))
}

func (p *page) consent(c *gin.Context) {
	if !p.form(c) {
		return
	}
	ar, cl, ok := p.request(c)
	if !ok {
		return
	}
	st, ok := p.state(c)
	if !ok || st.Get("account") == "" {
		p.render(c, http.StatusBadRequest, webpage.PageEmail,
			p.emailView(c, cl, "", "Your sign-in step ran out of time. Enter your e-mail address again to get a new code."))
		return
	}
	p.pages.ClearState(c.Writer, stateName)
	ctx := c.Request.Context()
	if c.Request.PostFormValue("decision") != "allow" {
		p.srv.provider.WriteAuthorizeError(ctx, c.Writer, ar, fosite.ErrAccessDenied.WithHint("The user denied access."))
		c.Abort()
		return
	}
	for _, s := range ar.GetRequestedScopes() {
		ar.GrantScope(s)
	}
	resp, err := p.srv.provider.NewAuthorizeResponse(ctx, ar, &fosite.DefaultSession{Subject: st.Get("account")})
	if err != nil {
		p.srv.logFosite("authorization refused", err)
		p.srv.provider.WriteAuthorizeError(ctx, c.Writer, ar, err)
		c.Abort()
		return
	}
	p.srv.provider.WriteAuthorizeResponse(ctx, c.Writer, ar, resp)
	c.Abort()
}

// form parses the body and applies the CSRF protections; a refused form does nothing else.
func (p *page) form(c *gin.Context) bool {
	if err := webpage.ParseForm(c.Writer, c.Request); err != nil {
		p.message(c, http.StatusBadRequest, "Form not readable", "The form could not be read. Go back and try again.")
		return false
	}
	if err := p.pages.Check(c.Request); err != nil {
		p.logger.Info("form refused", "error", err, "path", c.FullPath())
		p.message(c, http.StatusForbidden, "Form expired or sent from elsewhere",
			"For your safety this form was not accepted: it was sent from another site, or the page was open too long. Start the sign-in from your application again.")
		return false
	}
	return true
}

// fail answers an error of the OTP commands as the claim page does.
func (p *page) fail(c *gin.Context, err error, pg string, again func(msg string) webpage.View) {
	var httpErr *commands.HTTPError
	switch {
	case errors.As(err, &httpErr) && httpErr.Status == http.StatusTooManyRequests:
		p.render(c, http.StatusTooManyRequests, webpage.PageRetry, webpage.View{
			Title: "Too many tries", Lead: []string{httpErr.Message}, RetryAfter: httpErr.RetryAfter,
			Links: []webpage.Link{{Text: "Back to the sign-in page", Href: p.path(c, "")}},
		})
	case errors.As(err, &httpErr) && httpErr.Code == "OTP_INVALID":
		msg := "The code is not correct."
		if left, ok := httpErr.Details["attemptsLeft"].(int); ok {
			msg += fmt.Sprintf(" %d tries left.", left)
		}
		p.render(c, http.StatusUnprocessableEntity, pg, again(msg))
	case errors.As(err, &httpErr) && httpErr.Code == "OTP_EXPIRED":
		p.pages.ClearState(c.Writer, stateName)
		p.render(c, http.StatusUnprocessableEntity, webpage.PageMessage, webpage.View{
			Title: "Code expired", Alert: "There is no open code for this address any more: it expired or was already used.",
			Links: []webpage.Link{{Text: "Get a new code", Href: p.path(c, "")}},
		})
	case errors.As(err, &httpErr) && httpErr.Status < 500:
		p.render(c, httpErr.Status, pg, again(httpErr.Message))
	case errors.Is(err, commands.ErrSignupDisabled):
		p.message(c, http.StatusForbidden, "No account for this address",
			"This server does not create accounts on sign-in, and this address has none.")
	default:
		p.logger.Error("oauth sign-in page failed", "error", err, "path", c.FullPath(),
			"request_id", events.MetadataFrom(c.Request.Context()).RequestID)
		p.message(c, http.StatusInternalServerError, "Something went wrong", "Something went wrong on our side. It is safe to try again.")
	}
}

// path is a step's URL with the authorization request's query; step "" is the start.
func (p *page) path(c *gin.Context, step string) string {
	u := "/oauth/authorize"
	if step != "" {
		u += "/" + step
	}
	return u + "?" + c.Request.URL.RawQuery
}

func (p *page) emailView(c *gin.Context, cl *client, email, errMsg string) webpage.View {
	v := webpage.View{
		Title:  "Sign in to Litehost",
		Lead:   []string{clientName(cl) + " asks to use your Litehost account. Sign in with your e-mail address; we send you a code."},
		Facts:  []webpage.Fact{{Term: "Application", Value: clientName(cl)}, {Term: "Returns to", Value: redirectHost(cl)}},
		Action: p.path(c, "email"), Submit: "Send me a code",
		Values: map[string]string{"email": email},
	}
	if errMsg != "" {
		v.Errors = map[string]string{"email": errMsg}
	}
	return v
}

func (p *page) codeView(c *gin.Context, lead, errMsg string) webpage.View {
	v := webpage.View{
		Title: "Enter your code", Lead: []string{lead},
		Action: p.path(c, "code"), Submit: "Sign in",
		Links: []webpage.Link{{Text: "Use another e-mail address", Href: p.path(c, "")}},
	}
	if errMsg != "" {
		v.Errors = map[string]string{"code": errMsg}
	}
	return v
}

func (p *page) consentView(c *gin.Context, cl *client, email string) webpage.View {
	ar, _, _ := p.srv.authorizeRequest(c.Request.Context(), c.Request)
	var targets []string
	if ar != nil && ar.GetRedirectURI() != nil {
		u := ar.GetRedirectURI()
		targets = []string{u.Scheme + "://" + u.Host}
	}
	return webpage.View{
		Title: "Allow " + clientName(cl) + " to manage your Litehost projects",
		Lead: []string{
			"Signed in as " + email + ".",
			clientName(cl) + " will be able to publish, change, archive and delete your projects, as with an API key. You can revoke its access at any time.",
		},
		Facts:  []webpage.Fact{{Term: "Application", Value: clientName(cl)}, {Term: "Returns to", Value: redirectHost(cl)}},
		Action: p.path(c, "consent"), Submit: "Allow",
		// The allow and deny answers are redirects to the client: the form may go there.
		FormTargets: targets,
	}
}

func clientName(cl *client) string {
	if cl == nil || cl.name == "" {
		return "An unnamed application"
	}
	return cl.name
}

func redirectHost(cl *client) string {
	if cl == nil || len(cl.RedirectURIs) == 0 {
		return ""
	}
	u, err := url.Parse(cl.RedirectURIs[0])
	if err != nil {
		return ""
	}
	return u.Host
}

// state returns the flow's state cookie if it belongs to this authorization request.
func (p *page) state(c *gin.Context) (url.Values, bool) {
	raw, ok := p.pages.State(c.Request, stateName)
	if !ok {
		return nil, false
	}
	vals, err := url.ParseQuery(raw)
	if err != nil || !hmac.Equal([]byte(vals.Get("ref")), []byte(p.ref(c))) {
		return nil, false
	}
	return vals, true
}

// ref binds the state cookie to one authorization request (its query).
func (p *page) ref(c *gin.Context) string {
	m := hmac.New(sha256.New, p.stateKey)
	m.Write([]byte("oauth-page-ref\x00" + c.Request.URL.RawQuery))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16])
}

func (p *page) message(c *gin.Context, status int, title, text string) {
	p.render(c, status, webpage.PageMessage, webpage.View{Title: title, Lead: []string{text}})
}

func (p *page) render(c *gin.Context, status int, pg string, v webpage.View) {
	if err := p.pages.Render(c.Writer, c.Request, status, pg, v); err != nil {
		p.logger.Error("render oauth page", "error", err, "path", c.FullPath())
	}
	c.Abort()
}

// clientIP is the address the per-client limits count, as the API resolves it.
func clientIP(c *gin.Context) string {
	if ip := events.MetadataFrom(c.Request.Context()).ClientIP; ip != "" {
		return ip
	}
	return c.ClientIP()
}
