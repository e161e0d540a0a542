#!/usr/bin/env bash
# Static security checks of infra/ with checkov (Bicep framework). Exits non-zero on any failed
# check, and on any Bicep file that checkov's parser cannot read: checkov skips such a file
# silently, which would turn a syntax error into a pass.
#
# checkov is installed from PyPI, pinned, into a virtualenv under target/ (gitignored), once.
# Usage: scripts/checkov.sh            (from anywhere)
# Env:   CHECKOV_VENV   where the virtualenv lives (default: <repo>/target/checkov-venv)
#        PYTHON         the interpreter that creates it (default: python3)
#
# Each accepted risk is skipped next to its resource, with a reason, as
#   // checkov:skip=CKV_AZURE_NN: why
set -euo pipefail

CHECKOV_VERSION="3.3.30"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
venv="${CHECKOV_VENV:-$repo_root/target/checkov-venv}"
python="${PYTHON:-python3}"

if [ ! -x "$venv/bin/checkov" ] || [ "$("$venv/bin/checkov" --version 2>/dev/null || true)" != "$CHECKOV_VERSION" ]; then
  echo "==> installing checkov $CHECKOV_VERSION into $venv"
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "checkov==$CHECKOV_VERSION"
fi

echo "==> parsing every Bicep file with checkov's parser (pycep)"
"$venv/bin/python" - infra <<'PY'
import sys
from pathlib import Path

from pycep import BicepParser

files = sorted(Path(sys.argv[1]).rglob("*.bicep"))
if not files:
    sys.exit("checkov.sh: no .bicep files under infra/")
failed = False
for path in files:
    try:
        BicepParser().parse(file_path=path)
    except Exception as error:  # any parse error hides the file from checkov
        failed = True
        first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
        print(f"    cannot parse {path}: {first_line}")
if failed:
    sys.exit("checkov.sh: checkov would skip the files above; keep to the Bicep syntax pycep reads")
print(f"    {len(files)} files parsed")
PY

echo "==> checkov $CHECKOV_VERSION on infra/ (framework bicep)"
# --skip-download: no calls to the vendor platform; the checks ship in the package.
"$venv/bin/checkov" \
  --directory infra \
  --framework bicep \
  --quiet \
  --compact \
  --skip-download
