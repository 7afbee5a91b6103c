"""WeChat Pay API v3's test vectors (tests/fakes/wechatpay_v3_vectors: the reference's §7, copied exactly)."""

from __future__ import annotations

from pathlib import Path

VECTORS = Path(__file__).resolve().parent.parent / "fakes" / "wechatpay_v3_vectors"


def vector(name: str) -> str:
    """One vector file's text, exactly (one-line bodies and signatures have no final newline)."""
    return (VECTORS / name).read_text(encoding="utf-8")
