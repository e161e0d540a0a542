#!/usr/bin/env bash
# Checks every `az` command and flag that scripts/*.sh run (or tell their user to run) against a real Azure
# CLI: the command must exist and each flag must appear in its `--help`. A renamed or removed flag then fails
# CI instead of a user's deploy. Nothing reaches Azure: only `az ... --help` runs.
#
# The Azure CLI is installed from PyPI, pinned below, into a venv under target/ (target/az-venv), once: the
# install takes minutes, so the venv is kept while its pinned version stays the same.
# Usage: scripts/az-cli-check.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
venv="$target/az-venv"
azure_cli_version="2.91.0"

python="${PYTHON:-python3}"
stamp="$venv/.azure-cli-version"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$azure_cli_version" ]; then
  echo "==> installing azure-cli $azure_cli_version from PyPI into $venv (a few minutes, once)"
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "azure-cli==$azure_cli_version"
  printf '%s\n' "$azure_cli_version" >"$stamp"
fi

# The CLI's own state (config, command index, logs) stays under target/, away from the user's ~/.azure.
export AZURE_CONFIG_DIR="$target/az-config"
export AZURE_CORE_COLLECT_TELEMETRY=false
export AZURE_CORE_NO_COLOR=true
export AZURE_EXTENSION_USE_DYNAMIC_INSTALL=no
mkdir -p "$AZURE_CONFIG_DIR"
"$python" "$root/scripts/az_cli_check.py" --az "$venv/bin/az" "$root"/scripts/*.sh
