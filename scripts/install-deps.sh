#!/usr/bin/env bash
# Installs what building and testing Trace needs beyond a Rust toolchain:
# the wasm32-wasip2 target, the PostgreSQL server binaries and cargo-nextest.
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
