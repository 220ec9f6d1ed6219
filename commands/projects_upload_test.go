package commands_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/litehost/litehost/commands"
	"github.com/litehost/litehost/domain/project"
	"github.com/litehost/litehost/domain/slug"
	"github.com/litehost/litehost/events"
)

// blobSnapshot maps every file under the blob store (blobs, manifests, spool leftovers) to the
// sha256 of its bytes.
func (e *projEnv) blobSnapshot(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(e.blobs.Dir(), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		out[p] = hex.EncodeToString(sum[:])
		return nil
	})
	if err != nil {
		t.Fatalf("walk blob store: %v", err)
	}
	return out
}

// eventCount is the number of events in the whole log.
func (e *projEnv) eventCount(t *testing.T) int {
	t.Helper()
	recs, err := e.store.ReadAll(t.Context(), events.Start, 100_000)
	if err != nil {
		t.Fatalf("read log: %v", err)
	}
	return len(recs)
}

func manyFiles(n int) []upFile {
	files := make([]upFile, n)
	for i := range files {
		files[i] = upFile{fmt.Sprintf("f%03d.txt", i), fmt.Sprintf("file %d", i)}
	}
	return files
}

// TestRejectedProjectUploadsStoreNothing: a project write refused for its fields, its plan, its
// quota or its slug leaves the blob store byte-for-byte as it was and appends no event; an
// accepted one stores its files.
func TestRejectedProjectUploadsStoreNothing(t *testing.T) {
	e := newProjEnv(t)
	starter, free := e.account(t, "starter"), e.account(t, "free")
	r := e.upload(t, "POST", "/v1/projects", starter, map[string]string{"title": "Base", "slug": "taken"}, siteFiles)
	r.want(t, 201, "")
	starterID := r.data()["projectId"].(string)
	r = e.upload(t, "POST", "/v1/projects", free, map[string]string{"title": "Free"}, siteFiles)
	r.want(t, 201, "")
	freeID := r.data()["projectId"].(string)

	fresh := []upFile{{"index.html", "<h1>never stored</h1>"}, {"app.js", "console.log('never')"}}
	cases := []struct {
		name, method, path, account string
		fields                      map[string]string
		files                       []upFile
		status                      int
		code                        string
	}{
		{"bad slug", "POST", "/v1/projects", starter, map[string]string{"title": "X", "slug": "Bad_Slug"}, fresh, 422, "VALIDATION_FAILED"},
		{"reserved slug", "POST", "/v1/projects", starter, map[string]string{"title": "X", "slug": "admin"}, fresh, 422, "VALIDATION_FAILED"},
		{"password access without password", "POST", "/v1/projects", starter, map[string]string{"title": "X", "access": "password"}, fresh, 422, "VALIDATION_FAILED"},
		{"bad expiresIn", "POST", "/v1/projects", starter, map[string]string{"title": "X", "expiresIn": "3d"}, fresh, 422, "VALIDATION_FAILED"},
		{"taken slug", "POST", "/v1/projects", starter, map[string]string{"title": "X", "slug": "taken"}, fresh, 409, "SLUG_TAKEN"},
		{"free-tier push", "PUT", "/v1/projects/" + freeID, free, nil, fresh, 403, "FREE_TIER_RESTRICTED"},
		{"over file quota create", "POST", "/v1/projects", free, map[string]string{"title": "Many"}, manyFiles(51), 403, "FILE_LIMIT_REACHED"},
		{"over file quota push", "PUT", "/v1/projects/" + starterID, starter, nil, manyFiles(201), 403, "FILE_LIMIT_REACHED"},
		{"temporary over its limits", "POST", "/v1/projects/temp", "", nil, manyFiles(6), 0, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			blobsBefore, eventsBefore := e.blobSnapshot(t), e.eventCount(t)
			// Contents unique to the case: blobs are content-addressed, so a file an earlier case
			// stored would not show up again.
			files := make([]upFile, len(tc.files))
			for i, f := range tc.files {
				files[i] = upFile{f.name, f.body + " " + tc.name}
			}
			r := e.upload(t, tc.method, tc.path, tc.account, tc.fields, files, "X-Test-IP", "203.0.113.7")
			if tc.status == 0 {
				if r.Status < 400 {
					t.Fatalf("status = %d, want a refusal; body %v", r.Status, r.Body)
				}
			} else {
				r.want(t, tc.status, tc.code)
			}
			if after := e.blobSnapshot(t); !maps.Equal(after, blobsBefore) {
				t.Errorf("blob store changed: %d files before, %d after", len(blobsBefore), len(after))
			}
			if n := e.eventCount(t); n != eventsBefore {
				t.Errorf("%d events appended", n-eventsBefore)
			}
		})
	}

	// The same files, accepted, are stored: the snapshot does see writes.
	before := e.blobSnapshot(t)
	e.upload(t, "POST", "/v1/projects", starter, map[string]string{"title": "Stored"}, fresh).want(t, 201, "")
	if after := e.blobSnapshot(t); len(after) != len(before)+3 { // two files and the manifest
		t.Errorf("accepted upload: %d files before, %d after, want +3", len(before), len(after))
	}
}

// TestProjectCommandsStoreUploadOnlyWhenAccepted calls the commands directly: Store runs only once
// every rule passed, and a failing Store refuses the write and frees the slug.
func TestProjectCommandsStoreUploadOnlyWhenAccepted(t *testing.T) {
	e := newProjEnv(t)
	ctx := t.Context()
	acc := e.account(t, "free")
	stored := 0
	up := func(size int64, fail error) commands.Upload {
		return commands.Upload{ManifestHash: strings.Repeat("b", 64), Type: "files", FileCount: 1, SizeBytes: size,
			Store: func(context.Context) error { stored++; return fail }}
	}
	if _, err := e.projects.Create(ctx, uuid.New(), acc, commands.CreateInput{Title: "Big", Upload: up(50<<20+1, nil)}); !errors.Is(err, project.ErrStorageLimit) {
		t.Fatalf("over-quota create = %v, want %v", err, project.ErrStorageLimit)
	}
	if stored != 0 {
		t.Fatalf("an over-quota create stored its upload")
	}

	broken := errors.New("disk full")
	if _, err := e.projects.Create(ctx, uuid.New(), acc, commands.CreateInput{Title: "X", Slug: "kept", Upload: up(10, broken)}); !errors.Is(err, broken) {
		t.Fatalf("create with a failing store = %v, want %v", err, broken)
	}
	if _, err := e.projects.CreateTemp(ctx, uuid.New(), up(10, broken)); !errors.Is(err, broken) {
		t.Fatalf("temp create with a failing store = %v, want %v", err, broken)
	}
	res, err := e.projects.Create(ctx, uuid.New(), acc, commands.CreateInput{Title: "X", Slug: "kept", Upload: up(10, nil)})
	if err != nil {
		t.Fatalf("create after a failed store (the slug must be free again): %v", err)
	}
	if stored != 3 || res.Settings.Slug != "kept" {
		t.Errorf("stored %d times, slug %q; want 3 and kept", stored, res.Settings.Slug)
	}
	if _, err := e.projects.Push(ctx, uuid.New(), acc, res.ProjectID, up(10, nil)); !errors.Is(err, project.ErrFreeTier) || stored != 3 {
		t.Errorf("free-tier push = %v, stored %d times; want %v and 3", err, stored, project.ErrFreeTier)
	}
	if s, err := commands.Load(ctx, e.store, slug.Stream("kept")); err != nil || len(s.Events) != 3 {
		t.Errorf("slug-kept holds %d events (%v), want reserve, release, reserve", len(s.Events), err)
	}
}
