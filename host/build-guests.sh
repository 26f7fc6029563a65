#!/bin/sh
# Builds the guest test components under tests/guests into
# $TRACE_GUEST_TARGET (default /work/target-wasm)/wasm32-wasip2/release/.
# The integration tests run this when a component is missing or older than
# its sources.
set -eu
cd "$(dirname "$0")/tests/guests"
exec cargo build --release --target wasm32-wasip2 \
  --target-dir "${TRACE_GUEST_TARGET:-/work/target-wasm}" "$@"
