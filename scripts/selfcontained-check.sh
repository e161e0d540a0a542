#!/usr/bin/env bash
# Proves that the repository is self-contained: copies the files a `git clone` would get (tracked files, plus
# new files not yet committed and not ignored) into an empty temporary folder with nothing beside it, and runs
# the README's test command there. Any test or build step that reads outside the repository (for example a
# reference folder that sits beside the repository on one machine only) fails here.
#
# Usage: scripts/selfcontained-check.sh [-- extra cargo test arguments]
# Env:   CARGO_TARGET_DIR  reused, so that dependencies are not rebuilt (default: this repository's target/)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo_root/target}"

work="$(mktemp -d "${TMPDIR:-/tmp}/adf-selfcontained.XXXXXX")"
trap 'rm -rf "$work"' EXIT
copy="$work/adf-secret-refresh"
mkdir -p "$copy"

# What a clone holds: every file git tracks or would track, and nothing it ignores (target/, dist/).
git ls-files -z --cached --others --exclude-standard \
  | while IFS= read -r -d '' path; do [ -e "$path" ] && printf '%s\0' "$path"; done \
  | tar --null --files-from - -cf - \
  | tar -xf - -C "$copy"

if [ "$(ls -A "$work")" != "adf-secret-refresh" ]; then
  echo "selfcontained-check: $work holds more than the copy; the check needs an empty parent folder" >&2
  exit 1
fi
files="$(find "$copy" -type f | wc -l | tr -d ' ')"
echo "==> $files files copied to $copy (nothing beside it); running cargo test --workspace --locked there"
cd "$copy"
shift_args=()
if [ "${1:-}" = "--" ]; then
  shift
  shift_args=("$@")
fi
cargo test --workspace --locked ${shift_args[@]+"${shift_args[@]}"}
echo "==> the copy passes its own tests"
