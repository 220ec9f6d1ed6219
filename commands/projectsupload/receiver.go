// Package projectsupload connects the project write routes to the upload pipeline: it parses a
// multipart request with commands/upload (streamed, every limit of DESIGN §7, ZIP detection of
// spec §3) and hands the project commands an upload they store in the blob store only once the
// write is accepted. It is its own package because
// commands/upload imports commands, so commands cannot import it.
package projectsupload

import (
	"context"
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

// MaxRequestBytes is the largest request body Receive accepts (temp: a temporary upload's): the
// route's body limit, applied before the body is fingerprinted or spooled.
func (r *Receiver) MaxRequestBytes(temp bool) int64 {
	if temp {
		return r.temp.MaxRequestBytes
	}
	return r.lim.MaxRequestBytes
}

// Receive parses the request's upload, checks every upload rule and spools its files (phase 1),
// storing nothing. The returned Upload's Store writes the files and the manifest (phase 2); the
// project commands call it only when the write is accepted. done removes the spool and must be
// called after the write, stored or not. The fields map holds only the fields the request
// carried, so a sent-but-empty password differs from none.
func (r *Receiver) Receive(c *gin.Context, temp bool) (up commands.Upload, fields map[string]string, done func() error, err error) {
	lim := r.lim
	if temp {
		lim = r.temp
	}
	ctx := c.Request.Context()
	u, err := upload.ParseRequest(ctx, c.Request, lim, r.blobs.TempDir())
	if err != nil {
		return commands.Upload{}, nil, nil, err
	}
	p, err := upload.Prepare(ctx, u)
	if err != nil {
		return commands.Upload{}, nil, nil, errors.Join(err, u.Cleanup())
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
	up = commands.Upload{ManifestHash: p.ManifestHash, Type: p.Type, IndexPath: p.IndexPath,
		FileCount: p.FileCount, SizeBytes: p.TotalBytes,
		Store: func(ctx context.Context) error {
			_, err := p.Commit(ctx, r.blobs)
			return err
		}}
	return up, fields, u.Cleanup, nil
}
