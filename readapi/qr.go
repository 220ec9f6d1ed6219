package readapi

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/yeqown/go-qrcode/v2"
	"github.com/yeqown/go-qrcode/writer/standard"
)

// Rules of the QR codes (GET /qr/{projectId}.png and .svg):
//   - no key: a QR code only shows a link that is public anyway, and it is printed on posters;
//   - it encodes the project's public address, the same url GET /v1/projects/{id} reports;
//   - a project whose owner is on the free plan answers 403 (a paid feature); an unclaimed
//     temporary project has no owner and counts as free;
//   - an unknown, archived or expired project answers 404, like a site that is not served.

// ErrFeatureLocked is a paid feature asked for by (or on behalf of) a free account. Unlike
// ErrFreeTier it names the feature, because the caller may not be the owner (a QR code has no
// key); the error middleware renders it as 403 FEATURE_LOCKED with its message.
type ErrFeatureLocked struct {
	Message string
}

func (e ErrFeatureLocked) Error() string { return e.Message }

// qrCacheFor is how long a QR answer may be cached: short, because archiving or a plan change
// must take the code down soon, and the image is cheap to make again.
const qrCacheFor = 5 * time.Minute

// QRCodes serves the QR code of a project's public address.
type QRCodes struct {
	pool      *pgxpool.Pool
	siteURL   func(slug string) string
	domainURL func(slug, hostname string) string
	now       func() time.Time
}

// NewQRCodes returns the QR handler; siteURL and domainURL render a project's address the way
// the project reads do (domainURL for a project on a custom domain); now judges expiry before
// the expiry process manager has recorded it.
func NewQRCodes(pool *pgxpool.Pool, siteURL func(slug string) string, domainURL func(slug, hostname string) string, now func() time.Time) *QRCodes {
	return &QRCodes{pool: pool, siteURL: siteURL, domainURL: domainURL, now: now}
}

// Register adds GET /qr/:file to r (the engine's root): file is "<projectId>.png" or ".svg".
func (q *QRCodes) Register(r gin.IRoutes) {
	r.GET("/qr/:file", q.get)
}

// qrQuery finds a served project and whether its owner pays; archived and expired projects are
// not served, so they are not found.
const qrQuery = `SELECT p.slug, d.hostname AS domain_host, COALESCE(a.plan <> 'free', false) AS paid
	FROM projects p
	LEFT JOIN accounts a ON a.id = p.owner_id
	LEFT JOIN custom_domains d ON d.id = p.domain_id
	WHERE p.id = $1 AND p.archived_at IS NULL AND p.expired_at IS NULL
	  AND (p.expires_at IS NULL OR p.expires_at > $2)`

type qrRow struct {
	Slug       string
	DomainHost *string
	Paid       bool
}

func (q *QRCodes) get(c *gin.Context) {
	name := c.Param("file")
	id, format, ok := strings.Cut(name, ".")
	if !ok || (format != "png" && format != "svg") {
		_ = c.Error(ErrNotFound)
		return
	}
	if uuid.Validate(id) != nil {
		_ = c.Error(ErrNotFound)
		return
	}
	row, err := queryOne[qrRow](c.Request.Context(), q.pool, "qr code", qrQuery, id, q.now())
	if err != nil {
		_ = c.Error(err)
		return
	}
	if !row.Paid {
		_ = c.Error(ErrFeatureLocked{Message: "QR codes need a paid plan."})
		return
	}
	target := q.siteURL(row.Slug)
	if row.DomainHost != nil && q.domainURL != nil {
		target = q.domainURL(row.Slug, *row.DomainHost)
	}
	body, ctype, err := encodeQR(target, format)
	if err != nil {
		_ = c.Error(fmt.Errorf("qr code of %s: %w", id, err))
		return
	}
	c.Header("Cache-Control", fmt.Sprintf("public, max-age=%d", int(qrCacheFor/time.Second)))
	c.Header("X-Content-Type-Options", "nosniff")
	c.Data(http.StatusOK, ctype, body)
}

// encodeQR renders text as a QR code (error correction M: a printed code survives some damage
// while staying small) in format "png" or "svg".
func encodeQR(text, format string) ([]byte, string, error) {
	code, err := qrcode.NewWith(text, qrcode.WithErrorCorrectionLevel(qrcode.ErrorCorrectionMedium))
	if err != nil {
		return nil, "", err
	}
	var buf bytes.Buffer
	if format == "svg" {
		if err := code.Save(&svgWriter{out: &buf}); err != nil {
			return nil, "", err
		}
		return buf.Bytes(), "image/svg+xml", nil
	}
	w := standard.NewWithWriter(nopCloser{&buf}, standard.WithBuiltinImageEncoder(standard.PNG_FORMAT),
		standard.WithQRWidth(8), standard.WithBorderWidth(32))
	if err := code.Save(w); err != nil {
		return nil, "", err
	}
	return buf.Bytes(), "image/png", nil
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// svgWriter is a qrcode.Writer that draws the matrix as one SVG path of module rectangles, with the
// four-module quiet zone the QR standard asks for; the viewBox lets it scale to any size.
type svgWriter struct {
	out io.Writer
}

const svgQuietZone = 4

func (w *svgWriter) Write(mat qrcode.Matrix) error {
	size := mat.Width() + 2*svgQuietZone
	// One rectangle per horizontal run of dark modules keeps the path short.
	var path strings.Builder
	runStart, runY := -1, -1
	flush := func(endX int) {
		if runStart >= 0 {
			fmt.Fprintf(&path, "M%d %dh%dv1h-%dz", runStart+svgQuietZone, runY+svgQuietZone, endX-runStart, endX-runStart)
			runStart = -1
		}
	}
	mat.Iterate(qrcode.IterDirection_ROW, func(x, y int, v qrcode.QRValue) {
		if y != runY {
			flush(mat.Width())
			runY = y
		}
		switch {
		case v.IsSet() && runStart < 0:
			runStart = x
		case !v.IsSet():
			flush(x)
		}
	})
	flush(mat.Width())
	_, err := fmt.Fprintf(w.out, `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" shape-rendering="crispEdges" role="img" aria-label="QR code">
<rect width="100%%" height="100%%" fill="#fff"/>
<path fill="#000" d="%s"/>
</svg>
`, size, size, path.String())
	return err
}

func (w *svgWriter) Close() error { return nil }
