"""WeChat Pay API v3's cryptography: request signatures, the pages' paySign, verifying what WeChat Pay signs
(answers and notifications) and decrypting notifications.

Every rule here is from the API v3 reference (wechatpay-v3.md, §2, §3 "JS side", §4, §5), whose test vectors
(§7) are this module's tests:

- a signed message is lines each ending in "\\n", the last included: the request's is method, canonical URL
  (path and query as sent), Unix seconds, nonce, body (empty for a GET); the pages' paySign's is appId,
  timeStamp, nonceStr, package (`prepay_id=...`); what WeChat Pay signs is timestamp, nonce, body;
- signatures are RSASSA-PKCS1-v1_5 with SHA-256, in Base64: ours with the merchant API private key, WeChat
  Pay's checked with the platform certificate or WeChat Pay public key named by `Wechatpay-Serial`;
- a notification's `resource` is AES-256-GCM with the APIv3 key: nonce and associated data as UTF-8, the
  ciphertext Base64 of the encrypted bytes followed by the 16-byte tag.

The verifier is stricter than the SDKs (§2): a signature is checked before anything is decrypted, a
timestamp more than 5 minutes from now is refused (wechatpayv3 checks none), a `WECHATPAY/SIGNTEST/` probe
is refused, and an absent `Wechatpay-Signature-Type` counts as RSA (as wechatpay-go and -java do).
"""

from __future__ import annotations

import base64
import binascii
import secrets
import time
import typing

from cryptography import x509
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

AUTH_SCHEME = "WECHATPAY2-SHA256-RSA2048"
SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"
# WeChat Pay probes a merchant's checks with signatures of this prefix that must be refused (§2).
SIGNTEST_PREFIX = "WECHATPAY/SIGNTEST/"
# Seconds between a signed timestamp and now past which the signature is refused (§2: wechatpay-go's rule).
TIMESTAMP_WINDOW = 300
# What a merchant's APIv3 key measures (§1, quoting chapter3_2_5).
API_V3_KEY_BYTES = 32
PUBLIC_KEY_ID_PREFIX = "PUB_KEY_ID_"


class SignatureRefused(Exception):
    """What WeChat Pay signed is not to be believed: the reason, for the log (never the key)."""


class DecryptFailed(Exception):
    """A notification's resource does not decrypt with our APIv3 key (a wrong or reset key, or forgery)."""


def load_private_key(pem: bytes) -> rsa.RSAPrivateKey:
    """The merchant API private key (apiclient_key.pem, PKCS#8 or PKCS#1). ValueError if it is no RSA key."""
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("the merchant API key is not an RSA private key")
    return key


def load_public_key(pem: bytes) -> rsa.RSAPublicKey:
    """A WeChat Pay public key (PEM "PUBLIC KEY") or a platform certificate's (PEM "CERTIFICATE")."""
    if b"CERTIFICATE" in pem:
        key = x509.load_pem_x509_certificate(pem).public_key()
    else:
        key = serialization.load_pem_public_key(pem)
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("not an RSA public key")
    return key


def certificate_serial(pem: bytes) -> str:
    """A platform certificate's serial as `Wechatpay-Serial` names it: upper-case hex."""
    return format(x509.load_pem_x509_certificate(pem).serial_number, "X")


def lines(*parts: str) -> str:
    """A message to sign: each part on a line of its own, every line ending in "\\n"."""
    return "".join(part + "\n" for part in parts)


def sign(key: rsa.RSAPrivateKey, message: str) -> str:
    """Base64 of RSASSA-PKCS1-v1_5 with SHA-256 over the message's UTF-8 bytes (deterministic)."""
    return base64.b64encode(key.sign(message.encode(), padding.PKCS1v15(), hashes.SHA256())).decode()


def new_nonce() -> str:
    """A request's nonce: 32 upper-case hex digits, as the SDKs make them."""
    return secrets.token_hex(16).upper()


def authorization(mchid: str, serial_no: str, key: rsa.RSAPrivateKey, method: str, url: str, body: bytes,
                  timestamp: int | None = None, nonce: str | None = None) -> str:
    """The `Authorization` header of a request: `url` is the path and query exactly as sent, `body` the
    exact bytes sent (b"" for a GET); `serial_no` the merchant certificate's serial."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    nonce = new_nonce() if nonce is None else nonce
    signature = sign(key, lines(method.upper(), url, str(timestamp), nonce, body.decode()))
    return (f'{AUTH_SCHEME} mchid="{mchid}",nonce_str="{nonce}",timestamp="{timestamp}",'
            f'serial_no="{serial_no}",signature="{signature}"')


def pay_sign(key: rsa.RSAPrivateKey, app_id: str, timestamp: str, nonce_str: str, prepay_id: str) -> str:
    """The `paySign` the pages hand to chooseWXPay (signType "RSA"): over appId, timeStamp, nonceStr and
    package, which is `prepay_id=<prepay_id>`, the prefix included."""
    return sign(key, lines(app_id, timestamp, nonce_str, f"prepay_id={prepay_id}"))


def verify_signature(key: rsa.RSAPublicKey, timestamp: str, nonce: str, body: bytes, signature: str) -> None:
    """Check WeChat Pay's signature of an answer or a notification. SignatureRefused if it does not hold."""
    if signature.startswith(SIGNTEST_PREFIX):
        raise SignatureRefused("a signature probe (WECHATPAY/SIGNTEST/)")
    try:
        raw = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureRefused("the signature is not Base64") from None
    message = timestamp.encode() + b"\n" + nonce.encode() + b"\n" + body + b"\n"
    try:
        key.verify(raw, message, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        raise SignatureRefused("the signature does not match") from None


class Verifier:
    """WeChat Pay's keys by the name `Wechatpay-Serial` gives them: platform certificate serials and
    `PUB_KEY_ID_…` ids side by side, as during a switch-over from certificates to the public key (§5)."""

    def __init__(self, keys: typing.Mapping[str, rsa.RSAPublicKey], window: int = TIMESTAMP_WINDOW) -> None:
        self.keys = dict(keys)
        self.window = window

    def verify(self, headers: typing.Mapping[str, str], body: bytes, now: float | None = None) -> None:
        """Check the signature headers of an answer or notification over its raw body, in this order: the
        key named, the signature type, a probe, the timestamp within the window, the signature.
        SignatureRefused with the first reason."""
        serial = headers.get("Wechatpay-Serial", "")
        key = self.keys.get(serial)
        if key is None:
            raise SignatureRefused(f"no key of ours is named {serial[:64]!r}")
        kind = headers.get("Wechatpay-Signature-Type", SIGNATURE_TYPE)
        if kind != SIGNATURE_TYPE:
            raise SignatureRefused(f"signature type {kind[:64]!r}")
        signature = headers.get("Wechatpay-Signature", "")
        if signature.startswith(SIGNTEST_PREFIX):
            raise SignatureRefused("a signature probe (WECHATPAY/SIGNTEST/)")
        timestamp = headers.get("Wechatpay-Timestamp", "")
        if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
            raise SignatureRefused("no timestamp")
        now = time.time() if now is None else now
        if abs(now - int(timestamp)) > self.window:
            raise SignatureRefused(f"a timestamp {int(now) - int(timestamp)} s from now")
        verify_signature(key, timestamp, headers.get("Wechatpay-Nonce", ""), body, signature)


def decrypt(api_v3_key: bytes, nonce: str, associated_data: str, ciphertext: str) -> bytes:
    """A notification resource's plaintext. DecryptFailed for a key that is no AES key, or a bad nonce,
    Base64 or tag. (A merchant's APIv3 key is 32 bytes, which the settings check; the SDKs' test vectors
    use 16-byte keys, which AES-GCM takes as well.)"""
    try:
        cipher = AESGCM(api_v3_key)
    except ValueError:
        raise DecryptFailed("the key is no AES key (16, 24 or 32 bytes)") from None
    try:
        data = base64.b64decode(ciphertext, validate=True)
    except (binascii.Error, ValueError):
        raise DecryptFailed("the ciphertext is not Base64") from None
    try:
        return cipher.decrypt(nonce.encode(), data, associated_data.encode())
    except (InvalidTag, ValueError):
        raise DecryptFailed("the ciphertext does not decrypt with this key") from None


def encrypt(api_v3_key: bytes, nonce: str, associated_data: str, plaintext: bytes) -> str:
    """The ciphertext WeChat Pay would send (for the fake WeChat Pay and tests): Base64 of data and tag."""
    return base64.b64encode(AESGCM(api_v3_key).encrypt(nonce.encode(), plaintext, associated_data.encode())).decode()
