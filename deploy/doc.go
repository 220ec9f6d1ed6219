// Package deploy holds the deployment files that are not Go (the Caddyfile of the compose
// `cluster` profile) and the tests that check them, with docker-compose.yml and the Dockerfile at
// the repository root, statically: no container engine runs in CI.
package deploy
