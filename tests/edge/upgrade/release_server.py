"""A real HTTPS server (stdlib, in a thread) serving a release store the way /api/v1/releases does,
with a certificate from a throw-away CA, and a fault to inject: cut the connection mid-file."""

from __future__ import annotations

import datetime
import ipaddress
import re
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from contract.release import FILES_DIR, MANIFEST_NAME, SIGNATURE_NAME

TOKEN = "yw_test-release-token"


def make_ca_and_cert(directory: Path) -> tuple[Path, Path, Path]:
    """(ca.pem, server.pem, server.key) for 127.0.0.1, signed by a CA made here."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "yiwang test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_pem, cert_pem, key_pem = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    ca_pem.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return ca_pem, cert_pem, key_pem


@dataclass
class Faults:
    cut_after: dict[str, int] = field(default_factory=dict)
    """File name → bytes sent before the connection is cut, once per name."""
    ignore_range: bool = False
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    """(path, Range header) of every request."""


@dataclass
class ReleaseHttps:
    url: str
    ca: Path
    store: Path
    faults: Faults


_ROUTE = re.compile(r"^/api/v1/releases/([^/]+)/(manifest|signature|files/([^/]+))$")


@contextmanager
def serve_releases(store: Path, certs: Path) -> Iterator[ReleaseHttps]:
    ca, cert, key = make_ca_and_cert(certs)
    faults = Faults()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            faults.requests.append((self.path, self.headers.get("Range")))
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self._status(401)
                return
            match = _ROUTE.match(self.path)
            if match is None:
                self._status(404)
                return
            version, what, name = match.groups()
            root = store / version
            path = {
                "manifest": root / MANIFEST_NAME,
                "signature": root / SIGNATURE_NAME,
            }.get(what, root / FILES_DIR / (name or ""))
            if not path.is_file():
                self._status(404)
                return
            data = path.read_bytes()
            start = 0
            ranged = self.headers.get("Range")
            if ranged and not faults.ignore_range:
                start = int(ranged.removeprefix("bytes=").rstrip("-"))
                if start >= len(data):
                    self._status(416)
                    return
            body = data[start:]
            self.send_response(206 if start else 200)
            self.send_header("Content-Length", str(len(body)))
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.end_headers()
            cut = faults.cut_after.pop(name or "", None)
            if cut is not None:
                self.wfile.write(body[:cut])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(2)  # a network cut, not a clean end: the client sees too few bytes
                return
            self.wfile.write(body)

        def _status(self, code: int) -> None:
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield ReleaseHttps(f"https://127.0.0.1:{server.server_port}/api/v1/releases", ca, store, faults)
    finally:
        server.shutdown()
        server.server_close()
