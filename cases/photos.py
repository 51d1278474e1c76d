"""Photos as evidence: a phone's picture checked by its content, re-encoded small and stripped of EXIF.

Nothing a client sends is trusted: the bytes are bounded before Pillow sees them, only the formats a
phone camera produces are opened, the pixel count is checked from the header before anything is
decoded (a small file may declare a huge image), and the picture is decoded for real, so a truncated
or disguised file is refused here rather than stored. What is kept is a fresh JPEG: no EXIF, no ICC
profile, no comment, so nothing the camera wrote (the GPS position above all) leaves by accident.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from io import BytesIO
from typing import Any

from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

MAX_PHOTO_BYTES = 10 * 1024 * 1024
"""The largest photo accepted, checked before anything decodes it."""
MAX_PHOTOS_PER_REQUEST = 3
MAX_STORED_BYTES = 500 * 1024
"""The re-encoded JPEG is at most this large."""
LONG_EDGE = 1600
THUMB_EDGE = 320
MAX_PIXELS = 64_000_000
"""More pixels than any phone camera writes by default (8,000 × 8,000): a bigger header is a bomb."""
JPEG_QUALITIES = (85, 75, 65, 55, 45)
SHRINK_STEP = 0.8  # when the lowest quality is still too large, the picture gets smaller instead
EXIF_GPS_IFD = 0x8825

# What phone cameras write (a multi-picture JPEG, MPO, opens as JPEG). HEIC only where a Pillow
# plugin for it is installed (pillow-heif).
_CAMERA_FORMATS = ("JPEG", "PNG", "WEBP")
_OPTIONAL_FORMATS = ("HEIF",)


class PhotoRefused(ValueError):
    """A photo that is not kept: ``key`` names the catalogue entry users read, ``message`` says it in
    English for API clients; ``status`` is the HTTP answer (413 too large, 422 otherwise)."""

    def __init__(self, key: str, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.key, self.message, self.status = key, message, status


@dataclass(frozen=True, slots=True)
class PreparedPhoto:
    """A photo as it is stored: a JPEG without metadata, and the position the camera wrote when the
    caller asked to keep it."""

    jpeg: bytes
    width: int
    height: int
    gps: tuple[float, float] | None = None


def accepted_formats() -> tuple[str, ...]:
    """The image formats this installation opens (HEIC only with its plugin)."""
    Image.init()
    return _CAMERA_FORMATS + tuple(f for f in _OPTIONAL_FORMATS if f in Image.OPEN)


def too_large(size: int) -> PhotoRefused:
    return PhotoRefused(
        "photo_too_large",
        f"the photo is {size / 1_048_576:.1f} MB; at most {MAX_PHOTO_BYTES // 1_048_576} MB is accepted",
        status=413,
    )


def prepare_photo(data: bytes, *, keep_gps: bool = False) -> PreparedPhoto:
    """Check ``data`` by its content and re-encode it: long edge ≤ 1,600 px, ≤ 500 kB, no EXIF.

    Raises PhotoRefused for an empty or oversized file, anything that is not a JPEG, PNG, WebP (or
    HEIC) image, a damaged or truncated one, and one with more than MAX_PIXELS pixels.
    """
    if len(data) > MAX_PHOTO_BYTES:
        raise too_large(len(data))
    if not data:
        raise PhotoRefused("photo_empty", "the file is empty: choose a photo")
    _open_checked(data).verify()  # structure first: a damaged file stops here, before a full decode
    image = _open_checked(data)  # verify() leaves the image unusable: open it again for the pixels
    gps = _gps_of(image) if keep_gps else None
    picture = _decoded(image)
    jpeg, width, height = _small_jpeg(picture, LONG_EDGE, MAX_STORED_BYTES)
    return PreparedPhoto(jpeg=jpeg, width=width, height=height, gps=gps)


def make_thumbnail(jpeg: bytes) -> bytes:
    """A small JPEG (long edge ≤ 320 px) of a stored photo, for timelines and lists."""
    with Image.open(BytesIO(jpeg), formats=["JPEG"]) as image:
        image.draft("RGB", (THUMB_EDGE, THUMB_EDGE))
        picture = image.convert("RGB")
    thumb, _, _ = _small_jpeg(picture, THUMB_EDGE, MAX_STORED_BYTES)
    return thumb


def _open_checked(data: bytes) -> Image.Image:
    """The image in ``data`` opened lazily (header only), refused unless it is a photo of a sane size."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(BytesIO(data), formats=list(accepted_formats()))
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        if isinstance(err, UnidentifiedImageError):
            kinds = ", ".join(accepted_formats())
            raise PhotoRefused(
                "photo_not_image", f"the file is not a photo: only {kinds} are accepted"
            ) from err
        raise _bomb() from err
    except (OSError, SyntaxError, ValueError) as err:
        raise _damaged() from err
    width, height = image.size
    if width <= 0 or height <= 0:
        raise _damaged()
    if width * height > MAX_PIXELS:
        raise _bomb(width, height)
    return image


_TRUNCATION_FLAG = threading.Lock()


@contextmanager
def _truncated_refused() -> Iterator[None]:
    """Pillow's process-wide ``LOAD_TRUNCATED_IMAGES`` off while a photo decodes: WeasyPrint turns it on
    when it is imported (for the PDF report), and a truncated photo would then pass as whole."""
    with _TRUNCATION_FLAG:
        previous = ImageFile.LOAD_TRUNCATED_IMAGES
        ImageFile.LOAD_TRUNCATED_IMAGES = False
        try:
            yield
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = previous


def _decoded(image: Image.Image) -> Image.Image:
    """Every pixel decoded for real (a truncated file fails here), upright as the camera held it, RGB."""
    long_edge = max(image.size)
    if long_edge > LONG_EDGE:
        scale = LONG_EDGE / long_edge
        # JPEG decodes at 1/2, 1/4 or 1/8 scale for the asking: far faster than decoding all of it.
        image.draft("RGB", (round(image.width * scale), round(image.height * scale)))
    try:
        with warnings.catch_warnings(), _truncated_refused():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image.load()
            upright = ImageOps.exif_transpose(image)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise _bomb() from err
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        raise _damaged() from err
    if upright.mode in ("RGBA", "LA", "PA") or (upright.mode == "P" and "transparency" in upright.info):
        # A transparent PNG (a screenshot) goes on white, not on black.
        rgba = upright.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, (255, 255, 255))
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    return upright.convert("RGB")


def _small_jpeg(picture: Image.Image, long_edge: int, max_bytes: int) -> tuple[bytes, int, int]:
    """``picture`` as a JPEG within ``long_edge`` and ``max_bytes``: quality steps down first, then size."""
    edge = long_edge
    while True:
        scale = min(1.0, edge / max(picture.size))
        size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
        # Bicubic: Pillow's resampling is area-aware when shrinking, and a third faster than Lanczos.
        sized = picture if size == picture.size else picture.resize(size, Image.Resampling.BICUBIC)
        for quality in JPEG_QUALITIES:
            out = BytesIO()
            # No exif=, icc_profile= or comment: the stored file carries pixels only.
            sized.save(out, "JPEG", quality=quality)
            if out.tell() <= max_bytes:
                return out.getvalue(), sized.width, sized.height
        edge = max(1, int(edge * SHRINK_STEP))


def _gps_of(image: Image.Image) -> tuple[float, float] | None:
    """The latitude and longitude the camera wrote, or None (none written, or nonsense)."""
    try:
        gps: dict[int, Any] = dict(image.getexif().get_ifd(EXIF_GPS_IFD))
        latitude = _degrees(gps[2], gps.get(1, "N"), "S")
        longitude = _degrees(gps[4], gps.get(3, "E"), "W")
    except (KeyError, TypeError, ValueError, ZeroDivisionError, IndexError, SyntaxError, OSError):
        return None
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180) or (latitude, longitude) == (0, 0):
        return None
    return round(latitude, 6), round(longitude, 6)


def _degrees(dms: Any, ref: Any, negative: str) -> float:
    degrees, minutes, seconds = (float(part) for part in dms)
    value = degrees + minutes / 60 + seconds / 3600
    ref_text = ref.decode() if isinstance(ref, bytes) else str(ref)
    return -value if ref_text.strip().upper() == negative else value


def _bomb(width: int = 0, height: int = 0) -> PhotoRefused:
    declared = f" ({width:,} × {height:,})" if width and height else ""
    return PhotoRefused(
        "photo_too_many_pixels",
        f"image too large in pixels{declared}: at most {MAX_PIXELS // 1_000_000} megapixels are accepted",
    )


def _damaged() -> PhotoRefused:
    return PhotoRefused(
        "photo_damaged", "the image is damaged or incomplete (truncated): take or choose the photo again"
    )
