"""Whole-process behaviour: TLS sinks trusted through K_CA_CERTS, and SIGTERM through
`runner.main` (uvloop) ending in a clean drain with exit code 0."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import os
import signal
import ssl
import sys
import tempfile
import textwrap
from collections.abc import AsyncIterator, Iterator

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kevents import cloudevent, errors, sender

HOST = "127.0.0.1"


@pytest.fixture(scope="module")
def certificate() -> Iterator[tuple[str, str, str]]:
    """A self-signed certificate for 127.0.0.1: (cert PEM, cert file, key file)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kevents-test-sink")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(HOST))]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    with tempfile.TemporaryDirectory() as tmp:
        cert_file, key_file = os.path.join(tmp, "tls.crt"), os.path.join(tmp, "tls.key")
        with open(cert_file, "w") as f:
            f.write(cert_pem)
        with open(key_file, "w") as f:
            f.write(key_pem)
        yield cert_pem, cert_file, key_file


@pytest.fixture
async def https_sink(certificate: tuple[str, str, str]) -> AsyncIterator[tuple[str, list[str]]]:
    _, cert_file, key_file = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    seen: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append(cloudevent.decode(request.headers, await request.read()).get_id())
        return web.Response(status=202)

    app = web.Application()
    app.router.add_post("/", handle)
    app_runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await app_runner.setup()
    await web.TCPSite(app_runner, HOST, 0, ssl_context=context).start()
    yield f"https://{HOST}:{app_runner.addresses[0][1]}/", seen
    await app_runner.cleanup()


async def test_https_sink_trusted_through_k_ca_certs(
    https_sink: tuple[str, list[str]], certificate: tuple[str, str, str]
) -> None:
    url, seen = https_sink
    async with sender.Sender(ca_certs=certificate[0]) as s:
        result = await s.send(cloudevent.build("t", "s", id="tls-1"), url)
    assert result.ok, result.error
    assert seen == ["tls-1"]


async def test_https_sink_without_the_ca_is_refused(https_sink: tuple[str, list[str]]) -> None:
    url, seen = https_sink
    async with sender.Sender() as s:
        result = await s.send(cloudevent.build("t", "s", id="tls-2"), url)
    assert result.status is None
    assert result.error is not None and "Certificate" in result.error
    assert seen == []


def test_invalid_ca_bundle_is_a_config_error() -> None:
    with pytest.raises(errors.ConfigError, match="K_CA_CERTS"):
        sender.Sender(ca_certs="-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")


PROGRAM = textwrap.dedent(
    """
    import asyncio, sys
    from kevents import runner

    class Worker:
        name = "worker"
        def __init__(self):
            self.started = asyncio.Event()
        async def wait_started(self):
            await self.started.wait()
        async def run(self):
            self.started.set()
            print("started", flush=True)
            await asyncio.Event().wait()
        async def stop(self):
            await asyncio.sleep(0.05)
            print("drained", flush=True)

    async def amain():
        return await runner.Runner([Worker()], grace=5).run()

    runner.main(amain)
    """
)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_signal_drains_and_exits_0(sig: signal.Signals) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", PROGRAM,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    assert await asyncio.wait_for(process.stdout.readline(), 20) == b"started\n"
    process.send_signal(sig)
    stdout, stderr = await asyncio.wait_for(process.communicate(), 20)
    assert stdout == b"drained\n", stderr.decode()
    assert process.returncode == 0
