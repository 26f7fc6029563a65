#!/bin/sh
# Builds the guest test components under tests/guests into
# $TRACE_GUEST_TARGET (default: `guests` under $CARGO_TARGET_DIR, or under the
# repository's `target`)/wasm32-wasip2/release/.
# The integration tests run this when a component is missing or older than
# its sources.
set -eu
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo/host/tests/guests"
exec cargo build --release --target wasm32-wasip2 \
  --target-dir "${TRACE_GUEST_TARGET:-${CARGO_TARGET_DIR:-$repo/target}/guests}" "$@"
