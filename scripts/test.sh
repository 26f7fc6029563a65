#!/usr/bin/env bash
# The whole check a change must pass: formatting, clippy with warnings
# denied, the example UDFs built for wasm32-wasip2, then every test of the
# workspace. Stops the shared test Postgres cluster at the end, pass or fail.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

PG_DIR=${TRACE_TEST_PG_DIR:-${TMPDIR:-/tmp}/trace-test-pg}
# The cluster runs as the `postgres` user when the tests run as root (initdb
# refuses root), so it is stopped as that user too.
stop_test_postgres() {
  [ -f "$PG_DIR/data/postmaster.pid" ] || return 0
  local pg_ctl as=()
  pg_ctl=$(command -v pg_ctl || ls -d /usr/lib/postgresql/*/bin/pg_ctl 2>/dev/null | sort | tail -n1)
  [ "$(id -u)" = 0 ] && as=(runuser -u postgres --)
  "${as[@]}" "$pg_ctl" -D "$PG_DIR/data" -m fast stop >/dev/null 2>&1 || true
  # Every test makes its own databases (about 16 MB a test, 5 GB a run);
  # the cluster is made again by the next run.
  rm -rf "$PG_DIR"
}
trap stop_test_postgres EXIT

step "Formatting"
cargo fmt --all -- --check

step "Clippy"
cargo clippy --workspace --all-targets -- -D warnings

step "Deployment manifests"
deploy/lint.sh

step "Example UDFs (wasm32-wasip2)"
(cd examples/udfs && cargo build --release --target wasm32-wasip2)

# The process end-to-end tests run the service binaries. `cargo test` builds
# them (each service has integration tests) with the features the tests
# unify, so this is the build the test step reuses; a separate
# `cargo build --bins` would resolve features without the dev-dependencies
# and build wasmtime and every crate above it a second time. The cost: no
# step builds the binaries with production features alone (clippy
# --all-targets unifies the dev-dependencies' features too).
step "Service binaries and tests"
cargo test --workspace --no-run

step "Tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast
else
  cargo test --workspace --no-fail-fast
fi
