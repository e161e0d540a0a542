#!/usr/bin/env bash
# Deploys adf-secret-refresh to Azure in three steps:
#   1. infrastructure (infra/main.bicep, deployEventSubscriptions=false);
#   2. code (scripts/package.sh, then az functionapp deployment source config-zip);
#   3. infrastructure again with deployEventSubscriptions=true: Event Grid only subscribes a
#      function that exists, so the subscriptions come after the code.
# docs/deploy.md explains each step and the permissions it needs. It needs Azure CLI 2.60.0 or later (Flex
# Consumption), the Bicep CLI 0.18.4 or later (.bicepparam files), python3, and cargo unless --zip is given.
#
#   4. a check that the app answers: Refresh with dryRun=true must return a report, or the deploy fails.
#
# Usage:
#   scripts/deploy.sh --resource-group RG --parameters FILE [--location REGION]
#                     [--subscription ID] [--zip FILE | --skip-build] [--target TRIPLE] [--name DEPLOYMENT]
#                     [--check-secret VAULT/SECRET] [--skip-check] [--force-settings]
#                     [--synapse-workspace NAME]...
#
#   -g, --resource-group  resource group for the app (env ADF_REFRESH_RESOURCE_GROUP); created if
#                         missing, which needs --location
#   -p, --parameters      .bicepparam or JSON parameters file (env ADF_REFRESH_PARAMETERS)
#   -l, --location        region of the resource group and the app (env ADF_REFRESH_LOCATION)
#   -s, --subscription    subscription of the resource group (default: az's current one)
#       --zip FILE        deploy this package (from scripts/package.sh) instead of building one: build once,
#                         deploy the same zip to test and production; roll back by deploying the previous zip
#       --skip-build      package the release binary already built instead of building it
#       --target          Rust target triple to build for (passed to scripts/package.sh)
#       --name            ARM deployment name (default: adf-secret-refresh)
#       --check-secret    the secret the post-deploy dry run asks about (default: a name no linked service
#                         uses, in the first vault: the check then proves the app answers, and reads only)
#       --skip-check      skip the post-deploy dry run (not recommended)
#       --force-settings  go on although the app has settings that the template does not set (added in the
#                         portal): the deployment replaces the whole set, so they would be removed
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
zip_given=""
check_secret=""
skip_check=false
force_settings=false

usage() { sed -n '2,35p' "$0"; }
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
    --zip) zip_given="${2:?$1 needs a value}"; shift 2 ;;
    --check-secret) check_secret="${2:?$1 needs a value}"; shift 2 ;;
    --skip-check) skip_check=true; shift ;;
    --force-settings) force_settings=true; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done

[ -n "$resource_group" ] || { usage >&2; die "--resource-group is required"; }
[ -n "$parameters" ] || { usage >&2; die "--parameters is required"; }
[ -f "$parameters" ] || die "parameters file not found: $parameters"
parameters="$(cd "$(dirname "$parameters")" && pwd)/$(basename "$parameters")"
if [ -n "$zip_given" ]; then
  [ -f "$zip_given" ] || die "--zip: no such file: $zip_given"
  [ "$skip_build" = false ] || die "--zip and --skip-build exclude each other"
  zip_path="$(cd "$(dirname "$zip_given")" && pwd)/$(basename "$zip_given")"
fi

# The oldest versions the scripts are written for: Flex Consumption needs Azure CLI 2.60.0, and .bicepparam
# files need Bicep 0.18.4 (docs/deploy.md, Prerequisites).
min_az_version="2.60.0"
min_bicep_version="0.18.4"

# Prints the first dotted version number in its input, or nothing.
version_in() { { grep -oE '[0-9]+\.[0-9]+\.[0-9]+' || true; } | head -n 1; }
# True when version $1 is at least version $2.
at_least() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -t. -k1,1n -k2,2n -k3,3n | head -n 1)" = "$2" ]; }

step "checking prerequisites"
tools=(az python3)
# A given package needs no build: an operator or a CI agent without Rust deploys the same zip.
[ -n "$zip_given" ] || tools+=(cargo)
for tool in "${tools[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is not on PATH (see docs/deploy.md, Prerequisites)"
done
if ! az bicep version >/dev/null 2>&1; then
  die "the Bicep CLI is missing: run 'az bicep install'"
fi
az_version="$(az version --query '"azure-cli"' -o tsv | version_in)"
bicep_version="$(az bicep version 2>/dev/null | version_in)"
at_least "${az_version:-0.0.0}" "$min_az_version" \
  || die "Azure CLI ${az_version:-of unknown version} is too old: $min_az_version or later is needed (run 'az upgrade')"
at_least "${bicep_version:-0.0.0}" "$min_bicep_version" \
  || die "Bicep CLI ${bicep_version:-of unknown version} is too old: $min_bicep_version or later is needed (run 'az bicep upgrade')"
info "az $az_version, Bicep $bicep_version"
[ -n "$zip_given" ] || info "$(cargo --version)"
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
granted = {(p.split("/")[8].lower(), p.split("/")[10].lower())
           for p in (values.get("notificationSecretIds") or []) if len(p.split("/")) == 11}
for name in ("webhookUrl", "teamsWebhookUrl", "slackWebhookUrl"):
    value = values.get(name) or ""
    match = re.fullmatch(r"@Microsoft\.KeyVault\(SecretUri=https://([^./]+)\.[^/]+/secrets/([^/)]+)(/[^)]*)?\)", value)
    if value.startswith("@Microsoft.KeyVault") and not match:
        problems.append(f"{name}: a Key Vault reference must be @Microsoft.KeyVault(SecretUri=https://<vault>.vault.azure.net/secrets/<name>)")
    elif match and (match.group(1).lower(), match.group(2).lower()) not in granted:
        problems.append(f"{name}: references secret {match.group(2)} in vault {match.group(1)}, which is not in notificationSecretIds: the app could not read it, and the reference would never resolve")
secret_uri = values.get("webhookSecretUri") or ""
if secret_uri and not re.fullmatch(r"https://[^/]+/secrets/[^/]+(/[^/]*)?", secret_uri):
    problems.append(f"webhookSecretUri: not a Key Vault secret URI: {secret_uri}")
if problems:
    sys.exit("deploy.sh: parameters file problems:\n  " + "\n  ".join(problems))
print(f"    {len(scopes)} scope(s), {len(values.get('vaultIds') or [])} vault(s)")
PY
first_vault="$(python3 -c '
import json, sys
values = {k: v.get("value") for k, v in json.load(open(sys.argv[1])).get("parameters", {}).items()}
vaults = [v.split("/")[-1] for v in values.get("vaultIds") or []] + list(values.get("manualVaultNames") or [])
print(vaults[0] if vaults else "")' "$params_json")"
app_name_param="$(python3 -c '
import json, sys
print(json.load(open(sys.argv[1])).get("parameters", {}).get("appName", {}).get("value", ""))' "$params_json")"
new_scopes="$(python3 -c '
import json, sys
print("\n".join(json.load(open(sys.argv[1])).get("parameters", {}).get("managedScopes", {}).get("value", [])))' "$params_json")"

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

# Settings are owned by the parameters file: the deployment replaces the app's whole set of settings.
# A setting added in the portal would be removed, so stop and say which, unless --force-settings.
if [ -n "$app_name_param" ] && az functionapp show -g "$resource_group" -n "$app_name_param" --output none 2>/dev/null; then
  foreign="$(az functionapp config appsettings list -g "$resource_group" -n "$app_name_param" --query '[].name' -o tsv \
    | grep -Ev '^(ADF_REFRESH_|AZURE_CLIENT_ID$|AzureWebJobsStorage__|APPLICATIONINSIGHTS_|FUNCTIONS_|WEBSITE_|SCM_|DEPLOYMENT_STORAGE)' || true)"
  if [ -n "$foreign" ]; then
    info "settings on $app_name_param that the template does not set (added in the portal?):"
    printf '      %s\n' $foreign
    [ "$force_settings" = true ] || die "the deployment would remove them; put them in the template, or rerun with --force-settings"
  fi
  info "settings come from $parameters: a value changed in the portal is replaced by the parameters' value"
fi

# Removing a scope: ARM refuses to shrink the custom role's assignableScopes while an assignment still uses
# a scope being removed (RoleScopeBeingRemovedContainsAssignments). So delete, first, every assignment of the
# role at a scope that is no longer in managedScopes, in every subscription the role could be assigned in.
if [ -n "$app_name_param" ]; then
  role_name="ADF Secret Refresh ($app_name_param)"
  old_subscriptions="$(az role definition list --custom-role-only true --name "$role_name" \
    --query '[0].assignableScopes[]' -o tsv 2>/dev/null | cut -d/ -f3 | sort -uf || true)"
  for sub in $old_subscriptions; do
    az role assignment list --all --subscription "$sub" --role "$role_name" --query '[].[id, scope]' -o tsv 2>/dev/null \
      | while IFS=$'\t' read -r assignment scope; do
        if [ -n "$scope" ] && ! grep -qixF -- "$scope" <<<"$new_scopes"; then
          info "scope removed from managedScopes: $scope; deleting the app's role assignment there first"
          az role assignment delete --ids "$assignment" --output none
        fi
      done
  done
fi

step "1/4 infrastructure: app, storage, identity, roles, Event Grid system topics (no subscriptions yet)"
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

step "2/4 code: deploy $(basename "$zip_path") to $app_name"
if [ -n "$zip_given" ]; then
  # A given package is checked as the build would be: host.json at the root, an x86-64 Linux binary.
  unpacked="$(mktemp -d)"
  python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$zip_path" "$unpacked"
  [ -f "$unpacked/host.json" ] || die "--zip: $zip_path has no host.json at its root"
  "$repo_root/scripts/package.sh" --verify-binary "$unpacked/adf-secret-refresh" || die "--zip: $zip_path holds no runnable handler"
  rm -rf "$unpacked"
else
  if [ "$skip_build" = true ]; then
    package_args+=(--skip-build)
  fi
  "$repo_root/scripts/package.sh" ${package_args[@]+"${package_args[@]}"}
fi
# Flex Consumption uploads the package with the app identity, whose Storage Blob Data Owner grant is
# seconds old on a first deploy: role assignments take up to about 10 minutes to apply, and the upload
# meanwhile fails with 403. Retry with back-off instead of failing the first deploy.
delay=15
for attempt in 1 2 3 4 5 6; do
  if az functionapp deployment source config-zip --resource-group "$resource_group" --name "$app_name" \
    --src "$zip_path" --output none; then
    break
  fi
  [ "$attempt" -lt 6 ] || die "the package upload failed 6 times; if it says 403, the app identity's storage role has not applied yet: rerun with --zip $zip_path"
  info "upload failed (attempt $attempt); a fresh role assignment may not have applied yet; retrying in ${delay}s"
  sleep "$delay"
  delay=$((delay * 2))
done
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

step "3/4 Event Grid subscriptions: each vault's system topic -> $event_function"
outputs="$(deploy_infra true)"
info "system topics: $(output_value systemTopicNames <<<"$outputs")"
# A deployment that succeeded without creating the subscriptions (an old template, a parameters file that
# turns them off) would leave every rotation unheard: the outputs must name one per vault.
python3 -c '
import json, sys
outputs = json.load(sys.stdin)
value = lambda name: (outputs.get(name) or {}).get("value")
topics = value("systemTopicNames") or []
subscriptions = value("eventSubscriptionIds")
if value("eventSubscriptionsDeployed") is not True or not isinstance(subscriptions, list):
    sys.exit("the deployment did not create the Event Grid subscriptions (its outputs do not say it did)")
missing = [t for t, s in zip(topics, subscriptions + [""] * len(topics)) if not s]
if len(subscriptions) != len(topics) or missing:
    sys.exit("no Event Grid subscription on: " + ", ".join(missing or topics))
for s in subscriptions:
    print("    subscribed: " + s.split("/providers/", 1)[-1])
' <<<"$outputs" || die "step 3 did not subscribe $event_function to every vault: rerun step 3 (scripts/deploy.sh --zip <the zip>); see 'Troubleshooting' in docs/deploy.md"

# The function list only proves the host read function.json; a binary that cannot run (another OS or CPU,
# a missing library) passes that. Ask the handler for a dry-run report: it must answer with one.
if [ "$skip_check" = false ]; then
  step "4/4 check: Refresh with dryRun=true must answer with a report"
  if [ -z "$check_secret" ]; then
    [ -n "$first_vault" ] || die "no vault to check with: pass --check-secret VAULT/SECRET or --skip-check"
    check_secret="$first_vault/adf-secret-refresh-deploy-check"
  fi
  host_name="$(az functionapp show -g "$resource_group" -n "$app_name" --query defaultHostName -o tsv)"
  "$repo_root/scripts/smoke-test.sh" --resource-group "$resource_group" --app "$app_name" \
    --host "$host_name" --vault "${check_secret%%/*}" --secret "${check_secret#*/}" \
    || die "the app did not answer with a report: see 'Troubleshooting' in docs/deploy.md; roll back with --zip <previous zip>"
fi

step "done"
info "Rotate a test secret to see it work (docs/deploy.md, 'Check that it works'):"
info "  az keyvault secret set --vault-name <vault> --name <secret> --value <new value>"
info "Reports land in container '$(output_value reportContainerName <<<"$outputs")' of storage account $(output_value storageAccountName <<<"$outputs")."
