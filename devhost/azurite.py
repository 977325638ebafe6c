"""Starts and stops Azurite (the Azure Storage emulator, from npm) on loopback for dev and tests.

Azurite runs with `--inMemoryPersistence --disableTelemetry --skipApiVersionCheck`: nothing is
written to disk, nothing phones home, and the storage SDK's newer API version is accepted.

By default it serves plain HTTP with the account key (the connection string). With a certificate
and key it serves HTTPS, and with ``oauth="basic"`` it also takes bearer tokens, the way Azure
Storage is reached by identity: Azurite checks a token's audience, issuer and lifetime (not its
signature), and accepts bearer tokens only over HTTPS.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "devstoreaccount1"
# Azurite's well-known development key: public, documented, and only valid against Azurite.
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


@dataclass(frozen=True)
class AzuriteEndpoints:
    host: str
    blob_port: int
    queue_port: int
    table_port: int
    scheme: str = "http"

    def _service_uri(self, port: int) -> str:
        return f"{self.scheme}://{self.host}:{port}/{ACCOUNT}"

    @property
    def blob_service_uri(self) -> str:
        """What ``AzureWebJobsStorage__blobServiceUri`` would say (path-style, Azurite's)."""
        return self._service_uri(self.blob_port)

    @property
    def queue_service_uri(self) -> str:
        return self._service_uri(self.queue_port)

    @property
    def table_service_uri(self) -> str:
        return self._service_uri(self.table_port)

    @property
    def connection_string(self) -> str:
        base = f"{self.scheme}://{self.host}"
        return (
            f"DefaultEndpointsProtocol={self.scheme};AccountName={ACCOUNT};AccountKey={DEV_KEY};"
            f"BlobEndpoint={base}:{self.blob_port}/{ACCOUNT};"
            f"QueueEndpoint={base}:{self.queue_port}/{ACCOUNT};"
            f"TableEndpoint={base}:{self.table_port}/{ACCOUNT};"
        )


def _listening(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def azurite_binary() -> str:
    local = ROOT / "node_modules" / ".bin" / "azurite"
    if local.exists():
        return str(local)
    found = shutil.which("azurite")
    if found:
        return found
    raise RuntimeError("Azurite is not installed: run `make setup` (npm ci installs it)")


class Azurite:
    """One Azurite process on free loopback ports; use as a context manager.

    `cert` and `key` (PEM files) switch it to HTTPS; `oauth="basic"` (HTTPS only) makes it
    accept bearer tokens besides the account key."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        ports: tuple[int, int, int] | None = None,
        *,
        cert: Path | None = None,
        key: Path | None = None,
        oauth: Literal["basic"] | None = None,
    ):
        if (cert is None) != (key is None):
            raise ValueError("Azurite serves HTTPS with both a certificate and its key")
        if oauth is not None and cert is None:
            raise ValueError(
                "Azurite accepts OAuth bearer tokens only over HTTPS: give cert and key"
            )
        blob, queue, table = ports or (_free_port(), _free_port(), _free_port())
        scheme = "https" if cert is not None else "http"
        self.endpoints = AzuriteEndpoints(host, blob, queue, table, scheme)
        self._tls = ["--cert", str(cert), "--key", str(key)] if cert is not None else []
        self._oauth = ["--oauth", oauth] if oauth is not None else []
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> AzuriteEndpoints:
        e = self.endpoints
        cmd = [
            azurite_binary(),
            "--inMemoryPersistence",
            "--disableTelemetry",
            "--skipApiVersionCheck",
            "--silent",
            "--blobHost", e.host, "--blobPort", str(e.blob_port),
            "--queueHost", e.host, "--queuePort", str(e.queue_port),
            "--tableHost", e.host, "--tablePort", str(e.table_port),
            *self._tls, *self._oauth,
        ]  # fmt: skip
        self._process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        ports = (e.blob_port, e.queue_port, e.table_port)
        while not all(_listening(e.host, p) for p in ports):
            if self._process.poll() is not None:
                err = self._process.stderr.read().decode() if self._process.stderr else ""
                raise RuntimeError(f"Azurite exited at start: {err.strip()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"Azurite did not listen on {ports} within {timeout:.0f} s")
            time.sleep(0.1)
        return e

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def __enter__(self) -> AzuriteEndpoints:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


def wipe_storage(connection_string: str, *, containers: bool = False) -> None:
    """Delete every queue and table (and, if asked, blob container) so one run's state cannot
    leak into the next: the names are contracts, so runs share them."""
    from azure.core.exceptions import ResourceNotFoundError  # noqa: PLC0415 - SDKs load on use
    from azure.data.tables import TableServiceClient  # noqa: PLC0415
    from azure.storage.blob import BlobServiceClient  # noqa: PLC0415
    from azure.storage.queue import QueueServiceClient  # noqa: PLC0415

    queues = QueueServiceClient.from_connection_string(connection_string)
    for queue in queues.list_queues():
        with contextlib.suppress(ResourceNotFoundError):
            queues.delete_queue(queue.name)
    tables = TableServiceClient.from_connection_string(connection_string)
    for table in tables.list_tables():
        with contextlib.suppress(ResourceNotFoundError):
            tables.delete_table(table.name)
    if containers:
        blobs = BlobServiceClient.from_connection_string(connection_string)
        for container in blobs.list_containers():
            with contextlib.suppress(ResourceNotFoundError):
                blobs.delete_container(container.name)
