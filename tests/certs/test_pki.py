"""certs: chains, SANs and usages, checked by cryptography and by `openssl verify`."""

from __future__ import annotations

import datetime
import ipaddress
import subprocess
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from certs import controlplane, files, pki
from certs.__main__ import main as certs_cli


@pytest.fixture(scope="module")
def ca() -> pki.KeyPair:
    return pki.new_ca("test-ca")


def openssl_verify(tmp_path: Path, ca: pki.KeyPair, leaf: pki.KeyPair, purpose: str) -> str:
    (tmp_path / "ca.pem").write_bytes(ca.cert_pem)
    (tmp_path / "leaf.pem").write_bytes(leaf.cert_pem)
    result = subprocess.run(
        [
            "openssl",
            "verify",
            "-purpose",
            purpose,
            "-CAfile",
            str(tmp_path / "ca.pem"),
            str(tmp_path / "leaf.pem"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout + result.stderr


def test_a_ca_is_self_signed_and_may_sign_leaves_only(ca: pki.KeyPair) -> None:
    cert = ca.cert
    assert cert.issuer == cert.subject
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca and constraints.path_length == 0
    assert pki.issued_by(ca.cert_pem, ca.cert_pem)


def test_a_serving_cert_carries_dns_and_ip_sans_and_server_auth(tmp_path: Path, ca: pki.KeyPair) -> None:
    leaf = pki.new_serving_cert(
        ca, "driftguard-extension", ["driftguard-extension.driftguard-system.svc", "localhost"], ["127.0.0.1"]
    )
    sans = leaf.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == [
        "driftguard-extension.driftguard-system.svc",
        "localhost",
    ]
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    usages = leaf.cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usages) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert pki.issued_by(leaf.cert_pem, ca.cert_pem)
    assert "leaf.pem: OK" in openssl_verify(tmp_path, ca, leaf, "sslserver")
    assert "leaf.pem: OK" not in openssl_verify(tmp_path, ca, leaf, "sslclient")


def test_a_client_cert_names_user_and_groups_for_clientauth_only(tmp_path: Path, ca: pki.KeyPair) -> None:
    leaf = pki.new_client_cert(ca, "kubernetes-admin", ["system:masters", "team-a"])
    subject = leaf.cert.subject
    assert subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "kubernetes-admin"
    assert [a.value for a in subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == [
        "system:masters",
        "team-a",
    ]
    assert "leaf.pem: OK" in openssl_verify(tmp_path, ca, leaf, "sslclient")
    assert "leaf.pem: OK" not in openssl_verify(tmp_path, ca, leaf, "sslserver")


def test_a_leaf_from_another_ca_is_refused_by_both_checks(tmp_path: Path, ca: pki.KeyPair) -> None:
    stranger = pki.new_client_cert(pki.new_ca("other-ca"), "mallory")
    assert not pki.issued_by(stranger.cert_pem, ca.cert_pem)
    assert "leaf.pem: OK" not in openssl_verify(tmp_path, ca, stranger, "sslclient")


def test_a_serving_cert_without_sans_or_with_a_bad_ip_is_refused(ca: pki.KeyPair) -> None:
    with pytest.raises(pki.CertError, match="at least one DNS name or IP address"):
        pki.new_serving_cert(ca, "nameless")
    with pytest.raises(pki.CertError, match="does not appear to be an IPv4 or IPv6 address"):
        pki.new_serving_cert(ca, "bad-ip", ip_addresses=["300.1.1.1"])


def test_a_leaf_never_outlives_its_ca() -> None:
    short_ca = pki.new_ca("short", days=2)
    leaf = pki.new_serving_cert(short_ca, "x", ["x"], days=365)
    assert leaf.cert.not_valid_after_utc <= short_ca.cert.not_valid_after_utc


def test_rotation_is_due_in_the_last_third_of_the_lifetime(ca: pki.KeyPair) -> None:
    leaf = pki.new_serving_cert(ca, "x", ["x"], days=90)
    issued = leaf.cert.not_valid_before_utc
    assert not pki.needs_rotation(leaf.cert_pem, issued + datetime.timedelta(days=50))
    assert pki.needs_rotation(leaf.cert_pem, issued + datetime.timedelta(days=61))
    assert pki.needs_rotation(b"not a certificate")


def test_pairs_round_trip_through_files_with_a_private_key_mode(tmp_path: Path, ca: pki.KeyPair) -> None:
    files.write_pair(tmp_path, "ca", ca)
    assert (tmp_path / "ca.key").stat().st_mode & 0o777 == 0o600
    assert files.read_pair(tmp_path, "ca") == ca
    (tmp_path / "ca.crt").write_text("garbage")
    with pytest.raises(pki.CertError, match=r"ca\.crt"):
        files.read_pair(tmp_path, "ca")


def test_control_plane_pki_is_complete_and_a_second_run_keeps_it(tmp_path: Path) -> None:
    first = controlplane.ensure(tmp_path, "https://127.0.0.1:6443")
    assert set(first.created) == {
        "ca", "front-proxy-ca", "apiserver", "front-proxy-client", "sa",
        *(c.name for c in controlplane.CLIENTS),
    }  # fmt: skip
    second = controlplane.ensure(tmp_path, "https://127.0.0.1:6443")
    assert second.created == []

    ca = files.read_pair(tmp_path, "ca")
    front_proxy_ca = files.read_pair(tmp_path, "front-proxy-ca")
    proxy_client = files.read_pair(tmp_path, "front-proxy-client")
    assert pki.issued_by(proxy_client.cert_pem, front_proxy_ca.cert_pem)
    assert not pki.issued_by(proxy_client.cert_pem, ca.cert_pem), "front-proxy CA must be separate"
    assert "leaf.pem: OK" in openssl_verify(tmp_path, front_proxy_ca, proxy_client, "sslclient")

    apiserver = files.read_pair(tmp_path, "apiserver")
    sans = apiserver.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "kubernetes.default.svc" in sans.get_values_for_type(x509.DNSName)
    assert ipaddress.ip_address("127.0.0.1") in sans.get_values_for_type(x509.IPAddress)
    assert "leaf.pem: OK" in openssl_verify(tmp_path, ca, apiserver, "sslserver")

    admin = yaml.safe_load((tmp_path / "admin.kubeconfig").read_text())
    assert admin["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:6443"


def test_a_replaced_ca_reissues_every_leaf_it_signed(tmp_path: Path) -> None:
    controlplane.ensure(tmp_path, "https://127.0.0.1:6443")
    (tmp_path / "ca.crt").unlink()
    report = controlplane.ensure(tmp_path, "https://127.0.0.1:6443")
    assert {"ca", "apiserver", "admin", "kube-scheduler"} <= set(report.created)
    assert "front-proxy-client" in report.kept
    ca = files.read_pair(tmp_path, "ca")
    assert pki.issued_by(files.read_pair(tmp_path, "admin").cert_pem, ca.cert_pem)


def test_the_cli_makes_a_chain_that_openssl_accepts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert certs_cli(["ca", "--out", str(tmp_path / "ca"), "--cn", "cli-ca"]) == 0
    assert certs_cli(
        ["serving", "--ca", str(tmp_path / "ca"), "--out", str(tmp_path / "web"), "--cn", "web",
         "--dns", "web.example.svc", "--ip", "127.0.0.1"]
    ) == 0  # fmt: skip
    assert (
        certs_cli(["client", "--ca", str(tmp_path / "ca"), "--out", str(tmp_path / "me"), "--cn", "me"]) == 0
    )
    assert certs_cli(
        ["kubeconfig", "--ca", str(tmp_path / "ca"), "--client", str(tmp_path / "me"),
         "--server", "https://127.0.0.1:6443", "--out", str(tmp_path / "kubeconfig")]
    ) == 0  # fmt: skip
    ca, web = files.read_pair(tmp_path, "ca"), files.read_pair(tmp_path, "web")
    assert "leaf.pem: OK" in openssl_verify(tmp_path, ca, web, "sslserver")
    assert yaml.safe_load((tmp_path / "kubeconfig").read_text())["users"][0]["name"] == "admin"


def test_the_cli_reports_a_missing_ca_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        certs_cli(["client", "--ca", str(tmp_path / "nope"), "--out", str(tmp_path / "x"), "--cn", "x"]) == 1
    )
    err = capsys.readouterr().err
    assert err.strip() == f"error: {tmp_path / 'nope.crt'} does not exist"
