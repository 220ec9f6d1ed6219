// Package projectsupload connects the project write routes to the upload pipeline: it parses a
// multipart request with commands/upload (streamed, every limit of DESIGN §7, ZIP detection of
// spec §3) and stores the result in the blob store. It is its own package because
// commands/upload imports commands, so commands cannot import it.
package projectsupload

import (
	"errors"

	"github.com/gin-gonic/gin"

	"github.com/litehost/litehost/commands"
	"github.com/litehost/litehost/commands/upload"
	"github.com/litehost/litehost/events/blobs"
)

// Receiver implements commands.Receiver over the upload package and a blob store.
type Receiver struct {
	blobs *blobs.Store
	lim   upload.Limits
	temp  upload.Limits
}

var _ commands.Receiver = (*Receiver)(nil)

// New returns a Receiver storing into bs with the default and temporary limits.
func New(bs *blobs.Store) *Receiver {
	return &Receiver{blobs: bs, lim: upload.DefaultLimits(), temp: upload.TempLimits()}
}

// WithMaxRequestBytes returns r with the largest accepted upload (LITEHOST_MAX_UPLOAD_MB) set
// to n bytes: the request, one file and all files together. Temporary uploads keep their own
// 2 MB bound.
func (r *Receiver) WithMaxRequestBytes(n int64) *Receiver {
	out := *r
	out.lim.MaxRequestBytes, out.lim.MaxFileBytes, out.lim.MaxTotalFileBytes = n, n, n
	return &out
}

// Receive parses and stores the request's upload. The fields map holds only the fields the
// request carried, so a sent-but-empty password differs from none.
func (r *Receiver) Receive(c *gin.Context, temp bool) (up commands.Upload, fields map[string]string, err error) {
	lim := r.lim
	if temp {
		lim = r.temp
	}
	ctx := c.Request.Context()
	u, err := upload.ParseRequest(ctx, c.Request, lim, r.blobs.TempDir())
	if err != nil {
		return commands.Upload{}, nil, err
	}
	defer func() { err = errors.Join(err, u.Cleanup()) }()
	b, err := upload.Build(ctx, u, r.blobs)
	if err != nil {
		return commands.Upload{}, nil, err
	}
	f := u.Fields
	fields = map[string]string{}
	for name, v := range map[string]string{
		upload.FieldTitle: f.Title, upload.FieldSlug: f.Slug, upload.FieldDomainID: f.DomainID,
		upload.FieldWorkspaceID: f.WorkspaceID, upload.FieldAccess: f.Access, upload.FieldPassword: f.Password,
		upload.FieldExpiresIn: f.ExpiresIn,
	} {
		if f.Present[name] {
			fields[name] = v
		}
	}
	return commands.Upload{ManifestHash: b.ManifestHash, Type: b.Type, IndexPath: b.IndexPath,
		FileCount: b.FileCount, SizeBytes: b.TotalBytes}, fields, nil
}
