#!/bin/sh
# azd hook (postprovision and postdeploy; see azure.yaml). POSIX sh, needs az and azd.
#
# 1. Keeps the clientState secrets from now on: SEED_CLIENT_STATE=false for later provisions.
# 2. Writes https://<host>/api/graph/notifications?code=<key> and .../lifecycle?code=<key> to the
#    Key Vault secrets notification-url / lifecycle-notification-url, which the app settings
#    NOTIFICATION_URL / LIFECYCLE_NOTIFICATION_URL reference (a function key never sits in a plain
#    app setting), replacing the placeholder, and restarts the app so the references resolve
#    again. Each URL carries its own function's default key, which exists once the code is
#    deployed; before that (first provision of `azd up`) this step waits for postdeploy. Needs
#    Key Vault Secrets Officer on the vault (the Bicep grants it to AZURE_PRINCIPAL_ID).
# 3. Installs the on-prem sync endpoint's own key, onprem-sync-key (Key Vault is its source), on
#    sync_completed_http the first time that function exists, and sets SYNC_FUNCTION_DEPLOYED
#    so every later `azd provision` sets it from Key Vault in Bicep (infra/app/api.bicep).
# 4. Runs subscription_keeper once (admin endpoint, master key) so the Graph subscription is
#    created now rather than at the next 6-hourly tick. The subscription is always made by the
#    keeper, never by hand. Set KICK_KEEPER=false to skip.
set -eu

rg="${AZURE_RESOURCE_GROUP:?AZURE_RESOURCE_GROUP is not set (run through azd)}"
app="${AZURE_FUNCTION_APP_NAME:?AZURE_FUNCTION_APP_NAME is not set (run through azd)}"
vault="${AZURE_KEY_VAULT_NAME:?AZURE_KEY_VAULT_NAME is not set (run through azd)}"

azd env set SEED_CLIENT_STATE false >/dev/null
azd env set SEED_ONPREM_SYNC_KEY false >/dev/null

function_key() {
  az functionapp function keys list -g "$rg" -n "$app" --function-name "$1" \
    --query default -o tsv 2>/dev/null || true
}

host="$(az functionapp show -g "$rg" -n "$app" --query defaultHostName -o tsv)"
notify_key="$(function_key graph_notifications)"
lifecycle_key="$(function_key graph_lifecycle)"
if [ -z "$notify_key" ] || [ -z "$lifecycle_key" ]; then
  echo "postprovision: function keys not available yet (code not deployed); postdeploy sets the URLs"
  exit 0
fi

notification_url="https://$host/api/graph/notifications?code=$notify_key"
lifecycle_url="https://$host/api/graph/lifecycle?code=$lifecycle_key"
secret_value() {
  az keyvault secret show --vault-name "$vault" -n "$1" --query value -o tsv 2>/dev/null || true
}
if [ "$(secret_value notification-url)" != "$notification_url" ] ||
   [ "$(secret_value lifecycle-notification-url)" != "$lifecycle_url" ]; then
  # each value reaches az on standard input (`@-`; printf is the shell's own): on az's command
  # line it would stand in the process list of this machine while az runs
  printf '%s' "$notification_url" |
    az keyvault secret set --vault-name "$vault" -n notification-url --output none \
      --content-type "Graph change-notification URL with the function key" --value @-
  printf '%s' "$lifecycle_url" |
    az keyvault secret set --vault-name "$vault" -n lifecycle-notification-url --output none \
      --content-type "Graph lifecycle-notification URL with the function key" --value @-
  az functionapp restart -g "$rg" -n "$app" --output none  # Key Vault references resolve anew
  echo "postprovision: notification-url and lifecycle-notification-url set for $host"
else
  echo "postprovision: notification URLs already point at $host"
fi

if [ "${SYNC_FUNCTION_DEPLOYED:-false}" != "true" ]; then
  sync_key="$(az keyvault secret show --vault-name "$vault" -n onprem-sync-key --query value -o tsv)"
  printf '%s' "$sync_key" |
    az functionapp function keys set -g "$rg" -n "$app" --function-name sync_completed_http \
      --key-name onprem-sync-key --key-value @- --output none
  azd env set SYNC_FUNCTION_DEPLOYED true >/dev/null
  echo "postprovision: onprem-sync-key installed on sync_completed_http (docs/operations.md)"
fi

if [ "${KICK_KEEPER:-true}" = "true" ]; then
  master="$(az functionapp keys list -g "$rg" -n "$app" --query masterKey -o tsv)"
  attempt=1
  # the key header comes from standard input (curl's -H @-): on the command line it would stand
  # in the process list of this machine while the call runs
  until printf 'x-functions-key: %s\n' "$master" | curl -fsS -o /dev/null -X POST \
      "https://$host/admin/functions/subscription_keeper" -H @- \
      -H "Content-Type: application/json" -d '{"input": ""}'; do
    if [ "$attempt" -ge 6 ]; then
      echo "postprovision: could not start subscription_keeper; it runs on its schedule" >&2
      break
    fi
    attempt=$((attempt + 1))
    sleep 20  # the app may still be restarting
  done
fi

principal="${AZURE_IDENTITY_PRINCIPAL_ID:-<identity object id>}"
echo "next: an admin grants Graph permissions once:"
echo "  infra/scripts/grant-graph-permissions.sh --principal-id $principal"
