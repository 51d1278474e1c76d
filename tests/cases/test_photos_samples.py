"""Pictures for the photo tests, made here: a camera's JPEG (noise, orientation, GPS), a renamed PDF, a
truncated JPEG and a PNG that declares 50,000 × 50,000 pixels in a few dozen bytes."""

from __future__ import annotations

import struct
import zlib
from io import BytesIO

from PIL import Image

from yiwang.bench.photos import noisy_photo

ORIENTATION = 0x0112
GPS_IFD = 0x8825
# 任城区 (Jining): 35°24'36" N, 116°35'24" E.
GPS_TAGS = {1: "N", 2: (35.0, 24.0, 36.0), 3: "E", 4: (116.0, 35.0, 24.0)}
GPS_DECIMAL = (35.41, 116.59)


def camera_jpeg(
    width: int = 400, height: int = 300, *, orientation: int = 1, gps: bool = False, noise: bool = False
) -> bytes:
    """A JPEG as a phone writes it: red on the left half, blue on the right, with EXIF."""
    if noise:
        image = Image.open(BytesIO(noisy_photo(width, height))).convert("RGB")
    else:
        image = Image.new("RGB", (width, height), (220, 20, 20))
        image.paste((20, 20, 220), (width // 2, 0, width, height))
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    exif[0x010F] = "PhoneMaker"  # camera make: must not survive
    if gps:
        exif[GPS_IFD] = GPS_TAGS
    out = BytesIO()
    image.save(out, "JPEG", quality=90, exif=exif)
    return out.getvalue()


def png(width: int, height: int, mode: str = "RGB") -> bytes:
    out = BytesIO()
    color = (10, 200, 10, 0) if mode == "RGBA" else (10, 200, 10)
    Image.new(mode, (width, height), color).save(out, "PNG")
    return out.getvalue()


def webp(width: int = 320, height: int = 240) -> bytes:
    out = BytesIO()
    Image.new("RGB", (width, height), (30, 60, 90)).save(out, "WEBP")
    return out.getvalue()


def gif() -> bytes:
    out = BytesIO()
    Image.new("P", (40, 30)).save(out, "GIF")
    return out.getvalue()


def renamed_pdf() -> bytes:
    """A PDF as a client would send it under the name photo.jpg."""
    return (
        b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
        b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
    )


def truncated_jpeg() -> bytes:
    whole = camera_jpeg(800, 600, noise=True)
    return whole[: len(whole) // 2]


def png_bomb(width: int = 50_000, height: int = 50_000) -> bytes:
    """A valid PNG header declaring ``width`` × ``height`` RGB pixels, with one compressed row of data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    row = zlib.compress(b"\x00" + b"\x00" * 3 * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", row) + chunk(b"IEND", b"")
