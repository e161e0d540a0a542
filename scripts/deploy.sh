#!/usr/bin/env bash
# Deploys adf-secret-refresh to Azure in three steps:
#   1. infrastructure (infra/main.bicep, deployEventSubscriptions=false);
#   2. code (scripts/package.sh, then az functionapp deployment source config-zip);
#   3. infrastructure again with deployEventSubscriptions=true: Event Grid only subscribes a
#      function that exists, so the subscriptions come after the code.
# docs/deploy.md explains each step and the permissions it needs.
#
# Usage:
#   scripts/deploy.sh --resource-group RG --parameters FILE [--location REGION]
#                     [--subscription ID] [--skip-build] [--target TRIPLE] [--name DEPLOYMENT]
#                     [--synapse-workspace NAME]...
#
#   -g, --resource-group  resource group for the app (env ADF_REFRESH_RESOURCE_GROUP); created if
#                         missing, which needs --location
#   -p, --parameters      .bicepparam or JSON parameters file (env ADF_REFRESH_PARAMETERS)
#   -l, --location        region of the resource group and the app (env ADF_REFRESH_LOCATION)
#   -s, --subscription    subscription of the resource group (default: az's current one)
#       --skip-build      package the release binary already built instead of building it
#       --target          Rust target triple to build for (passed to scripts/package.sh)
#       --name            ARM deployment name (default: adf-secret-refresh)
#       --synapse-workspace  a Synapse workspace in scope (repeatable; env ADF_REFRESH_SYNAPSE_WORKSPACES,
#                         comma-separated): the app identity gets the Synapse RBAC role "Synapse Linked
#                         Data Manager" on it, which Bicep cannot assign (needs Synapse Administrator)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
template="$repo_root/infra/main.bicep"
zip_path="$repo_root/dist/adf-secret-refresh.zip"
event_function="KeyVaultSecretEvent"

resource_group="${ADF_REFRESH_RESOURCE_GROUP:-}"
parameters="${ADF_REFRESH_PARAMETERS:-}"
location="${ADF_REFRESH_LOCATION:-}"
subscription=""
skip_build=false
package_args=()
deployment_name="adf-secret-refresh"
synapse_workspaces=()
IFS=',' read -r -a synapse_workspaces <<<"${ADF_REFRESH_SYNAPSE_WORKSPACES:-}"

usage() { sed -n '2,24p' "$0"; }
step() { printf '\n==> %s\n' "$*"; }
info() { printf '    %s\n' "$*"; }
die() {
  printf 'deploy.sh: %s\n' "$*" >&2
  exit 1
}

while [ "$#" -gt 0 ]; do
  case "$1" in
    -g | --resource-group) resource_group="${2:?$1 needs a value}"; shift 2 ;;
    -p | --parameters) parameters="${2:?$1 needs a value}"; shift 2 ;;
    -l | --location) location="${2:?$1 needs a value}"; shift 2 ;;
    -s | --subscription) subscription="${2:?$1 needs a value}"; shift 2 ;;
    --skip-build) skip_build=true; shift ;;
    --target) package_args+=(--target "${2:?$1 needs a value}"); shift 2 ;;
    --name) deployment_name="${2:?$1 needs a value}"; shift 2 ;;
    --synapse-workspace) synapse_workspaces+=("${2:?$1 needs a value}"); shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done

[ -n "$resource_group" ] || { usage >&2; die "--resource-group is required"; }
[ -n "$parameters" ] || { usage >&2; die "--parameters is required"; }
[ -f "$parameters" ] || die "parameters file not found: $parameters"
parameters="$(cd "$(dirname "$parameters")" && pwd)/$(basename "$parameters")"

step "checking prerequisites"
for tool in az cargo python3; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is not on PATH (see docs/deploy.md, Prerequisites)"
done
if ! az bicep version >/dev/null 2>&1; then
  die "the Bicep CLI is missing: run 'az bicep install'"
fi
info "$(az version --query '"azure-cli"' -o tsv | sed 's/^/az /')"
info "$(az bicep version 2>/dev/null | head -n 1)"
info "$(cargo --version)"
if [ -n "$subscription" ]; then
  az account set --subscription "$subscription"
fi
account="$(az account show --query '[name, id, user.name]' -o tsv 2>/dev/null | tr '\t' ' ')" \
  || die "not signed in: run 'az login'"
info "signed in: $account"

# The parameters as JSON, to check the scopes before ARM sees them: a scope of the wrong shape
# would silently get no role assignment.
params_json="$(mktemp)"
trap 'rm -f "$params_json"' EXIT
case "$parameters" in
  *.bicepparam) az bicep build-params --file "$parameters" --outfile "$params_json" >/dev/null ;;
  *) cp "$parameters" "$params_json" ;;
esac
python3 - "$params_json" <<'PY'
import json
import re
import sys

with open(sys.argv[1]) as handle:
    document = json.load(handle)
values = {k: v.get("value") for k, v in document.get("parameters", {}).items()}
problems = []
scope_forms = [
    r"/subscriptions/[^/]+",
    r"/subscriptions/[^/]+/resourceGroups/[^/]+",
    r"/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.DataFactory/factories/[^/]+",
]
scopes = values.get("managedScopes") or []
if not scopes:
    problems.append("managedScopes is empty: the app would have nothing to manage")
for scope in scopes:
    if not any(re.fullmatch(form, scope, re.IGNORECASE) for form in scope_forms):
        problems.append(f"managedScopes: not a subscription, resource group or factory id: {scope}")
vault_form = r"/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.KeyVault/vaults/[^/]+"
for vault in values.get("vaultIds") or []:
    if not re.fullmatch(vault_form, vault, re.IGNORECASE):
        problems.append(f"vaultIds: not a Key Vault resource id: {vault}")
secret_uri = values.get("webhookSecretUri") or ""
if secret_uri and not re.fullmatch(r"https://[^/]+/secrets/[^/]+(/[^/]*)?", secret_uri):
    problems.append(f"webhookSecretUri: not a Key Vault secret URI: {secret_uri}")
if problems:
    sys.exit("deploy.sh: parameters file problems:\n  " + "\n  ".join(problems))
print(f"    {len(scopes)} scope(s), {len(values.get('vaultIds') or [])} vault(s)")
PY

if [ "$(az group exists --name "$resource_group")" != "true" ]; then
  [ -n "$location" ] || die "resource group $resource_group does not exist; pass --location to create it"
  step "creating resource group $resource_group in $location"
  az group create --name "$resource_group" --location "$location" --output none
fi

location_override=()
if [ -n "$location" ]; then
  location_override=(--parameters "location=$location")
fi

deploy_infra() {
  local subscriptions_flag="$1"
  az deployment group create \
    --resource-group "$resource_group" \
    --name "$deployment_name" \
    --template-file "$template" \
    --parameters "$parameters" \
    ${location_override[@]+"${location_override[@]}"} \
    --parameters "deployEventSubscriptions=$subscriptions_flag" \
    --query properties.outputs \
    --output json
}

output_value() {
  python3 -c '
import json, sys
value = json.load(sys.stdin)[sys.argv[1]]["value"]
print(", ".join(value) if isinstance(value, list) else value)' "$1"
}

step "1/3 infrastructure: app, storage, identity, roles, Event Grid system topics (no subscriptions yet)"
outputs="$(deploy_infra false)"
app_name="$(output_value functionAppName <<<"$outputs")"
info "function app: $app_name ($(output_value functionAppHostName <<<"$outputs"))"
info "storage:      $(output_value storageAccountName <<<"$outputs")"
info "custom role:  $(output_value customRoleDefinitionId <<<"$outputs")"
principal_id="$(output_value managedIdentityPrincipalId <<<"$outputs")"

# Synapse RBAC lives in each workspace, out of Bicep's reach: assign it with the Synapse CLI. Listing
# workspaces through ARM is in the custom role; reading and re-saving their linked services is this role.
for workspace in ${synapse_workspaces[@]+"${synapse_workspaces[@]}"}; do
  workspace="$(printf '%s' "$workspace" | tr -d '[:space:]')"
  [ -n "$workspace" ] || continue
  step "Synapse workspace $workspace: Synapse Linked Data Manager for the app identity"
  existing="$(az synapse role assignment list --workspace-name "$workspace" \
    --role "Synapse Linked Data Manager" --assignee-object-id "$principal_id" \
    --query "length(@)" -o tsv 2>/dev/null || echo 0)"
  if [ "${existing:-0}" != "0" ]; then
    info "already assigned"
    continue
  fi
  az synapse role assignment create --workspace-name "$workspace" \
    --role "Synapse Linked Data Manager" \
    --assignee-object-id "$principal_id" --assignee-principal-type ServicePrincipal \
    --output none \
    || die "could not assign the Synapse role on $workspace: you need Synapse Administrator on it (docs/deploy.md, 'Synapse workspaces')"
  info "assigned"
done

step "2/3 code: build, package, zip deploy to $app_name"
if [ "$skip_build" = true ]; then
  package_args+=(--skip-build)
fi
"$repo_root/scripts/package.sh" ${package_args[@]+"${package_args[@]}"}
az functionapp deployment source config-zip \
  --resource-group "$resource_group" \
  --name "$app_name" \
  --src "$zip_path" \
  --output none
info "waiting for the host to list $event_function"
for attempt in $(seq 1 20); do
  if az functionapp function show --resource-group "$resource_group" --name "$app_name" \
    --function-name "$event_function" --output none 2>/dev/null; then
    info "$event_function is live"
    break
  fi
  if [ "$attempt" -eq 20 ]; then
    die "$event_function did not appear after the zip deploy; check the app's logs, then rerun"
  fi
  sleep 15
done

step "3/3 Event Grid subscriptions: each vault's system topic -> $event_function"
outputs="$(deploy_infra true)"
info "system topics: $(output_value systemTopicNames <<<"$outputs")"

step "done"
info "Rotate a test secret to see it work (docs/deploy.md, 'Check that it works'):"
info "  az keyvault secret set --vault-name <vault> --name <secret> --value <new value>"
info "Reports land in container '$(output_value reportContainerName <<<"$outputs")' of storage account $(output_value storageAccountName <<<"$outputs")."
