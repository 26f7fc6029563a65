#!/usr/bin/env bash
# Installs what building and testing Trace needs beyond a Rust toolchain:
# the wasm32-wasip2 target, the PostgreSQL server binaries, cargo-nextest
# and moto (the local AWS emulator the AWS-mode tests run against).
# Idempotent: anything already present is left alone.
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

if have rustup && ! rustup target list --installed | grep -qx wasm32-wasip2; then
  echo "installing the wasm32-wasip2 target"
  rustup target add wasm32-wasip2
fi

postgres_present() {
  have initdb && return 0
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null
}
if ! postgres_present; then
  echo "installing the PostgreSQL server"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq postgresql
fi

if ! cargo nextest --version >/dev/null 2>&1; then
  echo "installing cargo-nextest"
  cargo install --locked cargo-nextest
fi

# moto's server mode from PyPI, in a virtualenv of its own; the tests find
# it there (or at $TRACE_MOTO_SERVER).
MOTO_DIR=${XDG_CACHE_HOME:-$HOME/.cache}/trace/moto
if [ -z "${TRACE_MOTO_SERVER:-}" ] && [ ! -x "$MOTO_DIR/bin/moto_server" ]; then
  echo "installing moto (the local AWS emulator) into $MOTO_DIR"
  python3 -m venv "$MOTO_DIR"
  "$MOTO_DIR/bin/pip" install --quiet 'moto[server]==5.2.5'
fi
