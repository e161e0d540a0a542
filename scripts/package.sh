#!/usr/bin/env bash
# Builds the custom handler and lays out the Azure Functions app:
#
#   dist/app/host.json
#   dist/app/<FunctionName>/function.json      (one folder per function, from function/)
#   dist/app/adf-secret-refresh                (the release binary, executable)
#   dist/adf-secret-refresh.zip                (the same tree, ready for config-zip)
#
# Usage: scripts/package.sh [--skip-build] [--target TRIPLE]
#        scripts/package.sh --verify-binary FILE
#   --skip-build      package the release binary that is already in the target directory
#   --target TRIPLE   the Rust target (default x86_64-unknown-linux-musl: a static binary that needs no
#                     glibc, so it runs on whatever Linux image the Functions worker has). Install it once
#                     with `rustup target add x86_64-unknown-linux-musl` (and, on Debian/Ubuntu, `musl-tools`
#                     for the C parts of the TLS library). x86_64-unknown-linux-gnu also works, but then the
#                     binary needs a glibc no newer than the worker's.
#   --verify-binary   only check that FILE is an x86-64 Linux (ELF) executable, then exit
#
# Azure runs custom handlers on x86-64 Linux workers: a macOS, Windows or arm64 binary, or a 32-bit one,
# is refused here instead of failing at the first rotation.
# The zip keeps the binary's executable bit: Linux Functions hosts run the package as it is,
# and a handler without it fails to start with "permission denied".
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

binary_name="adf-secret-refresh"
dist_dir="$repo_root/dist"
app_dir="$dist_dir/app"
zip_path="$dist_dir/$binary_name.zip"

skip_build=false
target="x86_64-unknown-linux-musl"
verify_only=""
while [ "$#" -gt 0 ]; do
  case "$1" in
    --verify-binary)
      verify_only="${2:?--verify-binary needs a file}"
      shift 2
      ;;
    --skip-build)
      skip_build=true
      shift
      ;;
    --target)
      target="${2:?--target needs a target triple}"
      shift 2
      ;;
    -h | --help)
      sed -n '2,23p' "$0"
      exit 0
      ;;
    *)
      echo "package.sh: unknown argument: $1" >&2
      exit 64
      ;;
  esac
done
target_args=(--target "$target")

log() { printf '==> %s\n' "$*"; }

# Checks that $1 is an ELF executable for x86-64 Linux; prints whether it is static. Exit 1 otherwise.
verify_binary() {
  python3 - "$1" <<'PY'
import struct
import sys

path = sys.argv[1]
try:
    with open(path, "rb") as handle:
        header = handle.read(64)
        if header[:4] != b"\x7fELF":
            kind = "a Mach-O (macOS) binary" if header[:4] in (b"\xcf\xfa\xed\xfe", b"\xca\xfe\xba\xbe") else (
                "a Windows (PE) binary" if header[:2] == b"MZ" else "not an ELF executable")
            sys.exit(f"package.sh: {path} is {kind}; Azure Functions runs custom handlers on x86-64 Linux")
        if header[4] != 2 or header[5] != 1:
            sys.exit(f"package.sh: {path} is a 32-bit or big-endian ELF; Azure Functions needs x86-64 (64-bit)")
        machine = struct.unpack_from("<H", header, 18)[0]
        names = {0x3E: "x86-64", 0xB7: "arm64 (aarch64)", 0x03: "i386", 0x28: "arm", 0xF3: "riscv"}
        if machine != 0x3E:
            sys.exit(f"package.sh: {path} is built for {names.get(machine, hex(machine))}; Azure Functions needs x86-64")
        # Program headers: a PT_INTERP entry means a dynamic executable (needs the worker's libc).
        phoff, = struct.unpack_from("<Q", header, 32)
        phentsize, phnum = struct.unpack_from("<HH", header, 54)
        dynamic = False
        for i in range(phnum):
            handle.seek(phoff + i * phentsize)
            entry = handle.read(4)
            if len(entry) == 4 and struct.unpack("<I", entry)[0] == 3:
                dynamic = True
        print("    x86-64 Linux ELF, " + ("dynamically linked (needs the worker's glibc)" if dynamic else "statically linked"))
except OSError as error:
    sys.exit(f"package.sh: cannot read {path}: {error}")
PY
}

if [ -n "$verify_only" ]; then
  verify_binary "$verify_only"
  exit 0
fi

# Where cargo puts its output: CARGO_TARGET_DIR, a .cargo/config, or ./target.
target_dir="$(cargo metadata --format-version 1 --no-deps \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
if [ -z "$target_dir" ]; then
  echo "package.sh: cargo metadata did not name a target directory" >&2
  exit 1
fi
binary_path="$target_dir/$target/release/$binary_name"

if [ "$skip_build" = false ]; then
  if command -v rustup >/dev/null 2>&1 && ! rustup target list --installed | grep -qx "$target"; then
    echo "package.sh: the Rust target $target is not installed: run 'rustup target add $target'" >&2
    exit 1
  fi
  log "building $binary_name (cargo build --release --locked); this takes a while"
  cargo build --release --locked --package "$binary_name" --bin "$binary_name" \
    ${target_args[@]+"${target_args[@]}"}
fi
if [ ! -x "$binary_path" ]; then
  echo "package.sh: no executable at $binary_path (build first, or drop --skip-build)" >&2
  exit 1
fi
log "checking $binary_path"
verify_binary "$binary_path"

log "laying out $app_dir"
rm -rf "$app_dir" "$zip_path"
mkdir -p "$app_dir"
cp host.json "$app_dir/host.json"
function_count=0
for function_json in function/*/function.json; do
  name="$(basename "$(dirname "$function_json")")"
  mkdir -p "$app_dir/$name"
  cp "$function_json" "$app_dir/$name/function.json"
  function_count=$((function_count + 1))
done
if [ "$function_count" -eq 0 ]; then
  echo "package.sh: no function/<Name>/function.json found" >&2
  exit 1
fi
install -m 0755 "$binary_path" "$app_dir/$binary_name"

log "zipping to $zip_path"
if command -v zip >/dev/null 2>&1; then
  # -X drops extra attributes that are not needed; unix permissions are kept by default.
  (cd "$app_dir" && zip -q -r -X "$zip_path" .)
else
  python3 - "$app_dir" "$zip_path" <<'PY'
import os
import stat
import sys
import zipfile

app_dir, zip_path = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
    for root, dirs, files in os.walk(app_dir):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(root, name)
            info = zipfile.ZipInfo.from_file(path, os.path.relpath(path, app_dir))
            # The upper 16 bits carry the unix mode, which keeps the executable bit.
            info.external_attr = (os.stat(path).st_mode & 0xFFFF) << 16
            info.create_system = 3  # unix
            info.compress_type = zipfile.ZIP_DEFLATED
            with open(path, "rb") as source:
                archive.writestr(info, source.read())
PY
fi

# Prove the package is what the host expects before anyone uploads it.
python3 - "$zip_path" "$binary_name" <<'PY'
import stat
import sys
import zipfile

zip_path, binary_name = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(zip_path) as archive:
    names = set(archive.namelist())
    if "host.json" not in names:
        sys.exit("package.sh: host.json is not at the root of the zip")
    info = archive.getinfo(binary_name)
    mode = info.external_attr >> 16
    if not mode & stat.S_IXUSR:
        sys.exit(f"package.sh: {binary_name} lost its executable bit in the zip")
    functions = sorted(n.split("/")[0] for n in names if n.endswith("/function.json"))
    print("    functions: " + ", ".join(functions))
PY

size_of() { stat -c %s "$1"; }
human() { numfmt --to=iec-i --suffix=B "$1" 2>/dev/null || printf '%s bytes' "$1"; }
binary_size="$(size_of "$app_dir/$binary_name")"
zip_size="$(size_of "$zip_path")"
log "binary: $app_dir/$binary_name ($(human "$binary_size"), $binary_size bytes)"
log "zip:    $zip_path ($(human "$zip_size"), $zip_size bytes)"

# A glibc build links the build machine's glibc dynamically. Say which glibc it needs, so a mismatch
# with the Functions image shows up here and not as a crash loop in Azure (a musl build needs none).
if command -v objdump >/dev/null 2>&1; then
  glibc_needed="$(objdump -T "$app_dir/$binary_name" 2>/dev/null \
    | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -n 1 || true)"
  if [ -n "$glibc_needed" ]; then
    log "needs glibc >= $glibc_needed at run time (see docs/deploy.md, 'Which Linux the binary targets')"
  fi
fi
log "deploy with: az functionapp deployment source config-zip --resource-group <rg> --name <app> --src $zip_path"
