"""Pictures carrying hostile metadata (comments, EXIF, XMP, ICC, PNG text chunks), and readers of what a
stored picture still holds: what the upload tests send and check."""

from __future__ import annotations

import io
import struct

from PIL import Image, ImageCms, PngImagePlugin

# What an attacker hides in a picture's metadata, hoping it is served back byte for byte.
PAYLOAD = b'"><script>alert(1)</script>'
XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/">' + PAYLOAD + b"</x:xmpmeta>"
EXIF_HEADER = b"Exif\x00\x00"
XMP_HEADER = b"http://ns.adobe.com/xap/1.0/"
ICC_SIGNATURE = b"acsp"
# PNG chunks that carry anything but pixels (text, EXIF, ICC, times).
PNG_METADATA = {b"tEXt", b"iTXt", b"zTXt", b"eXIf", b"iCCP", b"tIME", b"sRGB", b"gAMA", b"cHRM"}
SIZE = (40, 20)


def _exif() -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: turn 90° to display
    exif[0x010E] = PAYLOAD.decode()  # ImageDescription
    exif[0x8825] = {1: "N", 2: (39.0, 54.0, 0.0)}  # a GPS position
    return exif


def _icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _png_info() -> PngImagePlugin.PngInfo:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", PAYLOAD.decode())
    info.add_itxt("Description", PAYLOAD.decode(), lang="en")
    info.add_text("Author", PAYLOAD.decode() * 4, zip=True)
    return info


def hostile_jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", SIZE, (200, 30, 30)).save(out, "JPEG", comment=PAYLOAD, exif=_exif(), xmp=XMP,
                                               icc_profile=_icc())
    return out.getvalue()


def hostile_camera_jpeg() -> bytes:
    """A JPEG with a preview picture (MPO, as cameras write them), its comment and EXIF on the first."""
    out = io.BytesIO()
    main, preview = Image.new("RGB", SIZE, (30, 200, 30)), Image.new("RGB", (8, 4), (30, 30, 200))
    main.save(out, "MPO", save_all=True, append_images=[preview], comment=PAYLOAD, exif=_exif())
    return out.getvalue()


def hostile_png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", SIZE, (30, 30, 200)).save(out, "PNG", pnginfo=_png_info(), exif=_exif(), icc_profile=_icc())
    return out.getvalue()


def hostile_palette_png() -> bytes:
    """A palette PNG with a transparent colour (kept: it is part of the pixels) and text chunks."""
    out = io.BytesIO()
    img = Image.new("P", SIZE, 1)
    img.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    img.save(out, "PNG", pnginfo=_png_info(), transparency=0, exif=_exif())
    return out.getvalue()


def hostile_gif() -> bytes:
    out = io.BytesIO()
    Image.new("P", SIZE, 1).save(out, "GIF", comment=PAYLOAD)
    return out.getvalue()


# The accepted kinds: (name, bytes, the stored picture's extension, whether EXIF turned it upright).
ACCEPTED = [
    ("jpeg", hostile_jpeg, "jpg", True),
    ("camera-jpeg", hostile_camera_jpeg, "jpg", True),
    ("png", hostile_png, "png", True),
    ("palette-png", hostile_palette_png, "png", True),
]


def jpeg_segments(data: bytes) -> list[int]:
    """The markers of a JPEG's segments before its scan (0xE0 APP0, 0xFE COM, ...)."""
    assert data[:2] == b"\xff\xd8"
    markers, at = [], 2
    while at < len(data):
        marker = data[at + 1]
        if marker == 0xDA:
            break
        (length,) = struct.unpack(">H", data[at + 2:at + 4])
        markers.append(marker)
        at += 2 + length
    return markers


def png_chunks(data: bytes) -> list[bytes]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, at = [], 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at:at + 4])
        chunks.append(data[at + 4:at + 8])
        at += 12 + length
    return chunks


def assert_pixels_only(data: bytes, ext: str) -> None:
    """A stored picture holds its pixels and nothing an uploader could have written into it."""
    for hidden in (PAYLOAD, b"<script>", EXIF_HEADER, XMP_HEADER, ICC_SIGNATURE):
        assert hidden not in data, hidden
    if ext == "jpg":
        # APP0 (JFIF) and the segments that describe the pixels; no APPn past APP0, no comment.
        kept = set(jpeg_segments(data))
        assert not kept & ({0xFE} | set(range(0xE1, 0xF0))), sorted(hex(m) for m in kept)
    else:
        assert not set(png_chunks(data)) & PNG_METADATA, png_chunks(data)
    with Image.open(io.BytesIO(data)) as img:
        assert img.size == (SIZE[1], SIZE[0])  # stood upright, by the EXIF orientation
        assert not img.getexif() and "icc_profile" not in img.info and "comment" not in img.info
