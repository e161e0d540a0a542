#!/usr/bin/env bash
# Removes adf-secret-refresh: everything the deployment created, in every subscription it touched.
#
#   1. every role assignment of the app identity, in each subscription of managedScopes, vaultIds,
#      notificationSecretIds and webhookSecretVaultId, and in the app's own subscription
#      (`az role assignment list --all` searches one subscription only, so each is searched in turn);
#   2. the custom role "ADF Secret Refresh (<appName>)" (only once no assignment uses it);
#   3. in each vault's resource group: the Event Grid system topic (its subscriptions go with it) and the
#      topic's three alert rules (alert-<topic>-deadlettered, -dropped, -delivery-failures);
#   4. the app's resource group: app, plan, storage (with the reports), identity, logs, alert rules.
#
# Usage: scripts/uninstall.sh --resource-group RG --parameters FILE [--yes]
#   Without --yes it lists what it would delete and stops.
set -euo pipefail

resource_group="" parameters="" yes=false
die() {
  printf 'uninstall.sh: %s\n' "$*" >&2
  exit 1
}
while [ "$#" -gt 0 ]; do
  case "$1" in
    -g | --resource-group) resource_group="${2:?}"; shift 2 ;;
    -p | --parameters) parameters="${2:?}"; shift 2 ;;
    --yes) yes=true; shift ;;
    -h | --help) sed -n '2,13p' "$0"; exit 0 ;;
    *) die "unknown argument: $1" ;;
  esac
done
[ -n "$resource_group" ] && [ -n "$parameters" ] || die "--resource-group and --parameters are required"
[ -f "$parameters" ] || die "no such file: $parameters"

params_json="$(mktemp)"
trap 'rm -f "$params_json"' EXIT
case "$parameters" in
  *.bicepparam) az bicep build-params --file "$parameters" --outfile "$params_json" >/dev/null ;;
  *) cp "$parameters" "$params_json" ;;
esac
read_params() {
  python3 - "$params_json" "$1" <<'PY'
import json
import sys

values = {k: v.get("value") for k, v in json.load(open(sys.argv[1])).get("parameters", {}).items()}
what = sys.argv[2]
if what == "app":
    print(values.get("appName", ""))
elif what == "subscriptions":
    ids = list(values.get("managedScopes") or []) + list(values.get("vaultIds") or [])
    ids += list(values.get("notificationSecretIds") or [])
    ids += [values.get("webhookSecretVaultId") or ""]
    print("\n".join(sorted({i.split("/")[2].lower() for i in ids if i.count("/") >= 2})))
elif what == "vaults":
    for v in values.get("vaultIds") or []:
        p = v.split("/")
        print(f"{p[2]} {p[4]} {p[8]}")
PY
}
app="$(read_params app)"
[ -n "$app" ] || die "appName is not in $parameters"
app_subscription="$(az account show --query id -o tsv)"
principal="$(az identity show -g "$resource_group" -n "id-$app" --query principalId -o tsv 2>/dev/null || true)"
[ -n "$principal" ] || echo "    the identity id-$app is already gone: role assignments cannot be found by principal"

run() {
  if [ "$yes" = true ]; then
    "$@"
  else
    printf '    would run: %s\n' "$*"
  fi
}

echo "==> 1. role assignments of id-$app, in every subscription it was given access to"
if [ -n "$principal" ]; then
  for sub in $( (read_params subscriptions; echo "$app_subscription") | sort -u); do
    for id in $(az role assignment list --all --subscription "$sub" --assignee "$principal" --query '[].id' -o tsv 2>/dev/null); do
      run az role assignment delete --ids "$id"
    done
  done
fi

echo "==> 2. the custom role"
if az role definition list --custom-role-only true --name "ADF Secret Refresh ($app)" --query '[0].name' -o tsv | grep -q .; then
  run az role definition delete --name "ADF Secret Refresh ($app)"
fi

echo "==> 3. the Event Grid system topics and their alert rules"
read_params vaults | while read -r sub rg vault; do
  topic="evgt-${vault}-${app:0:20}"
  # The alert rules live beside the topic, in the vault's resource group: the group deleted in step 4 does
  # not hold them, and they would go on pointing at a deleted topic.
  for alert in deadlettered dropped delivery-failures; do
    if az monitor metrics alert show --subscription "$sub" -g "$rg" -n "alert-${topic}-${alert}" --output none 2>/dev/null; then
      run az monitor metrics alert delete --subscription "$sub" -g "$rg" -n "alert-${topic}-${alert}"
    fi
  done
  if az eventgrid system-topic show --subscription "$sub" -g "$rg" -n "$topic" --output none 2>/dev/null; then
    run az eventgrid system-topic delete --subscription "$sub" -g "$rg" -n "$topic" --yes
  fi
done

echo "==> 4. the resource group $resource_group"
run az group delete --name "$resource_group" --yes
[ "$yes" = true ] || echo "nothing was deleted; rerun with --yes"
