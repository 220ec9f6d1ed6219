package main

import (
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// loadCompose parses docker-compose.yml with compose-go, the loader Docker Compose itself uses:
// interpolation, merge keys, profiles and the consistency checks (depends_on targets, networks,
// volumes) run as `docker compose config` would run them.
func loadCompose(t *testing.T, profiles ...string) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{"../../docker-compose.yml"},
		cli.WithName("litehost"),
		cli.WithWorkingDirectory("../.."),
		// Only what the file requires: a missing LITEHOST_SECRET must stay an error (see below).
		cli.WithEnv([]string{"LITEHOST_SECRET=" + strings.Repeat("x", 64)}),
		cli.WithProfiles(profiles),
	)
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(t.Context())
	if err != nil {
		t.Fatalf("docker-compose.yml with profiles %v: %v", profiles, err)
	}
	return p
}

func names(p *types.Project) []string {
	out := p.ServiceNames()
	sort.Strings(out)
	return out
}

func TestComposeProfiles(t *testing.T) {
	if got, want := names(loadCompose(t)), []string{"eventstore", "litehost", "mail", "nats", "postgres"}; !slices.Equal(got, want) {
		t.Errorf("default services = %v, want %v", got, want)
	}
	all := loadCompose(t, "*")
	want := []string{"app1", "app2", "es1", "es2", "es3", "eventstore", "litehost", "mail", "nats", "postgres", "proxy", "seaweedfs"}
	if got := names(all); !slices.Equal(got, want) {
		t.Errorf("services with every profile = %v, want %v", got, want)
	}
	for _, name := range []string{"app1", "app2", "es1", "es2", "es3", "proxy", "seaweedfs"} {
		if s := all.Services[name]; !slices.Equal(s.Profiles, []string{"cluster"}) {
			t.Errorf("%s profiles = %v, want [cluster]", name, s.Profiles)
		}
	}
}

// The three nodes form one cluster: size 3, each seeded with the other two, and insecure only
// inside the compose network.
func TestComposeEventStoreCluster(t *testing.T) {
	p := loadCompose(t, "cluster")
	ips := map[string]string{}
	for _, n := range []string{"es1", "es2", "es3"} {
		ips[n] = env(p.Services[n], "EVENTSTORE_NODE_IP")
	}
	for _, n := range []string{"es1", "es2", "es3"} {
		s := p.Services[n]
		if env(s, "EVENTSTORE_CLUSTER_SIZE") != "3" || env(s, "EVENTSTORE_INSECURE") != "true" || env(s, "EVENTSTORE_ADVERTISE_HOST_TO_CLIENT_AS") != n {
			t.Errorf("%s environment = %v", n, s.Environment)
		}
		var want []string
		for _, other := range []string{"es1", "es2", "es3"} {
			if other != n {
				want = append(want, ips[other]+":2113")
			}
		}
		if got := env(s, "EVENTSTORE_GOSSIP_SEED"); got != strings.Join(want, ",") {
			t.Errorf("%s gossip seeds = %q, want %q", n, got, strings.Join(want, ","))
		}
		if net := s.Networks["cluster"]; net == nil || net.Ipv4Address != ips[n] {
			t.Errorf("%s is not at its advertised address %s on the cluster network", n, ips[n])
		}
		if !strings.HasPrefix(s.Image, "eventstore/eventstore:") {
			t.Errorf("%s image = %s", n, s.Image)
		}
	}
	if sw := p.Services["seaweedfs"]; sw.Image != "chrislusf/seaweedfs:3.80" || !slices.Contains(sw.Command, "-s3") {
		t.Errorf("seaweedfs = %s %v, want the pinned image with server -s3", sw.Image, sw.Command)
	}
}

// Every engine a service waits for has a healthcheck, and the instances wait for them healthy.
func TestComposeHealthchecks(t *testing.T) {
	p := loadCompose(t, "*")
	for _, n := range []string{"eventstore", "postgres", "es1", "es2", "es3", "seaweedfs", "proxy"} {
		if hc := p.Services[n].HealthCheck; hc == nil || len(hc.Test) == 0 || hc.Disable {
			t.Errorf("%s has no healthcheck", n)
		}
	}
	for name, s := range p.Services {
		for dep, d := range s.DependsOn {
			if d.Condition == types.ServiceConditionHealthy && p.Services[dep].HealthCheck == nil {
				t.Errorf("%s waits for %s to be healthy, which has no healthcheck", name, dep)
			}
		}
	}
	for _, app := range []string{"app1", "app2"} {
		for _, dep := range []string{"es1", "es2", "es3", "postgres", "seaweedfs"} {
			if p.Services[app].DependsOn[dep].Condition != types.ServiceConditionHealthy {
				t.Errorf("%s does not wait for %s to be healthy", app, dep)
			}
		}
	}
}

// The app services run the esdb adapter against the cluster, and name only variables the app
// reads: a misspelt name would be silently ignored by the server.
func TestComposeAppEnvironment(t *testing.T) {
	known := knownEnv(t)
	p := loadCompose(t, "*")
	for _, name := range []string{"litehost", "app1", "app2"} {
		s := p.Services[name]
		for k := range s.Environment {
			if !known[k] {
				t.Errorf("%s sets %s, which cmd/litehost/config.go does not read", name, k)
			}
		}
		if env(s, "LITEHOST_EVENT_STORE") != "esdb" {
			t.Errorf("%s: LITEHOST_EVENT_STORE = %q", name, env(s, "LITEHOST_EVENT_STORE"))
		}
	}
	for _, name := range []string{"app1", "app2"} {
		if u := env(p.Services[name], "LITEHOST_ESDB_URL"); !strings.HasPrefix(u, "esdb+discover://es1:2113,es2:2113,es3:2113?") {
			t.Errorf("%s: LITEHOST_ESDB_URL = %q, want discovery over the three nodes", name, u)
		}
	}
	// The secret has no default: without it compose refuses to start rather than run with none.
	opts, err := cli.NewProjectOptions([]string{"../../docker-compose.yml"}, cli.WithName("litehost"), cli.WithWorkingDirectory("../.."), cli.WithEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := opts.LoadProject(t.Context()); err == nil || !strings.Contains(err.Error(), "LITEHOST_SECRET") {
		t.Errorf("load without LITEHOST_SECRET: %v, want an error naming it", err)
	}
}

func env(s types.ServiceConfig, k string) string {
	if v := s.Environment[k]; v != nil {
		return *v
	}
	return ""
}

// knownEnv is every variable name cmd/litehost/config.go reads, taken from its string literals.
func knownEnv(t *testing.T) map[string]bool {
	t.Helper()
	src, err := os.ReadFile("config.go")
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, m := range regexp.MustCompile(`"((?:LITEHOST|LOG)_[A-Z0-9_]+)"`).FindAllStringSubmatch(string(src), -1) {
		known[m[1]] = true
	}
	if len(known) < 10 {
		t.Fatalf("found only %d variable names in config.go: the pattern no longer matches", len(known))
	}
	return known
}
