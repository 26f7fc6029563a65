# Shared by the scripts: the cargo target directory and output helpers.

# Reuse a target directory outside the clone when there is one: CARGO_TARGET_DIR
# if set, else ../target-cache beside the clone if it exists, else ./target.
if [ -z "${CARGO_TARGET_DIR:-}" ] && [ -d ../target-cache ]; then
  CARGO_TARGET_DIR=$(cd ../target-cache && pwd)
fi
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
TARGET_DIR=$CARGO_TARGET_DIR

step() { printf '\n==> %s\n' "$*"; }
fail() { printf 'error: %s\n' "$*" >&2; exit 1; }
