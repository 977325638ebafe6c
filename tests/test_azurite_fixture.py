from azure.storage.queue import QueueClient

from devhost.azurite import AzuriteEndpoints


def test_azurite_accepts_the_sdk_default_api_version(azurite: AzuriteEndpoints) -> None:
    """Azurite runs with --skipApiVersionCheck, so the SDK's newer x-ms-version is accepted."""
    queue = QueueClient.from_connection_string(azurite.connection_string, "fixture-check")
    queue.create_queue()
    queue.send_message("hello")

    assert [m.content for m in queue.receive_messages()] == ["hello"]
