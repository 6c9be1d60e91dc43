"""The webhook's certificates, pure: a self-signed CA and a serving certificate it signs
(knative.dev/pkg `webhook/certificates/resources`), as PEM, and when to replace them.

The serving certificate names the webhook Service (`<service>.<namespace>.svc` and
`.svc.cluster.local`, what the apiserver dials) plus any extra DNS names or IP addresses
(`127.0.0.1` when the apiserver calls a `url:` on the host). CA and serving certificate are
made and rotated together; `due()` says when: once less than `renew_before` of the serving
certificate's life is left, or when the stored set is unreadable or names other hosts.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_CERT = "ca-cert.pem"
SERVER_CERT = "server-cert.pem"
SERVER_KEY = "server-key.pem"
"""Secret keys, as Knative's `eventing-webhook-certs`."""


@dataclass(frozen=True, slots=True)
class Bundle:
    ca_cert: bytes
    server_cert: bytes
    server_key: bytes

    def to_data(self) -> dict[str, bytes]:
        return {CA_CERT: self.ca_cert, SERVER_CERT: self.server_cert, SERVER_KEY: self.server_key}

    @classmethod
    def from_data(cls, data: dict[str, bytes]) -> Bundle | None:
        try:
            return cls(data[CA_CERT], data[SERVER_CERT], data[SERVER_KEY])
        except KeyError:
            return None


def hosts_of(service: str, namespace: str, extra: Sequence[str] = ()) -> tuple[str, ...]:
    base = (f"{service}.{namespace}.svc", f"{service}.{namespace}.svc.cluster.local")
    return (*base, *extra)


def _names(hosts: Sequence[str]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = []
    for host in hosts:
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            out.append(x509.DNSName(host))
    return out


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def generate(hosts: Sequence[str], valid: datetime.timedelta, now: datetime.datetime) -> Bundle:
    """A fresh CA and a serving certificate for `hosts`, both valid `valid` from `now`."""
    start, end = now - datetime.timedelta(minutes=5), now + valid
    ca_key, key = _key(), _key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kevents-webhook-ca")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )  # fmt: skip
        .sign(ca_key, hashes.SHA256())
    )
    server = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.SubjectAlternativeName(_names(hosts)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return Bundle(
        ca.public_bytes(serialization.Encoding.PEM),
        server.public_bytes(serialization.Encoding.PEM),
        _pem_key(key),
    )


def due(
    bundle: Bundle | None,
    hosts: Sequence[str],
    renew_before: datetime.timedelta,
    now: datetime.datetime,
) -> str | None:
    """Why `bundle` must be replaced now, or None while it is good."""
    if bundle is None:
        return "no certificate yet"
    try:
        server = x509.load_pem_x509_certificate(bundle.server_cert)
        x509.load_pem_x509_certificate(bundle.ca_cert)
        serialization.load_pem_private_key(bundle.server_key, password=None)
    except ValueError as exc:
        return f"the stored certificate is unreadable ({exc})"
    if server.not_valid_after_utc - renew_before <= now:
        return f"the serving certificate expires at {server.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ}"
    try:
        names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return "the serving certificate names no host"
    have = {str(n.value) for n in names}
    if not set(hosts) <= have:
        return f"the serving certificate names {sorted(have)}, not {sorted(hosts)}"
    return None


def expiry(bundle: Bundle) -> datetime.datetime:
    return x509.load_pem_x509_certificate(bundle.server_cert).not_valid_after_utc
