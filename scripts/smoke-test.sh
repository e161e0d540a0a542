#!/usr/bin/env bash
# Proves that a deployed adf-secret-refresh answers, without touching anything production uses.
#
# Default (safe): a dry run against a real secret. POST /api/refresh with dryRun=true: the app lists the
# factories in scope and says what a rotation of VAULT/SECRET would do. It writes nothing, and it reads no
# secret value. It fails unless the answer is a report (200, or 202 followed by polling until the report).
#
# --end-to-end (optional): a real refresh on a dedicated test secret and a dedicated test linked service that
# this script creates, and removes afterwards (unless --keep). Nothing else is written. It needs, for the
# person running it: Key Vault Secrets Officer on the vault, and Data Factory Contributor on the factory.
#
# Usage:
#   scripts/smoke-test.sh --resource-group RG --app APP --vault VAULT --secret SECRET [--host HOST]
#   scripts/smoke-test.sh --resource-group RG --app APP --vault VAULT --end-to-end \
#                         --factory FACTORY_RESOURCE_ID --kv-linked-service NAME [--keep]
#
#   --kv-linked-service  the factory's AzureKeyVault linked service that points at VAULT
#   --keep               leave the test secret and linked service in place
# The function keys (Refresh's for the run, RefreshStatus's for the polls) are read with az and never printed.
set -euo pipefail

resource_group="" app="" host="" vault="" secret="" end_to_end=false factory="" kv_ls="" keep=false
test_secret="adf-secret-refresh-smoke-test"
test_ls="AdfSecretRefreshSmokeTest"
usage() { sed -n '2,19p' "$0"; }
die() {
  printf 'smoke-test.sh: %s\n' "$*" >&2
  exit 1
}
info() { printf '    %s\n' "$*"; }
while [ "$#" -gt 0 ]; do
  case "$1" in
    -g | --resource-group) resource_group="${2:?}"; shift 2 ;;
    --app) app="${2:?}"; shift 2 ;;
    --host) host="${2:?}"; shift 2 ;;
    --vault) vault="${2:?}"; shift 2 ;;
    --secret) secret="${2:?}"; shift 2 ;;
    --end-to-end) end_to_end=true; shift ;;
    --factory) factory="${2:?}"; shift 2 ;;
    --kv-linked-service) kv_ls="${2:?}"; shift 2 ;;
    --keep) keep=true; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done
[ -n "$resource_group" ] && [ -n "$app" ] && [ -n "$vault" ] || { usage >&2; die "--resource-group, --app and --vault are required"; }
if [ "$end_to_end" = true ]; then
  [ -n "$factory" ] && [ -n "$kv_ls" ] || die "--end-to-end needs --factory and --kv-linked-service"
  secret="$test_secret"
fi
[ -n "$secret" ] || die "--secret is required (or --end-to-end)"
[ -n "$host" ] || host="$(az functionapp show -g "$resource_group" -n "$app" --query defaultHostName -o tsv)"

# A function key opens only its own function: Refresh takes the POST, RefreshStatus the polls.
function_key() {
  az functionapp function keys list -g "$resource_group" -n "$app" --function-name "$1" --query default -o tsv 2>/dev/null || true
}
refresh_key="$(function_key Refresh)"
[ -n "$refresh_key" ] || die "could not read the Refresh function key (is the code deployed? do you have Website Contributor on $app?)"
status_key="$(function_key RefreshStatus)"
[ -n "$status_key" ] || die "could not read the RefreshStatus function key (is the code deployed? do you have Website Contributor on $app?)"
body_file="$(mktemp)"
header_file="$(mktemp)"
created_ls=false
created_secret=false
cleanup() {
  rm -f "$body_file" "$header_file"
  if [ "$keep" = false ] && [ "$created_ls" = true ]; then
    info "removing the test linked service $test_ls"
    az rest --method delete --url "https://management.azure.com${factory}/linkedservices/${test_ls}?api-version=2018-06-01" --output none || true
  fi
  if [ "$keep" = false ] && [ "$created_secret" = true ]; then
    info "removing the test secret $vault/$test_secret (it stays soft-deleted for the vault's retention period)"
    az keyvault secret delete --vault-name "$vault" --name "$test_secret" --output none || true
  fi
}
trap cleanup EXIT

# POST (or GET) with the key in a header, never in the URL that might be logged; retried while the app starts.
call() {
  local method="$1" path="$2" key="$3" data="${4:-}" code attempt
  for attempt in 1 2 3 4 5 6; do
    code="$(curl -sS -o "$body_file" -D "$header_file" -w '%{http_code}' -X "$method" "https://$host$path" \
      -H "x-functions-key: $key" -H 'content-type: application/json' ${data:+--data "$data"} || echo 000)"
    case "$code" in
      000 | 500 | 502 | 503 | 504) [ "$attempt" -lt 6 ] && { info "HTTP $code; the app may be starting, retrying in 20s"; sleep 20; continue; } ;;
    esac
    break
  done
  printf '%s' "$code"
}

# The seconds a 202 asks to wait (Retry-After), 10 when it names none.
retry_after() {
  local seconds
  seconds="$(tr -d '\r' <"$header_file" | sed -n 's/^[Rr]etry-[Aa]fter: *\([0-9][0-9]*\)$/\1/p' | tail -n 1)"
  printf '%s' "${seconds:-10}"
}

refresh() {
  local dry_run="$1" code location
  code="$(call POST /api/refresh "$refresh_key" "{\"vault\":\"$vault\",\"secret\":\"$secret\",\"dryRun\":$dry_run}")"
  if [ "$code" = 202 ]; then
    location="$(python3 -c 'import json,sys; print("/api/refresh/" + json.load(open(sys.argv[1]))["id"])' "$body_file")"
    info "202 Accepted: the run goes on as a queued job; polling $location"
    for _ in $(seq 1 60); do
      sleep "$(retry_after)"
      code="$(call GET "$location" "$status_key")"
      [ "$code" = 202 ] || break
    done
  fi
  python3 - "$body_file" "$code" <<'PY'
import json
import sys

path, code = sys.argv[1], sys.argv[2]
try:
    report = json.load(open(path))
except (OSError, ValueError):
    sys.exit(f"smoke-test.sh: HTTP {code} without a JSON report: the handler did not answer (check the logs: docs/operations.md)")
if not str(report.get("schema", "")).startswith("adf-secret-refresh/report/"):
    sys.exit(f"smoke-test.sh: HTTP {code}, but the body is not a report: {str(report)[:300]}")
s = report.get("summary", {})
print(f"    HTTP {code}: report {report.get('id')}, complete={report.get('complete')}, dryRun={report.get('dryRun')}, "
      f"factories={s.get('factoriesScanned')}, affected={s.get('affected')}, resaved={s.get('resaved')}, "
      f"testsFailed={s.get('testsFailed')}")
for error in report.get("errors", []):
    print(f"    error: {error.get('message')}")
PY
  cp "$body_file" "${body_file}.report"
}

if [ "$end_to_end" = false ]; then
  echo "==> dry run: what a rotation of $vault/$secret would do (writes nothing)"
  refresh true
  rm -f "${body_file}.report"
  exit 0
fi

echo "==> end to end on a dedicated test secret and linked service (removed afterwards unless --keep)"
info "creating the test secret $vault/$test_secret"
az keyvault secret set --vault-name "$vault" --name "$test_secret" --value "smoke-$(date +%s)-$RANDOM" \
  --tags purpose=adf-secret-refresh-smoke-test --output none
created_secret=true
info "creating the test linked service $test_ls in $factory"
python3 - "$kv_ls" "$test_secret" >"${body_file}.ls" <<'PY'
import json
import sys

store, secret = sys.argv[1], sys.argv[2]
print(json.dumps({"properties": {
    "type": "AzureSqlDatabase",
    "description": "adf-secret-refresh smoke test: safe to delete",
    "typeProperties": {
        "connectionString": "Server=tcp:adf-secret-refresh-smoke.invalid,1433;Database=smoke;User ID=smoke;",
        "password": {"type": "AzureKeyVaultSecret", "secretName": secret,
                     "store": {"referenceName": store, "type": "LinkedServiceReference"}}}}}))
PY
az rest --method put --url "https://management.azure.com${factory}/linkedservices/${test_ls}?api-version=2018-06-01" \
  --body @"${body_file}.ls" --output none
created_ls=true
rm -f "${body_file}.ls"
info "rotating the test secret"
az keyvault secret set --vault-name "$vault" --name "$test_secret" --value "smoke-$(date +%s)-$RANDOM" --output none
refresh false
python3 - "${body_file}.report" "$test_ls" <<'PY'
import json
import sys

report, name = json.load(open(sys.argv[1])), sys.argv[2]
target = next((t for t in report.get("targets", []) if t.get("name") == name), None)
if target is None:
    sys.exit(f"smoke-test.sh: the report does not list {name}: is the factory inside managedScopes?")
status = (target.get("resave") or {}).get("status")
if status != "ok":
    sys.exit(f"smoke-test.sh: {name} was not re-saved (resave.status={status})")
print(f"    {name} re-saved; its test connection is expected to fail (it points at a host that does not exist)")
PY
rm -f "${body_file}.report"
echo "==> end-to-end smoke test passed"
