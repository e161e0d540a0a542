#!/usr/bin/env bash
# The local demo: builds the product and the emulator, then runs one Key Vault rotation through the
# custom handler exactly as Azure Functions would deliver it, with the emulator serving as Azure.
# No Azure account is needed. The report is written to target/demo/report.json and printed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo build --workspace --bins --locked --quiet
exec target/debug/adf-demo target/demo
