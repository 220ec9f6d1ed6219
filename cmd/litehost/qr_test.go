package main

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/makiuchi-d/gozxing"
	gozxingqr "github.com/makiuchi-d/gozxing/qrcode"
)

// decodeQR reads a QR code image back to its text with an independent decoder (ZXing's port).
func decodeQR(t *testing.T, img image.Image) string {
	t.Helper()
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatalf("bitmap: %v", err)
	}
	res, err := gozxingqr.NewQRCodeReader().Decode(bmp, nil)
	if err != nil {
		t.Fatalf("decode QR: %v", err)
	}
	return res.GetText()
}

var svgRun = regexp.MustCompile(`M(\d+) (\d+)h(\d+)v1h-(\d+)z`)

// SVG answers are text; the contract check reads them like any file.
func init() { openapi3filter.RegisterBodyDecoder("image/svg+xml", openapi3filter.FileBodyDecoder) }

// rasterSVG draws the module runs of a QR SVG at 8 px a module, so the decoder reads the SVG
// exactly as a browser would show it.
func rasterSVG(t *testing.T, body []byte) image.Image {
	t.Helper()
	var doc struct {
		ViewBox string `xml:"viewBox,attr"`
		Path    struct {
			D string `xml:"d,attr"`
		} `xml:"path"`
	}
	if err := xml.Unmarshal(body, &doc); err != nil {
		t.Fatalf("SVG is not XML: %v\n%s", err, body)
	}
	var x0, y0, w, h int
	if _, err := fmt.Sscan(doc.ViewBox, &x0, &y0, &w, &h); err != nil || w == 0 || w != h {
		t.Fatalf("viewBox %q", doc.ViewBox)
	}
	const scale = 8
	img := image.NewGray(image.Rect(0, 0, w*scale, h*scale))
	for i := range img.Pix {
		img.Pix[i] = 0xff
	}
	runs := svgRun.FindAllStringSubmatch(doc.Path.D, -1)
	if len(runs) == 0 {
		t.Fatalf("no modules in the SVG path")
	}
	for _, m := range runs {
		x, _ := strconv.Atoi(m[1])
		y, _ := strconv.Atoi(m[2])
		n, _ := strconv.Atoi(m[3])
		for dy := 0; dy < scale; dy++ {
			for dx := 0; dx < n*scale; dx++ {
				img.SetGray(x*scale+dx, y*scale+dy, color.Gray{})
			}
		}
	}
	return img
}

func TestQRCodes(t *testing.T) {
	s, mb := startWithMail(t, "", nil)
	key := signIn(t, s, mb, "qr@example.com")["apiKey"].(string)
	r := s.doUpload(http.MethodPost, "/v1/projects", map[string]string{"title": "Poster"},
		[]upload{{"index.html", []byte("<p>poster</p>")}}, bearer(key))
	if r.status != http.StatusCreated {
		t.Fatalf("create = %d %s", r.status, r.body)
	}
	id := r.data(t)["projectId"].(string)
	url := s.do(http.MethodGet, "/v1/projects/"+id, nil, bearer(key)).data(t)["url"].(string)

	// A free owner: 403 with the message of the feature, for both formats, without a key.
	for _, f := range []string{".png", ".svg"} {
		r := s.do(http.MethodGet, "/qr/"+id+f, nil)
		if r.status != http.StatusForbidden || r.code(t) != "FEATURE_LOCKED" || r.json(t)["error"] != "QR codes need a paid plan." {
			t.Errorf("free owner %s = %d %s", f, r.status, r.body)
		}
	}

	if out, err := runCLI(t, s, "admin", "set-plan", "qr@example.com", "starter"); err != nil {
		t.Fatalf("set-plan: %v %s", err, out)
	}
	waitFor(t, func() bool { return s.do(http.MethodGet, "/qr/"+id+".png", nil).status == http.StatusOK })

	r = s.do(http.MethodGet, "/qr/"+id+".png", nil)
	if ct := r.header.Get("Content-Type"); ct != "image/png" {
		t.Errorf("content type %q", ct)
	}
	if cc := r.header.Get("Cache-Control"); cc != "public, max-age=300" {
		t.Errorf("Cache-Control %q", cc)
	}
	img, err := png.Decode(bytes.NewReader(r.body))
	if err != nil {
		t.Fatalf("PNG: %v", err)
	}
	if got := decodeQR(t, img); got != url {
		t.Errorf("PNG decodes to %q, want the project url %q", got, url)
	}

	r = s.do(http.MethodGet, "/qr/"+id+".svg", nil)
	if r.status != http.StatusOK || r.header.Get("Content-Type") != "image/svg+xml" {
		t.Fatalf("svg = %d %s", r.status, r.header.Get("Content-Type"))
	}
	if got := decodeQR(t, rasterSVG(t, r.body)); got != url {
		t.Errorf("SVG decodes to %q, want %q", got, url)
	}

	// Not served, not found: another format, a malformed or unknown id, an archived project.
	for _, path := range []string{"/qr/" + id + ".gif", "/qr/" + id, "/qr/not-a-uuid.png", "/qr/00000000-0000-4000-8000-000000000000.png"} {
		if r := s.do(http.MethodGet, path, nil, malformed()); r.status != http.StatusNotFound {
			t.Errorf("%s = %d %s", path, r.status, r.body)
		}
	}
	if r := s.do(http.MethodPost, "/v1/projects/"+id+"/archive", nil, bearer(key)); r.status != http.StatusOK {
		t.Fatalf("archive = %d %s", r.status, r.body)
	}
	if r := s.do(http.MethodGet, "/qr/"+id+".png", nil); r.status != http.StatusNotFound {
		t.Errorf("archived project = %d %s", r.status, r.body)
	}

	// A temporary project has no owner yet (403), and once it has expired it is not found (404).
	r = s.doUpload(http.MethodPost, "/v1/projects/temp", nil, []upload{{"index.html", []byte("<p>temp</p>")}})
	if r.status != http.StatusOK {
		t.Fatalf("temp = %d %s", r.status, r.body)
	}
	temp := r.data(t)["projectId"].(string)
	if r := s.do(http.MethodGet, "/qr/"+temp+".svg", nil); r.status != http.StatusForbidden {
		t.Errorf("unclaimed temporary project = %d %s", r.status, r.body)
	}
	s.advance(16 * time.Minute)
	if r := s.do(http.MethodGet, "/qr/"+temp+".svg", nil); r.status != http.StatusNotFound {
		t.Errorf("expired temporary project = %d %s", r.status, r.body)
	}
}
