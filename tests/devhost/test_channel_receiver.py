"""The demo's alert-channel receiver checks signatures itself (devhost imports nothing of the
service): its check must accept what the service signs, and nothing else."""

from __future__ import annotations

from devhost import channel_receiver
from shared.render import channel_payloads


def test_the_receiver_accepts_the_services_signature_and_rejects_others() -> None:
    body = b'{"digestId": "digest-1"}'
    signed = channel_payloads.signature("s3cret", body)

    assert channel_receiver.signature_valid("s3cret", body, signed)
    assert not channel_receiver.signature_valid("other", body, signed)
    assert not channel_receiver.signature_valid("s3cret", body + b" ", signed)


def test_the_receiver_reads_the_headers_the_service_sends() -> None:
    assert channel_receiver.DIGEST_HEADER == channel_payloads.DIGEST_HEADER
    assert channel_receiver.SIGNATURE_HEADER == channel_payloads.SIGNATURE_HEADER
