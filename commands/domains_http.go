package commands

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/litehost/litehost/domain"
	"github.com/litehost/litehost/domain/customdomain"
)

// DomainRoutes are our write routes for custom domains (beyond spec §4.5, which only lists them):
// POST /v1/domains, POST /v1/domains/{id}/verify, DELETE /v1/domains/{id}.
type DomainRoutes struct {
	d      *Domains
	waiter Waiter
}

// NewDomainRoutes returns the domain write routes.
func NewDomainRoutes(d *Domains, waiter Waiter) *DomainRoutes {
	return &DomainRoutes{d: d, waiter: waiter}
}

// Register mounts the routes on g (the /v1 group), each behind require.
func (r *DomainRoutes) Register(g gin.IRoutes, require gin.HandlerFunc) {
	g.POST("/domains", require, r.add)
	g.POST("/domains/:id/verify", require, r.verify)
	g.DELETE("/domains/:id", require, r.remove)
}

// verificationRecord is the DNS record that proves control of a domain.
func verificationRecord(res DomainResult) gin.H {
	return gin.H{"type": "TXT", "name": customdomain.ChallengeName(res.Hostname),
		"value": customdomain.ChallengeValue(res.ChallengeToken)}
}

// domainBody is spec §5.3 plus the verification record.
func domainBody(res DomainResult, projectCount int) gin.H {
	return gin.H{"id": res.ID, "domain": res.Hostname, "status": res.Status, "verifiedAt": tsPtr(res.VerifiedAt),
		"projectCount": projectCount, "createdAt": ts(res.CreatedAt), "verification": verificationRecord(res)}
}

// domainFail renders a failed verification with the record to create; other errors go to fail.
func domainFail(c *gin.Context, err error, rec gin.H) {
	if errors.Is(err, customdomain.ErrVerificationFailed) {
		err = &HTTPError{Status: http.StatusUnprocessableEntity, Code: "DOMAIN_VERIFICATION_FAILED",
			Message: string(customdomain.ErrVerificationFailed) + "; create it and try again (DNS changes can take a while to propagate)",
			Details: map[string]any{"record": rec}}
	}
	fail(c, err)
}

func (r *DomainRoutes) add(c *gin.Context) {
	accountID, c, ok := caller(c)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	if err := requirePaid(ctx, r.d.store, accountID); err != nil {
		fail(c, err)
		return
	}
	host, err := hostBody(c)
	if err != nil {
		fail(c, err)
		return
	}
	res, err := r.d.Add(ctx, CommandIDFrom(ctx), accountID, host)
	if err != nil {
		fail(c, err)
		return
	}
	Reply(c, r.waiter, res.Position, http.StatusCreated, domainBody(res, 0))
}

// hostBody reads {"domain": "..."}: not a JSON object is 400, a missing or non-string domain
// 422. The host name itself is judged by Domains.Add.
func hostBody(c *gin.Context) (string, error) {
	var raw map[string]json.RawMessage
	if err := decodeJSON(c, &raw); err != nil {
		return "", err
	}
	var host *string
	if v, ok := raw["domain"]; !ok {
		return "", domain.Invalid{"domain": "is required"}
	} else if err := json.Unmarshal(v, &host); err != nil || host == nil {
		return "", domain.Invalid{"domain": "must be a string"}
	}
	return *host, nil
}

func (r *DomainRoutes) verify(c *gin.Context) {
	accountID, c, ok := caller(c)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	id := c.Param("id")
	res, err := r.d.Verify(ctx, CommandIDFrom(ctx), accountID, id)
	if err != nil {
		var rec gin.H
		if errors.Is(err, customdomain.ErrVerificationFailed) {
			if cur, lerr := r.d.result(ctx, id, res.Position); lerr == nil {
				rec = verificationRecord(cur)
			}
		}
		domainFail(c, err, rec)
		return
	}
	n, err := r.d.counts.DomainProjectCount(ctx, res.ID)
	if err != nil {
		fail(c, err)
		return
	}
	Reply(c, r.waiter, res.Position, http.StatusOK, domainBody(res, n))
}

func (r *DomainRoutes) remove(c *gin.Context) {
	accountID, c, ok := caller(c)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	pos, err := r.d.Remove(ctx, CommandIDFrom(ctx), accountID, c.Param("id"))
	if err != nil {
		fail(c, err)
		return
	}
	Reply(c, r.waiter, pos, http.StatusOK, gin.H{"deleted": true})
}
