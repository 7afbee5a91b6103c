"""A test certificate authority made in the test: the fake WeChat Pay's server certificate (127.0.0.1), the
merchant's API client certificate (as WeChat Pay issues apiclient_cert.p12, with the mch_id as its password,
exported to PEM as wechatpay-refund.md §1.2 says), and a client certificate of another CA."""

from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclasses.dataclass(frozen=True)
class PKI:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    client_p12: Path
    stranger_cert: Path
    stranger_key: Path

    def server_context(self) -> ssl.SSLContext:
        """The fake's TLS: our CA's server certificate; a client certificate is checked when one is shown
        (CERT_OPTIONAL: the handshake fails on one of another CA, the secapi handler refuses a missing one)."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.server_cert, self.server_key)
        context.load_verify_locations(cafile=str(self.ca))
        context.verify_mode = ssl.CERT_OPTIONAL
        return context


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _cert(subject: str, key: ec.EllipticCurvePrivateKey, issuer: str, issuer_key: ec.EllipticCurvePrivateKey,
          *, ca: bool = False, server: bool = False) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=2))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
            key_encipherment=False, data_encipherment=False, key_agreement=False, encipher_only=False,
            decipher_only=False), critical=True)
    elif server:
        loopback = x509.IPAddress(ipaddress.ip_address("127.0.0.1"))
        builder = (builder.add_extension(x509.SubjectAlternativeName([loopback]), critical=False)
                   .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False))
    else:
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _write(path: Path, cert: x509.Certificate | None = None, key: ec.EllipticCurvePrivateKey | None = None) -> Path:
    if cert is not None:
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    else:
        assert key is not None
        path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return path


def make_pki(directory: Path, mch_id: str) -> PKI:
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("Test WeChat Pay CA", ca_key, "Test WeChat Pay CA", ca_key, ca=True)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = _cert("127.0.0.1", server_key, "Test WeChat Pay CA", ca_key, server=True)
    client_key = ec.generate_private_key(ec.SECP256R1())
    client = _cert(mch_id, client_key, "Test WeChat Pay CA", ca_key)
    # As WeChat Pay hands it out: one PKCS#12 file whose password is the merchant number (§1.2) ...
    p12 = directory / "apiclient_cert.p12"
    p12.write_bytes(pkcs12.serialize_key_and_certificates(
        b"apiclient", client_key, client, None, serialization.BestAvailableEncryption(mch_id.encode())))
    # ... exported to the two PEM files the server is configured with.
    loaded_key, loaded_cert, _ = pkcs12.load_key_and_certificates(p12.read_bytes(), mch_id.encode())
    stranger_ca_key = ec.generate_private_key(ec.SECP256R1())
    stranger_key = ec.generate_private_key(ec.SECP256R1())
    stranger = _cert(mch_id, stranger_key, "Someone Else's CA", stranger_ca_key)
    return PKI(
        ca=_write(directory / "ca.pem", ca),
        server_cert=_write(directory / "server.pem", server),
        server_key=_write(directory / "server.key", key=server_key),
        client_cert=_write(directory / "apiclient_cert.pem", loaded_cert),
        client_key=_write(directory / "apiclient_key.pem", key=loaded_key),  # type: ignore[arg-type]
        client_p12=p12,
        stranger_cert=_write(directory / "stranger.pem", stranger),
        stranger_key=_write(directory / "stranger.key", key=stranger_key),
    )
