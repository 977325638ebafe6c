<#
.SYNOPSIS
    Tells Entra License Guard that an Entra Connect sync cycle has completed.

.DESCRIPTION
    Puts one SyncCompleted message on the License Guard "sync-completed" Storage queue (Queue
    service REST API "Put Message"). License Guard then walks the membership deltas of its
    licensed groups once, instead of waiting for its timer to notice the sync.

    The message is UTF-8 JSON, Base64-encoded, because the Azure Functions queue trigger reads
    Base64 (a raw JSON body cannot be bound and ends up in sync-completed-poison):

        {"type":"SyncCompleted","version":1,"tenantId":"<GUID>",
         "completedAt":"2026-03-01T07:30:00Z","source":"entra-connect","correlationId":"<GUID>"}

    Authentication, one of:
    * -SasToken: a service SAS on this queue only, with Add permission only (sp=a), an expiry,
      ideally tied to a stored access policy so it can be revoked. Keep it out of source
      control; it is visible to local administrators of the sync server in the task definition.
    * -UseManagedIdentity: on an Azure Arc-enabled server, the machine's managed identity, which
      needs the "Storage Queue Data Message Sender" role on the queue. The account running the
      task must be a local administrator or in "Hybrid agent extension applications".

    Register it (elevated PowerShell on the Entra Connect server), e.g. triggered by the ADSync
    scheduler's event 904 in the Application log ("Completed configured scheduler operations"):

        $action = New-ScheduledTaskAction -Execute 'powershell.exe' -Argument ('-NoProfile ' +
            '-ExecutionPolicy Bypass -File C:\LicenseGuard\Send-SyncCompleted.ps1 ' +
            '-QueueUrl https://<account>.queue.core.windows.net/sync-completed ' +
            '-TenantId <tenant GUID> -UseManagedIdentity')
        $class = Get-CimClass MSFT_TaskEventTrigger root/Microsoft/Windows/TaskScheduler
        $trigger = New-CimInstance -CimClass $class -ClientOnly
        $trigger.Enabled = $true
        $trigger.Subscription = '<QueryList><Query Id="0" Path="Application"><Select ' +
            'Path="Application">*[System[Provider[@Name=''ADSync''] and EventID=904]]' +
            '</Select></Query></QueryList>'
        Register-ScheduledTask -TaskName 'License Guard - sync completed' -Action $action `
            -Trigger $trigger -User 'NT AUTHORITY\SYSTEM' -RunLevel Highest

    Event 904 is also logged for other scheduler notices; an extra message costs one delta
    round and nothing else. Alternatively run it right after a manual cycle:

        Start-ADSyncSyncCycle -PolicyType Delta
        # wait until (Get-ADSyncScheduler).SyncCycleInProgress is $false, then:
        .\Send-SyncCompleted.ps1 -QueueUrl ... -TenantId ... -SasToken $sas

.PARAMETER QueueUrl
    https://<account>.queue.core.windows.net/sync-completed (no query string).

.PARAMETER TenantId
    The Entra tenant (GUID) the sync exports to; License Guard ignores other tenants.

.PARAMETER SasToken
    A SAS with Add permission on this queue only (with or without the leading '?').

.PARAMETER UseManagedIdentity
    Use the Azure Arc-enabled server's managed identity instead of a SAS.

.PARAMETER CompletedAt
    When the cycle finished (default: now); sent in UTC.

.PARAMETER Source
    What ran: entra-connect (default) or cloud-sync.
#>
#Requires -Version 5.1
[CmdletBinding(DefaultParameterSetName = 'Sas')]
param(
    [Parameter(Mandatory)] [ValidatePattern('^https://[^?]+/[a-z0-9-]+$')] [string] $QueueUrl,
    [Parameter(Mandatory)] [guid] $TenantId,
    [Parameter(Mandatory, ParameterSetName = 'Sas')] [string] $SasToken,
    [Parameter(Mandatory, ParameterSetName = 'Identity')] [switch] $UseManagedIdentity,
    [datetime] $CompletedAt = [datetime]::UtcNow,
    [ValidateLength(1, 64)] [string] $Source = 'entra-connect'
)
$ErrorActionPreference = 'Stop'
[Net.ServicePointManager]::SecurityProtocol = [Net.SecurityProtocolType]::Tls12

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
    $secret = (Get-Content -Raw -Path $Matches[1].Trim()).Trim()
    $token = Invoke-RestMethod -Uri $uri -Headers @{ Metadata = 'true'; Authorization = "Basic $secret" }
    return $token.access_token
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
$text = [Convert]::ToBase64String([Text.Encoding]::UTF8.GetBytes($json))
$body = "<QueueMessage><MessageText>$text</MessageText></QueueMessage>"

$headers = @{ 'x-ms-version' = '2021-08-06' }
$uri = "$QueueUrl/messages"
if ($UseManagedIdentity) {
    $headers['Authorization'] = 'Bearer ' + (Get-ArcStorageToken)
} else {
    $uri += '?' + $SasToken.TrimStart('?')
}
Invoke-RestMethod -Method Post -Uri $uri -Headers $headers -Body $body `
    -ContentType 'application/xml; charset=utf-8' | Out-Null
Write-Output "SyncCompleted sent: $json"
