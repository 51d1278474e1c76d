"""cases.photos: a photo is checked by its content and re-encoded small, upright and without EXIF."""

from __future__ import annotations

from io import BytesIO

import pytest
from PIL import Image

from cases.photos import (
    LONG_EDGE,
    MAX_PHOTO_BYTES,
    MAX_STORED_BYTES,
    THUMB_EDGE,
    PhotoRefused,
    make_thumbnail,
    prepare_photo,
)
from tests.cases.test_photos_samples import (
    GPS_DECIMAL,
    camera_jpeg,
    gif,
    png,
    png_bomb,
    renamed_pdf,
    truncated_jpeg,
    webp,
)
from yiwang.bench.photos import noisy_photo


def reopened(jpeg: bytes) -> Image.Image:
    image = Image.open(BytesIO(jpeg))
    assert image.format == "JPEG"
    return image


def test_a_camera_photo_becomes_a_small_jpeg_with_the_long_edge_bounded() -> None:
    original = noisy_photo(3200, 2400)
    assert len(original) > MAX_STORED_BYTES  # the shrinking has work to do

    photo = prepare_photo(original)

    assert (photo.width, photo.height) == (LONG_EDGE, 1200)
    assert len(photo.jpeg) <= MAX_STORED_BYTES
    assert reopened(photo.jpeg).size == (LONG_EDGE, 1200)


def test_noise_that_no_quality_squeezes_under_the_limit_makes_the_picture_smaller() -> None:
    # Pure noise at full size is about 1.5 MB even at the lowest quality step.
    photo = prepare_photo(noisy_photo(LONG_EDGE, 1200, sigma=70, quality=97))

    assert len(photo.jpeg) <= MAX_STORED_BYTES
    assert photo.width < LONG_EDGE and reopened(photo.jpeg).size == (photo.width, photo.height)


def test_exif_is_gone_and_the_orientation_is_applied_first() -> None:
    # Orientation 6: the camera was turned; the picture is stored landscape and shown rotated 90° CW.
    photo = prepare_photo(camera_jpeg(400, 300, orientation=6, gps=True))

    image = reopened(photo.jpeg)
    assert image.size == (300, 400)  # upright: portrait
    assert len(image.getexif()) == 0 and "exif" not in image.info and "icc_profile" not in image.info
    # The left half was red: after turning clockwise it is the top half.
    red, _, blue = image.convert("RGB").getpixel((150, 50))  # type: ignore[misc]
    assert red > 150 and blue < 100
    red, _, blue = image.convert("RGB").getpixel((150, 350))  # type: ignore[misc]
    assert blue > 150 and red < 100


def test_gps_is_read_only_when_the_uploader_keeps_it() -> None:
    data = camera_jpeg(gps=True)

    assert prepare_photo(data).gps is None
    kept = prepare_photo(data, keep_gps=True).gps
    assert kept is not None and kept == pytest.approx(GPS_DECIMAL, abs=1e-4)
    assert prepare_photo(camera_jpeg(), keep_gps=True).gps is None  # none written, none invented


@pytest.mark.parametrize(
    ("make", "key", "words"),
    [
        (renamed_pdf, "photo_not_image", "not a photo"),
        (gif, "photo_not_image", "not a photo"),
        (lambda: b"\xff\xd8\xff\xe0" + b"junk" * 50, "photo_damaged", "damaged"),
        (truncated_jpeg, "photo_damaged", "truncated"),
        (png_bomb, "photo_too_many_pixels", "image too large in pixels"),
        (lambda: b"", "photo_empty", "empty"),
    ],
    ids=["renamed-pdf", "gif", "jpeg-header-only", "truncated-jpeg", "png-bomb", "empty"],
)
def test_bad_input_is_refused_with_its_reason(make: object, key: str, words: str) -> None:
    with pytest.raises(PhotoRefused) as refused:
        prepare_photo(make())  # type: ignore[operator]

    assert refused.value.key == key
    assert words in refused.value.message
    assert refused.value.status == 422


def test_a_bomb_is_refused_from_its_header_without_decoding() -> None:
    bomb = png_bomb()
    assert len(bomb) < 200  # a few dozen bytes declaring 2.5 billion pixels
    with pytest.raises(PhotoRefused, match="image too large in pixels"):
        prepare_photo(bomb)
    # Below Pillow's own alarm (89 megapixels) our bound still holds, and names the size.
    with pytest.raises(PhotoRefused, match=r"image too large in pixels \(9,000 × 9,000\)"):
        prepare_photo(png_bomb(9000, 9000))


def test_an_oversized_file_is_refused_by_its_size_before_anything_decodes_it() -> None:
    # Eleven MB of a real image's bytes followed by padding: the size alone decides.
    data = camera_jpeg() + b"\0" * (11 * 1024 * 1024)
    assert len(data) > MAX_PHOTO_BYTES

    with pytest.raises(PhotoRefused) as refused:
        prepare_photo(data)

    assert (refused.value.key, refused.value.status) == ("photo_too_large", 413)
    assert "at most 10 MB" in refused.value.message


def test_png_webp_and_transparency_are_accepted_on_white() -> None:
    assert reopened(prepare_photo(webp()).jpeg).size == (320, 240)
    clear = reopened(prepare_photo(png(200, 100, "RGBA")).jpeg).convert("RGB")
    assert min(clear.getpixel((10, 10))) > 240  # type: ignore[arg-type]
    assert reopened(prepare_photo(png(2400, 1200)).jpeg).size == (LONG_EDGE, 800)


def test_a_thumbnail_is_at_most_320_pixels_on_its_long_edge() -> None:
    photo = prepare_photo(camera_jpeg(1600, 900))

    thumb = reopened(make_thumbnail(photo.jpeg))

    assert max(thumb.size) == THUMB_EDGE and thumb.size == (320, 180)
