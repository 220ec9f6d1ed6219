#!/usr/bin/env bash
# Runs the DESIGN §13 benchmarks (cmd/litehost/bench_test.go) with benchstat-friendly output.
#
#   bash bench/run.sh                      # -benchtime 3s, -count 3, output also saved in bench/out/
#   BENCHTIME=2x COUNT=1 bash bench/run.sh # smoke run (seconds)
#   BENCH=BenchmarkAPI/read PKGS=./cmd/litehost/ bash bench/run.sh
#
# Besides cmd/litehost (API vs bare Gin+pgx, 32 vs 4 writers, projection lag) it runs the two
# §13 benchmarks that live with their packages: events/pgstore BenchmarkAppend (Store.Append vs
# a plain INSERT of the same bytes) and projections BenchmarkRebuild (rebuild vs COPY).
#
# Needs the local PostgreSQL (LITEHOST_TEST_DATABASE_URL, default postgres@127.0.0.1:5432); each
# benchmark function creates and drops its own database. Compare two saved runs with
#   go run golang.org/x/perf/cmd/benchstat@<version> old.txt new.txt
# (benchstat is not a module dependency of this repo).
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH=${BENCH:-.}
BENCHTIME=${BENCHTIME:-3s}
COUNT=${COUNT:-3}
PKGS=${PKGS:-./cmd/litehost/ ./events/pgstore/ ./projections/}
mkdir -p bench/out
out=bench/out/$(date -u +%Y%m%dT%H%M%SZ).txt
# -run '^$' runs no tests; -timeout leaves room for setup (sign-ins, uploads) of every repetition.
go test -run '^$' -bench "$BENCH" -benchtime "$BENCHTIME" -count "$COUNT" -timeout 30m $PKGS | tee "$out"
echo "saved to $out" >&2
