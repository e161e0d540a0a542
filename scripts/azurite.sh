#!/usr/bin/env bash
# Azurite, the Azure Storage emulator, for the tests of cross-instance coordination (blob leases and
# conditional blob writes). Only its Blob service is started, on loopback, with in-memory persistence.
#
# Azurite is installed from the npm registry, pinned, into target/azurite (gitignored), once; never globally.
# Usage: scripts/azurite.sh start     installs if needed, starts azurite-blob, waits until it answers, and
#                                     prints the account URL for ADF_REFRESH_TEST_AZURITE
#        scripts/azurite.sh stop      stops the instance this script started
#        scripts/azurite.sh url       prints the account URL
# Env:   AZURITE_PORT   the blob port (default 10000)
#        AZURITE_DIR    where it is installed and its pid/log files live (default: <repo>/target/azurite)
set -euo pipefail

AZURITE_VERSION="3.37.0"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${AZURITE_DIR:-$repo_root/target/azurite}"
port="${AZURITE_PORT:-10000}"
pid_file="$dir/azurite.pid"
log_file="$dir/azurite.log"
# Azurite's well-known development account (documented in Azurite's README; not a secret).
url="http://127.0.0.1:$port/devstoreaccount1"

install() {
  local installed=""
  if [ -f "$dir/node_modules/azurite/package.json" ]; then
    installed="$(node -p "require('$dir/node_modules/azurite/package.json').version" 2>/dev/null || true)"
  fi
  if [ "$installed" != "$AZURITE_VERSION" ]; then
    echo "==> installing azurite $AZURITE_VERSION into $dir" >&2
    mkdir -p "$dir"
    [ -f "$dir/package.json" ] || echo '{"name":"adf-refresh-azurite","private":true}' >"$dir/package.json"
    npm install --prefix "$dir" --no-audit --no-fund --silent --save-exact "azurite@$AZURITE_VERSION" >&2
  fi
}

answers() {
  # Any HTTP answer from the blob endpoint means it is up (an unauthenticated request gets 4xx).
  curl -s -o /dev/null -m 2 "http://127.0.0.1:$port/devstoreaccount1?comp=list" 2>/dev/null
}

start() {
  if [ -f "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null; then
    echo "$url"
    return
  fi
  if answers; then
    echo "error: something already answers on 127.0.0.1:$port; set AZURITE_PORT to a free port" >&2
    exit 1
  fi
  install
  # In memory: nothing is written to disk, and a restart starts empty. Run from $dir so that nothing
  # Azurite might still write lands in the repository.
  (cd "$dir" && exec node_modules/.bin/azurite-blob \
    --blobHost 127.0.0.1 --blobPort "$port" \
    --inMemoryPersistence --extentMemoryLimit 256 \
    --skipApiVersionCheck --disableProductStyleUrl \
    >"$log_file" 2>&1) &
  echo $! >"$pid_file"
  for _ in $(seq 1 100); do
    if answers; then
      echo "$url"
      return
    fi
    if ! kill -0 "$(cat "$pid_file")" 2>/dev/null; then
      echo "error: azurite-blob exited; its log:" >&2
      cat "$log_file" >&2
      rm -f "$pid_file"
      exit 1
    fi
    sleep 0.2
  done
  echo "error: azurite-blob did not answer on port $port within 20 s; its log:" >&2
  cat "$log_file" >&2
  stop
  exit 1
}

stop() {
  if [ -f "$pid_file" ]; then
    local pid
    pid="$(cat "$pid_file")"
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
      done
    fi
    rm -f "$pid_file"
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  url) echo "$url" ;;
  *)
    echo "usage: $0 start|stop|url" >&2
    exit 2
    ;;
esac
