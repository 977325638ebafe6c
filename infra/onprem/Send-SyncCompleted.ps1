<#
.SYNOPSIS
    Tells Entra License Guard that an Entra Connect sync cycle has completed.

.DESCRIPTION
    POSTs one SyncCompleted message to the app's HTTPS endpoint
    https://<app>.azurewebsites.net/api/directory/sync-completed with the endpoint's own function
    key ("onprem-sync-key") in the x-functions-key header. License Guard answers 202 and then
    walks the membership deltas of its licensed groups once, instead of waiting for its timer to
    notice the sync. The storage account allows no shared keys, so a SAS cannot work.

        {"type":"SyncCompleted","version":1,"tenantId":"<GUID>",
         "completedAt":"2026-03-01T07:30:00Z","source":"entra-connect","correlationId":"<GUID>"}

    Where the key comes from (never a command-line argument: the task definition shows those):
    * -KeyFile: a DPAPI-protected file, written once by the account that runs the task:
          Read-Host -AsSecureString 'onprem-sync-key' | Export-Clixml C:\LicenseGuard\sync-key.xml
      Only that account on this machine can decrypt it (Export-Clixml protects a SecureString
      with DPAPI, current-user scope); keep the folder's ACL to that account and Administrators.
    * -SecretName (and -Vault): PowerShell SecretManagement, e.g. a SecretStore or a Windows
      Credential Manager vault registered for the task's account:
          Set-Secret -Name onprem-sync-key -Vault LicenseGuard -Secret (Read-Host -AsSecureString)

    Optional, no key at all: -UseManagedIdentity with -QueueUrl puts the message on the
    "sync-completed" queue with the Azure Arc-enabled server's managed identity (Bicep grants
    "Storage Queue Data Message Sender" on that queue to onpremSenderPrincipalId). The Functions
    queue trigger reads Base64, so the body is Base64 of the same JSON.

    408, 429, 5xx and connection errors are retried with exponential back-off (-Attempts, -Backoff).
    Exit codes: 0 accepted; 1 refused (4xx: wrong key or message, a retry will not help);
    2 no key / bad arguments; 3 the app could not be reached or kept failing.

    Register it (elevated PowerShell on the Entra Connect server) to run after each sync cycle,
    triggered by the ADSync scheduler's event 904 in the Application log ("Completed configured
    scheduler operations"), as the account that owns the key file:

        $action = New-ScheduledTaskAction -Execute 'powershell.exe' -Argument ('-NoProfile ' +
            '-ExecutionPolicy Bypass -File C:\LicenseGuard\Send-SyncCompleted.ps1 ' +
            '-Url https://<app>.azurewebsites.net/api/directory/sync-completed ' +
            '-TenantId <tenant GUID> -KeyFile C:\LicenseGuard\sync-key.xml')
        $class = Get-CimClass MSFT_TaskEventTrigger root/Microsoft/Windows/TaskScheduler
        $trigger = New-CimInstance -CimClass $class -ClientOnly
        $trigger.Enabled = $true
        $trigger.Subscription = '<QueryList><Query Id="0" Path="Application"><Select ' +
            'Path="Application">*[System[Provider[@Name=''ADSync''] and EventID=904]]' +
            '</Select></Query></QueryList>'
        Register-ScheduledTask -TaskName 'License Guard - sync completed' -Action $action `
            -Trigger $trigger -User 'CONTOSO\svc-lg-sync' -Password '<its password>'

    Event 904 is also logged for other scheduler notices; an extra message costs one delta
    round and nothing else. Alternatively run it right after a manual cycle:

        Start-ADSyncSyncCycle -PolicyType Delta
        # wait until (Get-ADSyncScheduler).SyncCycleInProgress is $false, then:
        .\Send-SyncCompleted.ps1 -Url ... -TenantId ... -KeyFile C:\LicenseGuard\sync-key.xml

.PARAMETER Url
    https://<app>.azurewebsites.net/api/directory/sync-completed (no query string).

.PARAMETER KeyFile
    Export-Clixml file holding the function key as a SecureString (DPAPI).

.PARAMETER SecretName
    SecretManagement secret holding the function key (with -Vault, optional).

.PARAMETER QueueUrl
    https://<account>.queue.core.windows.net/sync-completed, with -UseManagedIdentity only.

.PARAMETER TenantId
    The Entra tenant (GUID) the sync exports to; the app refuses other tenants (422).

.PARAMETER CompletedAt
    When the cycle finished (default: now); sent in UTC.

.PARAMETER Source
    What ran: entra-connect (default) or cloud-sync.
#>
#Requires -Version 5.1
[CmdletBinding(DefaultParameterSetName = 'KeyFile')]
param(
    [Parameter(Mandatory, ParameterSetName = 'KeyFile')]
    [Parameter(Mandatory, ParameterSetName = 'Secret')]
    [ValidatePattern('^https://[^?]+/api/directory/sync-completed$')] [string] $Url,
    [Parameter(Mandatory, ParameterSetName = 'KeyFile')] [string] $KeyFile,
    [Parameter(Mandatory, ParameterSetName = 'Secret')] [string] $SecretName,
    [Parameter(ParameterSetName = 'Secret')] [string] $Vault,
    [Parameter(Mandatory, ParameterSetName = 'Identity')]
    [ValidatePattern('^https://[^?]+/[a-z0-9-]+$')] [string] $QueueUrl,
    [Parameter(Mandatory, ParameterSetName = 'Identity')] [switch] $UseManagedIdentity,
    [Parameter(Mandatory)] [guid] $TenantId,
    [datetime] $CompletedAt = [datetime]::UtcNow,
    [ValidateLength(1, 64)] [string] $Source = 'entra-connect',
    [ValidateRange(1, 20)] [int] $Attempts = 6,
    [ValidateRange(0, 300)] [double] $Backoff = 2
)
$ErrorActionPreference = 'Stop'
[Net.ServicePointManager]::SecurityProtocol = [Net.SecurityProtocolType]::Tls12

function Get-PlainKey {
    # The function key, decrypted only in memory; exit 2 when it cannot be had.
    try {
        $secure = if ($KeyFile) { Import-Clixml -Path $KeyFile }
                  else {
                      $from = @{ Name = $SecretName }
                      if ($Vault) { $from['Vault'] = $Vault }
                      Get-Secret @from
                  }
    } catch {
        Write-Error "no key: $($_.Exception.Message)" -ErrorAction Continue
        exit 2
    }
    if ($secure -is [string]) { return $secure }
    return [Net.NetworkCredential]::new('', $secure).Password
}

function Get-ArcStorageToken {
    # Azure Arc's identity endpoint answers 401 with a key file path; reading that file proves
    # the caller is privileged on this machine, and its content is the Basic credential.
    $endpoint = if ($env:IDENTITY_ENDPOINT) { $env:IDENTITY_ENDPOINT } else {
        'http://localhost:40342/metadata/identity/oauth2/token' }
    $uri = $endpoint + '?api-version=2020-06-01&resource=https%3A%2F%2Fstorage.azure.com%2F'
    $challenge = $null
    try {
        Invoke-WebRequest -Uri $uri -Headers @{ Metadata = 'true' } -UseBasicParsing | Out-Null
    } catch {
        $headers = $_.Exception.Response.Headers
        $challenge = if ($headers -is [Net.WebHeaderCollection]) { $headers['WWW-Authenticate'] }
                     else { [string]$headers.WwwAuthenticate }
    }
    if (-not ($challenge -match 'Basic realm=(.+)$')) { throw "No Arc identity challenge from $endpoint" }
    # Only the agent's own key file, as the Azure SDKs check: whatever answers on the identity
    # port could otherwise name any file this account can read, and be sent its content.
    $keyFile = [IO.Path]::GetFullPath($Matches[1].Trim())
    $tokens = [IO.Path]::Combine($env:ProgramData, 'AzureConnectedMachineAgent', 'Tokens')
    $inTokens = $keyFile.StartsWith($tokens + '\', [StringComparison]::OrdinalIgnoreCase)
    if (-not $inTokens -or [IO.Path]::GetExtension($keyFile) -ne '.key' -or
        (Get-Item -LiteralPath $keyFile).Length -gt 4096) {
        throw "The Arc identity challenge names $keyFile, not a key file of the Arc agent in $tokens"
    }
    $secret = (Get-Content -Raw -LiteralPath $keyFile).Trim()
    $token = Invoke-RestMethod -Uri $uri -Headers @{ Metadata = 'true'; Authorization = "Basic $secret" }
    return $token.access_token
}

function Get-StatusCode($ErrorRecord) {
    # $null when no HTTP answer came back (DNS, TCP, TLS, timeout): worth a retry.
    $response = $ErrorRecord.Exception.Response
    if ($null -eq $response) { return $null }
    return [int]$response.StatusCode
}

$message = [ordered]@{
    type          = 'SyncCompleted'
    version       = 1
    tenantId      = $TenantId.ToString()
    completedAt   = $CompletedAt.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss'Z'",
                        [Globalization.CultureInfo]::InvariantCulture)
    source        = $Source
    correlationId = [guid]::NewGuid().ToString()
}
$json = $message | ConvertTo-Json -Compress

if ($UseManagedIdentity) {
    $text = [Convert]::ToBase64String([Text.Encoding]::UTF8.GetBytes($json))
    $body = "<QueueMessage><MessageText>$text</MessageText></QueueMessage>"
    $uri = "$QueueUrl/messages"
    $contentType = 'application/xml; charset=utf-8'
    $headers = @{ 'x-ms-version' = '2021-08-06'; Authorization = 'Bearer ' + (Get-ArcStorageToken) }
    $accepted = 201  # Put Message: Created
} else {
    $body = [Text.Encoding]::UTF8.GetBytes($json)
    $uri = $Url
    $contentType = 'application/json; charset=utf-8'
    $headers = @{ 'x-functions-key' = (Get-PlainKey) }
    $accepted = 202  # the app queued it
}

for ($attempt = 1; ; $attempt++) {
    try {
        # -MaximumRedirection 0: a redirect (App Service Authentication's sign-in page, a proxy)
        # would be followed with the key header, and its page taken for accepted. Windows
        # PowerShell throws on the redirect; PowerShell 7 may hand the 3xx back instead: only a
        # 2xx is accepted either way. Only the answer of the one asked: the app's 202, the
        # queue's 201; another 2xx (a TLS-inspecting proxy's page, a wrong host) queued nothing.
        $answer = Invoke-WebRequest -Method Post -Uri $uri -Headers $headers -Body $body `
            -ContentType $contentType -TimeoutSec 30 -MaximumRedirection 0 -UseBasicParsing
        $code = [int]$answer.StatusCode
        if ($code -ne $accepted) {
            $where = if ($answer.Headers['Location']) { " (a redirect to $($answer.Headers['Location']))" } else { '' }
            Write-Error "refused: HTTP $code$where, not the expected $accepted`: nothing was queued" -ErrorAction Continue
            exit 1
        }
        Write-Output "SyncCompleted accepted: $json"
        exit 0
    } catch {
        $status = Get-StatusCode $_
        if ($null -ne $status -and $status -ne 408 -and $status -ne 429 -and $status -lt 500) {
            $hint = if ($status -eq 401) { ' (key not accepted: rotated? see docs/operations.md)' } else { '' }
            Write-Error "refused: HTTP $status$hint $($_.ErrorDetails.Message)" -ErrorAction Continue
            exit 1
        }
        if ($attempt -ge $Attempts) {
            Write-Error "gave up after $Attempts tries: $($_.Exception.Message)" -ErrorAction Continue
            exit 3
        }
        $wait = $Backoff * [math]::Pow(2, $attempt - 1)
        Write-Warning "try ${attempt}: $($_.Exception.Message); again in ${wait}s"
        Start-Sleep -Milliseconds ([int]($wait * 1000))
    }
}
