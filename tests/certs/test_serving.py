"""The serving certificate the extension keeps: which one it reuses and which it re-issues."""

from __future__ import annotations

import base64
import datetime

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


# -- the Secret over time: settle() ------------------------------------------------------------------
SERVICE, NAMESPACE = "driftguard-extension", "driftguard-system"
NOW = datetime.datetime.now(datetime.UTC)


def round_trip(state: serving.TLSState) -> serving.TLSState | None:
    return serving._decode(serving._encode(state, "tls", NAMESPACE, None))


def test_a_new_secret_has_one_ca_that_signs_and_is_trusted_and_settles_without_change() -> None:
    state = serving.settle(None, SERVICE, NAMESPACE, NOW)
    assert pki.issued_by(state.leaf.cert_pem, state.ca.cert_pem)
    assert state.trusted == (state.ca.cert_pem,) and state.next_ca is None
    assert round_trip(state) == state
    assert serving.settle(round_trip(state), SERVICE, NAMESPACE, NOW + datetime.timedelta(days=30)) == state


def test_a_ca_near_its_end_is_trusted_beside_its_successor_before_the_successor_signs() -> None:
    old = pki.new_ca("old", days=3)
    leaf = pki.new_serving_cert(old, "x", DNS, ["127.0.0.1"], days=1)
    start = serving.TLSState(old, leaf, (old.cert_pem,))
    due = NOW + datetime.timedelta(days=2, hours=12)  # less than a third of the CA's life left

    # Phase 1: a successor, trusted at once; the old CA still signs.
    first = serving.settle(start, SERVICE, NAMESPACE, due)
    assert first.next_ca is not None and first.next_since == due
    assert first.ca == old and pki.issued_by(first.leaf.cert_pem, old.cert_pem)
    assert first.trusted == (old.cert_pem, first.next_ca.cert_pem)
    assert round_trip(first) == first
    later = due + serving.CA_OVERLAP - datetime.timedelta(seconds=1)
    assert serving.settle(first, SERVICE, NAMESPACE, later) == first, "no change inside the overlap"

    # Phase 2: after the overlap the successor signs; the old CA stays trusted for what it signed.
    second = serving.settle(first, SERVICE, NAMESPACE, due + serving.CA_OVERLAP)
    assert second.ca == first.next_ca and second.next_ca is None and second.next_since is None
    assert pki.issued_by(second.leaf.cert_pem, second.ca.cert_pem)
    assert second.trusted == (second.ca.cert_pem, old.cert_pem)
    assert b"".join(second.trusted) == second.serving().ca_bundle

    # Once the old CA has expired it leaves the caBundle.
    third = serving.settle(second, SERVICE, NAMESPACE, NOW + datetime.timedelta(days=4))
    assert third.trusted == (second.ca.cert_pem,) and third.ca == second.ca


def test_an_expired_ca_is_replaced_at_once_for_there_is_nothing_to_overlap_with() -> None:
    old = pki.new_ca("old", days=1)
    start = serving.TLSState(old, pki.new_serving_cert(old, "x", DNS, ["127.0.0.1"]), (old.cert_pem,))
    state = serving.settle(start, SERVICE, NAMESPACE, NOW + datetime.timedelta(days=2))
    assert state.ca != old and state.trusted == (state.ca.cert_pem,)
    assert pki.issued_by(state.leaf.cert_pem, state.ca.cert_pem)


def test_a_secret_written_before_ca_bundles_reads_as_trusting_its_one_ca() -> None:
    state = serving.settle(None, SERVICE, NAMESPACE, NOW)
    secret = serving._encode(state, "tls", NAMESPACE, None)
    assert secret.data is not None
    del secret.data["ca-bundle.crt"]
    assert serving._decode(secret) == state


def test_a_ca_without_its_last_newline_settles_without_growing_the_bundle() -> None:
    state = serving.settle(None, SERVICE, NAMESPACE, NOW)
    secret = serving._encode(state, "tls", NAMESPACE, None)
    assert secret.data is not None
    ca_pem = state.ca.cert_pem.rstrip(b"\n")
    secret.data["ca.crt"] = base64.b64encode(ca_pem).decode()
    decoded = serving._decode(secret)
    assert decoded is not None
    settled = serving.settle(decoded, SERVICE, NAMESPACE, NOW)
    assert settled.trusted == (state.ca.cert_pem,)
    assert serving.settle(settled, SERVICE, NAMESPACE, NOW) == settled


def test_a_next_ca_whose_start_time_was_lost_overlaps_again_instead_of_signing_at_once() -> None:
    old = pki.new_ca("old", days=3)
    start = serving.TLSState(old, pki.new_serving_cert(old, "x", DNS, ["127.0.0.1"], days=1), (old.cert_pem,))
    due = NOW + datetime.timedelta(days=2, hours=12)
    first = serving.settle(start, SERVICE, NAMESPACE, due)
    lost = serving.TLSState(first.ca, first.leaf, first.trusted, first.next_ca, None)
    again = serving.settle(lost, SERVICE, NAMESPACE, due + datetime.timedelta(hours=1))
    assert again.ca == old and again.next_since == due + datetime.timedelta(hours=1)


def test_corrupt_secret_data_reads_as_nothing_usable() -> None:
    state = serving.settle(None, SERVICE, NAMESPACE, NOW)
    secret = serving._encode(state, "tls", NAMESPACE, None)
    assert secret.data is not None
    secret.data["ca.crt"] = "%%% not base64 %%%"
    assert serving._decode(secret) is None
