"""The serving certificate the extension keeps: which one it reuses and which it re-issues."""

from __future__ import annotations

from certs import pki, serving

DNS = serving.service_dns_names("driftguard-extension", "driftguard-system")


def secret(ips: list[str]) -> serving.ServingSecret:
    ca = pki.new_ca("test-ca")
    leaf = pki.new_serving_cert(ca, "driftguard-extension.driftguard-system.svc", DNS, ips)
    return serving.ServingSecret(ca.cert_pem, leaf.cert_pem, leaf.key_pem)


def test_a_certificate_with_the_service_names_and_the_loopback_ip_is_reused() -> None:
    assert serving._usable(secret(["127.0.0.1"]), DNS)


def test_a_certificate_without_the_loopback_ip_the_webhook_urls_need_is_reissued() -> None:
    assert not serving._usable(secret([]), DNS)
