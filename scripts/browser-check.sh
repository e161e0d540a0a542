#!/usr/bin/env bash
# The browser check: writes the HTML pages of fixture reports and inventories with the product's own
# `show --output html` (an ignored test in tests/html.rs), then opens each in headless Chromium, offline, and
# checks what a person sees there (tests/browser/check.mjs). Screenshots are kept in target/pages/*.png.
#
# Needs /usr/bin/chromium (Debian's `chromium`; .ci/run installs it) and node with npm. playwright-core is
# pinned by tests/browser/package-lock.json and installed once into target/browser-check, never globally; it
# drives the Debian browser and downloads none of its own.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
target="${CARGO_TARGET_DIR:-$PWD/target}"
modules="$target/browser-check"

if [ ! -x "${CHROMIUM:-/usr/bin/chromium}" ]; then
  echo "browser-check: ${CHROMIUM:-/usr/bin/chromium} is missing (apt-get install -y chromium)" >&2
  exit 1
fi
mkdir -p "$modules"
if ! cmp -s tests/browser/package-lock.json "$modules/package-lock.json" \
  || [ ! -f "$modules/node_modules/playwright-core/package.json" ]; then
  cp tests/browser/package.json tests/browser/package-lock.json "$modules/"
  (cd "$modules" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
fi

CARGO_TARGET_DIR="$target" cargo test --locked --test html -- --ignored --exact write_the_pages_for_the_browser_check
node tests/browser/check.mjs "$target/pages" "$modules"
