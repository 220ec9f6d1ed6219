package main

import (
	"os"
	"strings"
	"testing"
)

type instruction struct{ op, args string }

// stages reads the Dockerfile into its build stages (comments dropped, continuations joined).
// No Docker engine runs in CI, so the image is checked statically.
func stages(t *testing.T) [][]instruction {
	t.Helper()
	src, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var out [][]instruction
	var line string
	for _, raw := range strings.Split(string(src), "\n") {
		raw = strings.TrimSpace(raw)
		if raw == "" || strings.HasPrefix(raw, "#") {
			continue
		}
		line += raw
		if strings.HasSuffix(line, "\\") {
			line = strings.TrimSuffix(line, "\\") + " "
			continue
		}
		op, args, _ := strings.Cut(line, " ")
		line = ""
		in := instruction{strings.ToUpper(op), strings.TrimSpace(args)}
		if in.op == "FROM" {
			out = append(out, nil)
		}
		if len(out) == 0 {
			t.Fatalf("%s before FROM", in.op)
		}
		out[len(out)-1] = append(out[len(out)-1], in)
	}
	return out
}

// The runtime image runs as a non-root user and VOLUME /data comes after /data was created
// owned by that user: Docker seeds a new volume from the image directory, owner included, and
// a VOLUME nobody created is root-owned, so the server could not write its blobs.
func TestDockerfileDataVolumeOwnedByRuntimeUser(t *testing.T) {
	st := stages(t)
	final := st[len(st)-1]
	if !strings.HasSuffix(final[0].args, ":nonroot") {
		t.Errorf("runtime base = %s, want a nonroot distroless image", final[0].args)
	}
	idx := func(pred func(instruction) bool) int {
		for i, in := range final {
			if pred(in) {
				return i
			}
		}
		return -1
	}
	user := idx(func(in instruction) bool { return in.op == "USER" })
	volume := idx(func(in instruction) bool { return in.op == "VOLUME" && strings.Contains(in.args, "/data") })
	chown := idx(func(in instruction) bool {
		f := strings.Fields(in.args)
		return in.op == "COPY" && len(f) > 0 && f[len(f)-1] == "/data" && strings.Contains(in.args, "--chown=")
	})
	env := idx(func(in instruction) bool {
		return in.op == "ENV" && strings.ReplaceAll(in.args, " ", "=") == "LITEHOST_DATA_DIR=/data"
	})
	if user < 0 || volume < 0 || chown < 0 || env < 0 {
		t.Fatalf("final stage lacks USER (%d), VOLUME /data (%d), COPY --chown … /data (%d) or ENV LITEHOST_DATA_DIR=/data (%d)", user, volume, chown, env)
	}
	uid, _, _ := strings.Cut(final[user].args, ":")
	if uid == "0" || uid == "root" {
		t.Errorf("USER %s runs as root", final[user].args)
	}
	owner := ""
	for _, f := range strings.Fields(final[chown].args) {
		if v, ok := strings.CutPrefix(f, "--chown="); ok {
			owner, _, _ = strings.Cut(v, ":")
		}
	}
	if owner != uid {
		t.Errorf("/data is owned by %s, the server runs as %s", owner, uid)
	}
	if chown > volume {
		t.Errorf("/data is created after VOLUME /data: the volume would be root-owned")
	}
	// The copied directory must exist in the build stage.
	from := strings.Fields(final[chown].args)
	srcDir := from[len(from)-2]
	made := false
	for _, in := range st[0] {
		if in.op == "RUN" && strings.Contains(in.args, "mkdir") && strings.Contains(in.args, srcDir) {
			made = true
		}
	}
	if !made {
		t.Errorf("the build stage never creates %s, which the runtime stage copies to /data", srcDir)
	}
}
