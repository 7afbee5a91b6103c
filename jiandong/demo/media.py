"""Pictures (and, where ffmpeg is installed, a sample clip) for the demo club, made on this machine.

The demo must look right offline: every logo, cover, banner and photo it shows is drawn here with
Pillow and stored under the media directory (served at /media/). Text is drawn in Chinese when a
CJK font is installed, else in the Latin spelling each picture also carries.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import os
import shutil
import subprocess
import tempfile
import typing
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

logger = logging.getLogger(__name__)

FOLDER = "demo"
# Common places of a CJK font when fontconfig cannot be asked (Debian/Ubuntu, macOS, Windows).
CJK_FONT_PATHS = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/System/Library/Fonts/PingFang.ttc",
    "/System/Library/Fonts/STHeiti Medium.ttc",
    "C:\\Windows\\Fonts\\msyh.ttc",
    "C:\\Windows\\Fonts\\simhei.ttf",
)
SAMPLE_CLIP = f"{FOLDER}/videos/sample.mp4"
SAMPLE_CLIP_SECONDS = 6

Colour = tuple[int, int, int]
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


@dataclasses.dataclass(frozen=True)
class Picture:
    """One picture to draw: where it goes (relative to the media dir), its look and its text.

    `title`/`subtitle`/`badge` are drawn when a CJK font is found, their `latin_` spellings otherwise.
    `style`: "card" (a cover or banner), "round" (a logo or avatar: a disc with short text),
    "portrait" (a player photo: a silhouette with the shirt number as `title`).
    """

    path: str
    size: tuple[int, int]
    colour: Colour
    title: str
    latin: str
    subtitle: str = ""
    latin_subtitle: str = ""
    badge: str = ""
    latin_badge: str = ""
    style: str = "card"

    @property
    def format(self) -> str:
        return "PNG" if self.path.endswith(".png") else "JPEG"


def find_cjk_font() -> str | None:
    """The path of an installed font with Chinese glyphs, or None."""
    fc_list = shutil.which("fc-list")
    if fc_list:
        try:
            listed = subprocess.run([fc_list, ":lang=zh", "file"], capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            listed = ""
        paths = sorted(line.strip().rstrip(":") for line in listed.splitlines() if line.strip())
        # Regular weights read best on small pictures; any will do.
        for path in sorted(paths, key=lambda p: ("Bold" in p, "Light" in p or "Thin" in p, p)):
            if os.path.isfile(path):
                return path
    return next((path for path in CJK_FONT_PATHS if os.path.isfile(path)), None)


class Painter:
    """Draws pictures with one font choice: a CJK font's path, or None for Latin text."""

    def __init__(self, cjk_font: str | None) -> None:
        self.cjk_font = cjk_font
        self._fonts: dict[int, Font] = {}

    def font(self, size: int) -> Font:
        if size not in self._fonts:
            cjk = self.cjk_font
            self._fonts[size] = ImageFont.truetype(cjk, size) if cjk else ImageFont.load_default(size)
        return self._fonts[size]

    def texts(self, picture: Picture) -> tuple[str, str, str]:
        if self.cjk_font:
            return picture.title, picture.subtitle, picture.badge
        return picture.latin, picture.latin_subtitle, picture.latin_badge

    def fitted(self, draw: ImageDraw.ImageDraw, text: str, size: int, width: int) -> Font:
        """The largest font up to `size` in which `text` fits `width` pixels."""
        while size > 10 and draw.textlength(text, font=self.font(size)) > width:
            size -= 2
        return self.font(size)

    def draw(self, picture: Picture) -> bytes:
        """The encoded picture (PNG or JPEG by the path's extension)."""
        width, height = picture.size
        img = Image.new("RGB", picture.size, picture.colour)
        draw = ImageDraw.Draw(img)
        title, subtitle, badge = self.texts(picture)
        light = _mix(picture.colour, (255, 255, 255), 0.25)
        dark = _mix(picture.colour, (0, 0, 0), 0.35)
        if picture.style == "round":
            img.paste((250, 250, 250), (0, 0, width, height))
            draw.ellipse((4, 4, width - 5, height - 5), fill=picture.colour, outline=dark, width=max(2, width // 40))
            font = self.fitted(draw, title, height // 3, int(width * 0.72))
            draw.text((width / 2, height / 2), title, font=font, fill="white", anchor="mm")
        elif picture.style == "portrait":
            draw.rectangle((0, height * 2 // 3, width, height), fill=dark)
            draw.ellipse((width * 0.3, height * 0.14, width * 0.7, height * 0.44), fill=light)
            draw.rounded_rectangle((width * 0.18, height * 0.47, width * 0.82, height * 1.1), radius=width // 6,
                                   fill=light)
            font = self.fitted(draw, title, height // 5, width // 2)
            draw.text((width / 2, height * 0.72), title, font=font, fill=dark, anchor="mm")
        else:
            # A diagonal band and a darker foot, so a cover reads as a picture, not a flat colour.
            draw.polygon([(width * 0.55, 0), (width, 0), (width, height), (width * 0.25, height)], fill=light)
            draw.rectangle((0, height * 3 // 4, width, height), fill=dark)
            font = self.fitted(draw, title, height // 7, int(width * 0.9))
            draw.text((width / 2, height * 0.42), title, font=font, fill="white", anchor="mm",
                      stroke_width=2, stroke_fill=dark)
            if subtitle:
                font = self.fitted(draw, subtitle, height // 12, int(width * 0.9))
                draw.text((width / 2, height * 7 / 8), subtitle, font=font, fill="white", anchor="mm")
            if badge:
                self._badge(draw, badge, height)
        out = io.BytesIO()
        if picture.format == "PNG":
            img.save(out, "PNG", optimize=True)
        else:
            img.save(out, "JPEG", quality=82, optimize=True)
        return out.getvalue()

    def _badge(self, draw: ImageDraw.ImageDraw, text: str, height: int) -> None:
        font = self.font(max(12, height // 14))
        left, top, right, bottom = draw.textbbox((20, 18), text, font=font)
        draw.rounded_rectangle((left - 10, top - 6, right + 10, bottom + 6), radius=6, fill=(220, 38, 38))
        draw.text((20, 18), text, font=font, fill="white")


def _mix(colour: Colour, other: Colour, share: float) -> Colour:
    return typing.cast(Colour, tuple(round(a * (1 - share) + b * share) for a, b in zip(colour, other, strict=True)))


def write_pictures(root: Path, pictures: typing.Iterable[Picture], cjk_font: str | None) -> int:
    """Draw the pictures not already under `root`; how many were written."""
    painter = Painter(cjk_font)
    written = 0
    for picture in pictures:
        target = root / picture.path
        if target.is_file():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        _write_atomically(target, painter.draw(picture))
        written += 1
    return written


def _write_atomically(target: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        # mkstemp makes the file private; a web server in front may serve media/ as another user.
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def make_sample_clip(root: Path, ffmpeg: str | None) -> str | None:
    """A short H.264 test clip at SAMPLE_CLIP (relative path), made with ffmpeg; None without it.

    ffmpeg's built-in test pattern needs nothing downloaded; without ffmpeg there is no way to
    make a clip browsers play, and the demo's videos keep their placeholder URLs.
    """
    target = root / SAMPLE_CLIP
    if target.is_file():
        return SAMPLE_CLIP
    if not ffmpeg:
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(".sample.part.mp4")
    command = [
        ffmpeg, "-nostdin", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", f"testsrc2=size=640x360:rate=25:duration={SAMPLE_CLIP_SECONDS}",
        "-f", "lavfi", "-i", f"sine=frequency=440:duration={SAMPLE_CLIP_SECONDS}",
        "-c:v", "libx264", "-pix_fmt", "yuv420p", "-profile:v", "baseline", "-c:a", "aac", "-shortest",
        # The index first, so a browser starts playing before the whole file has arrived.
        "-movflags", "+faststart", str(tmp),
    ]
    try:
        subprocess.run(command, check=True, capture_output=True, timeout=120)
    except (OSError, subprocess.SubprocessError) as exc:
        tmp.unlink(missing_ok=True)
        stderr = getattr(exc, "stderr", b"") or b""
        logger.warning("could not make the demo's sample clip with %s: %s %s", ffmpeg, exc, stderr.decode()[-300:])
        return None
    os.chmod(tmp, 0o644)
    os.replace(tmp, target)
    return SAMPLE_CLIP
