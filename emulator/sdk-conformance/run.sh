#!/usr/bin/env bash
# Drives adf-emulator with Microsoft's Python SDKs (azure-identity, azure-mgmt-datafactory,
# azure-keyvault-secrets; versions pinned in requirements.txt, installed from PyPI into a venv under
# target/). Builds and starts the emulator on the demo seed with small pages, runs the suite, stops it.
# Usage: emulator/sdk-conformance/run.sh [pytest args...]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
venv="$target/sdk-venv"
work="$target/sdk-conformance"
mkdir -p "$work"

python="${PYTHON:-python3}"
stamp="$venv/.requirements"
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
if ! cmp -s "$here/requirements.txt" "$stamp"; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
  cp "$here/requirements.txt" "$stamp"
fi

cargo build --quiet --locked -p adf-emulator --bin adf-emulator
emulator_bin="$target/debug/adf-emulator"

ready="$work/ready.json"
rm -f "$ready"
"$emulator_bin" --seed demo --page-size 2 --kv-page-size 1 \
  --ca-out "$work/ca.pem" --ready-file "$ready" >"$work/emulator.out" 2>"$work/emulator.log" &
emulator_pid=$!
cleanup() {
  kill "$emulator_pid" 2>/dev/null || true
  wait "$emulator_pid" 2>/dev/null || true
}
trap cleanup EXIT

for _ in $(seq 1 100); do
  [ -s "$ready" ] && break
  if ! kill -0 "$emulator_pid" 2>/dev/null; then
    echo "adf-emulator exited before it was ready:" >&2
    cat "$work/emulator.log" >&2
    exit 1
  fi
  sleep 0.1
done
[ -s "$ready" ] || { echo "adf-emulator did not become ready" >&2; exit 1; }

export ADF_EMULATOR_READY="$ready"
export PYTHONDONTWRITEBYTECODE=1
# The SDKs' HTTP transport (requests) trusts the emulator's throwaway CA through these.
export REQUESTS_CA_BUNDLE="$work/ca.pem"
export SSL_CERT_FILE="$work/ca.pem"
# No real Azure settings may leak in from the caller's shell.
unset AZURE_CLIENT_ID AZURE_TENANT_ID AZURE_CLIENT_SECRET AZURE_AUTHORITY_HOST MSI_ENDPOINT MSI_SECRET \
  IDENTITY_SERVER_THUMBPRINT IMDS_ENDPOINT || true

cd "$here"
"$venv/bin/python" -m pytest -p no:cacheprovider -q "$@"
