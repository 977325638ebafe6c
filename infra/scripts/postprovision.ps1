# azd hook (postprovision and postdeploy; see azure.yaml): the PowerShell twin of
# postprovision.sh. Keeps the clientState secrets (SEED_CLIENT_STATE=false), writes the
# notification URLs (this app, each function's default key) to the Key Vault secrets
# notification-url / lifecycle-notification-url that NOTIFICATION_URL / LIFECYCLE_NOTIFICATION_URL
# reference, restarts the app, installs the on-prem sync key (onprem-sync-key, from Key Vault) on
# sync_completed_http the first time it exists (then SYNC_FUNCTION_DEPLOYED=true: Bicep keeps it
# set), and runs subscription_keeper once (set KICK_KEEPER=false to skip). Needs az and azd, and
# Key Vault Secrets Officer on the vault.
$ErrorActionPreference = 'Stop'
# a failed az/azd call stops the hook, as `set -e` does in postprovision.sh (PowerShell 7.3+)
$PSNativeCommandUseErrorActionPreference = $true

$rg = $env:AZURE_RESOURCE_GROUP
$app = $env:AZURE_FUNCTION_APP_NAME
$vault = $env:AZURE_KEY_VAULT_NAME
if (-not $rg -or -not $app -or -not $vault) { throw 'AZURE_RESOURCE_GROUP / AZURE_FUNCTION_APP_NAME / AZURE_KEY_VAULT_NAME are not set (run through azd)' }

azd env set SEED_CLIENT_STATE false | Out-Null
azd env set SEED_ONPREM_SYNC_KEY false | Out-Null

function Get-FunctionKey([string] $Function) {
    try {
        az functionapp function keys list -g $rg -n $app --function-name $Function --query default -o tsv 2>$null
    } catch { $null }
}

$hostName = az functionapp show -g $rg -n $app --query defaultHostName -o tsv
$notifyKey = Get-FunctionKey 'graph_notifications'
$lifecycleKey = Get-FunctionKey 'graph_lifecycle'
if (-not $notifyKey -or -not $lifecycleKey) {
    Write-Output 'postprovision: function keys not available yet (code not deployed); postdeploy sets the URLs'
    exit 0
}

$notificationUrl = "https://$hostName/api/graph/notifications?code=$notifyKey"
$lifecycleUrl = "https://$hostName/api/graph/lifecycle?code=$lifecycleKey"
function Get-SecretValue([string] $name) {
    try { az keyvault secret show --vault-name $vault -n $name --query value -o tsv 2>$null } catch { $null }
}
if ((Get-SecretValue 'notification-url') -ne $notificationUrl -or
    (Get-SecretValue 'lifecycle-notification-url') -ne $lifecycleUrl) {
    # each value reaches az on standard input ('@-', the newline PowerShell adds is dropped by
    # az): on az's command line it would stand in the process list while az runs
    $notificationUrl | az keyvault secret set --vault-name $vault -n notification-url --output none `
        --content-type 'Graph change-notification URL with the function key' --value '@-'
    $lifecycleUrl | az keyvault secret set --vault-name $vault -n lifecycle-notification-url --output none `
        --content-type 'Graph lifecycle-notification URL with the function key' --value '@-'
    az functionapp restart -g $rg -n $app --output none  # Key Vault references resolve anew
    Write-Output "postprovision: notification-url and lifecycle-notification-url set for $hostName"
} else {
    Write-Output "postprovision: notification URLs already point at $hostName"
}

if ($env:SYNC_FUNCTION_DEPLOYED -ne 'true') {
    $vault = $env:AZURE_KEY_VAULT_NAME
    if (-not $vault) { throw 'AZURE_KEY_VAULT_NAME is not set (run through azd)' }
    $syncKey = az keyvault secret show --vault-name $vault -n onprem-sync-key --query value -o tsv
    $syncKey | az functionapp function keys set -g $rg -n $app --function-name sync_completed_http `
        --key-name onprem-sync-key --key-value '@-' --output none
    azd env set SYNC_FUNCTION_DEPLOYED true | Out-Null
    Write-Output 'postprovision: onprem-sync-key installed on sync_completed_http (docs/operations.md)'
}

if ($env:KICK_KEEPER -ne 'false') {
    $master = az functionapp keys list -g $rg -n $app --query masterKey -o tsv
    $started = $false
    foreach ($attempt in 1..6) {
        try {
            Invoke-RestMethod -Method Post -Uri "https://$hostName/admin/functions/subscription_keeper" `
                -Headers @{ 'x-functions-key' = $master } -ContentType 'application/json' -Body '{"input": ""}' | Out-Null
            $started = $true
            break
        } catch { Start-Sleep -Seconds 20 }  # the app may still be restarting
    }
    if (-not $started) { Write-Warning 'postprovision: could not start subscription_keeper; it runs on its schedule' }
}

$principal = if ($env:AZURE_IDENTITY_PRINCIPAL_ID) { $env:AZURE_IDENTITY_PRINCIPAL_ID } else { '<identity object id>' }
Write-Output 'next: an admin grants Graph permissions once:'
Write-Output "  ./infra/scripts/grant-graph-permissions.ps1 -PrincipalId $principal"
