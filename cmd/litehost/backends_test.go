package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestAPISuiteOnEventStoreDB runs this package's whole API suite again with the events in
// EventStoreDB (the in-repo emulator, spoken to by the official client over gRPC), read models
// still in PostgreSQL. It re-executes the test binary so every test runs unchanged.
func TestAPISuiteOnEventStoreDB(t *testing.T) {
	if os.Getenv("LITEHOST_TEST_EVENT_STORE") != "" {
		return // already the inner run
	}
	if testing.Short() {
		t.Skip("-short: the second backend run is skipped")
	}
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run", "^Test", "-test.skip", "^TestAPISuiteOnEventStoreDB$", "-test.count=1")
	cmd.Env = append(os.Environ(), "LITEHOST_TEST_EVENT_STORE=esdb")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("API suite on EventStoreDB failed: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "PASS") {
		t.Fatalf("API suite on EventStoreDB ran nothing:\n%s", out)
	}
	t.Logf("API suite on EventStoreDB:\n%s", lastLines(string(out), 5))
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
