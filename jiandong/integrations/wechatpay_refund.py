"""WeChat Pay v2 refund messages: the refund notification's `req_info` decrypted, refundquery records read.

Facts from ../shared/reference/wechatpay-refund.md (§ numbers below are that document's).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import typing
import xml.etree.ElementTree as ET

import defusedxml
import defusedxml.ElementTree
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

# §3: req_info is String(1024) in the document; real ones (13 fields, §4.2) base64 to ~1050 characters, so
# the bound is ours and generous.
MAX_REQ_INFO = 8192
# refund_status of the notification (§3) and refund_status_$n of refundquery (§2).
SUCCESS, CLOSED, CHANGE, PROCESSING = "SUCCESS", "REFUNDCLOSE", "CHANGE", "PROCESSING"


class ReqInfoError(ValueError):
    """`req_info` is not what WeChat Pay encrypts with our key: bad base64, length, padding or XML."""


def aes_key(api_key: str) -> bytes:
    """The AES-256 key: the lower-case hex MD5 of the merchant API key, its 32 ASCII characters (§3)."""
    return hashlib.md5(api_key.encode()).hexdigest().encode()


def decrypt_req_info(req_info: str, api_key: str) -> dict[str, str]:
    """The fields of a refund notification's `req_info` (§3): base64, AES-256-ECB, strict 16-byte PKCS#7,
    then the flat `<root>` XML (values as text). ReqInfoError for anything else.

    ECB has no MAC (§3): a correct unpad and well-formed XML is all the integrity there is, so the caller
    must also check the fields against its own records (amounts, numbers).
    """
    if len(req_info) > MAX_REQ_INFO:
        raise ReqInfoError("req_info too long")
    try:
        data = base64.b64decode(req_info, validate=True)
    except (binascii.Error, ValueError):
        raise ReqInfoError("req_info is not base64") from None
    if not data or len(data) % 16:
        raise ReqInfoError("req_info is not whole AES blocks")
    decryptor = Cipher(algorithms.AES(aes_key(api_key)), modes.ECB()).decryptor()
    raw = decryptor.update(data) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        plain = unpadder.update(raw) + unpadder.finalize()
        text = plain.decode("utf-8")
    except ValueError:
        # A wrong key or a changed last block: the padding is gone (or the bytes are not UTF-8).
        raise ReqInfoError("req_info does not decrypt with our key") from None
    try:
        root = defusedxml.ElementTree.fromstring(text, forbid_dtd=True)
    except (ET.ParseError, defusedxml.DefusedXmlException, ValueError):
        raise ReqInfoError("req_info is not XML") from None
    if root.tag != "root":
        raise ReqInfoError(f"req_info root is <{root.tag}>")
    fields: dict[str, str] = {}
    for child in root:
        if not isinstance(child.tag, str) or len(child) or child.tag in fields:
            raise ReqInfoError("req_info is not flat")
        fields[child.tag] = (child.text or "").strip()
    return fields


class RefundRecord(typing.NamedTuple):
    """One `$n` record of a refundquery answer (§2)."""

    out_refund_no: str
    refund_id: str
    refund_fee: str
    refund_status: str
    success_time: str
    recv_account: str


def query_records(fields: typing.Mapping[str, str]) -> list[RefundRecord]:
    """The `$n` records of a refundquery answer, 0 .. refund_count-1 (§2, as WxJava reads them)."""
    count = fields.get("refund_count", "0")
    records = []
    for n in range(int(count) if count.isdigit() else 0):
        records.append(RefundRecord(
            fields.get(f"out_refund_no_{n}", ""),
            fields.get(f"refund_id_{n}", ""),
            fields.get(f"refund_fee_{n}", ""),
            fields.get(f"refund_status_{n}", ""),
            fields.get(f"refund_success_time_{n}", ""),
            # sic "accout" (§2)
            fields.get(f"refund_recv_accout_{n}", ""),
        ))
    return records
