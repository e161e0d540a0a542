#!/usr/bin/env bash
# Proves that the repository is self-contained: copies the files a `git clone` would get (tracked files, plus
# new files not yet committed and not ignored) into an empty temporary folder with nothing beside it, and runs
# the README's test command there. Any test or build step that reads outside the repository (for example a
# reference folder that sits beside the repository on one machine only) fails here.
#
# Usage: scripts/selfcontained-check.sh [-- extra cargo test arguments]
# Env:   SELFCONTAINED_DIR  where the copy and its own build live (default: <repo>/target/selfcontained)
#
# The copy has its own target directory, kept between runs so that dependencies are built once. It must not
# share the repository's: cargo identifies workspace crates by their path relative to the workspace, so the
# two builds would reuse each other's test binaries, with the other tree's CARGO_MANIFEST_DIR compiled in (the
# copy could then read the original's files and pass falsely). The copy's path is fixed for the same reason.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
base="${SELFCONTAINED_DIR:-$repo_root/target/selfcontained}"
work="$base/src"
export CARGO_TARGET_DIR="$base/target"
rm -rf "$work"
mkdir -p "$work" "$CARGO_TARGET_DIR"
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
