"""Decode stage: bytes -> one RGB PIL image per input, shared by every model stage.

Decoding is the costliest CPU step after the models, so JPEGs are decoded with DCT-domain
downscaling (libjpeg-turbo through simplejpeg, pixel-identical to Pillow's draft mode) straight
to the smallest size that still feeds every model at full resolution, and strictly: a JPEG whose
entropy-coded data is corrupt is a ``corrupt`` dead letter, where Pillow would hand back a
smeared picture. Pillow reads the header (size, EXIF orientation) and every other format.
Hostile inputs (bombs, truncation, text served as images) are refused with a stable
error_type before they can allocate or crash.
"""

from __future__ import annotations

import contextlib
import io
import math
import warnings
from dataclasses import dataclass
from typing import ClassVar, cast

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

from transforms.core.launch import at_least
from transforms.core.options import Flags, option
from transforms.core.records import Element, StageError, mark_failed, with_fields

# We enforce our own pixel limit before loading; PIL's global check would only warn.
Image.MAX_IMAGE_PIXELS = None
ImageFile.LOAD_TRUNCATED_IMAGES = False

# The raster formats Pillow may open. Anything else is refused before a decoder runs: EPS/PS
# and PDF would hand untrusted bytes to Ghostscript if a worker had it installed.
Image.init()  # register every plugin, then keep the allowed ones this Pillow has
FORMATS = tuple(f for f in ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF", "MPO", "ICO", "PPM", "TGA", "JPEG2000")
                if f in Image.OPEN)
_REFUSED = (
    (b"%!PS", "PostScript/EPS (Ghostscript) is not decoded"),
    (b"\xc5\xd0\xd3\xc6", "EPS (Ghostscript) is not decoded"),
    (b"%PDF", "PDF is not decoded; render its pages first"),
)


@dataclass(frozen=True)
class DecodeFlags(Flags):
    GROUP: ClassVar[str] = "decoding"

    decode_threads: int = option(0, "Images decoded at once per worker (0: one per core).")
    max_pixels: int = option(100_000_000, "Refuse images whose declared width x height exceeds this "
                             "(decompression_bomb), before allocating.")

    def check(self) -> None:
        at_least("--decode_threads", self.decode_threads, 0)
        at_least("--max_pixels", self.max_pixels, 1)


@dataclass(frozen=True)
class DecodeConfig:
    """Sizes the models need (the decode keeps at least these) and the bomb limit."""

    min_short_side: int = 256  # backbone: shorter side resized to 256, centre crop 224
    min_long_side: int = 416  # detector: longer side letterboxed to 416
    max_pixels: int = DecodeFlags.max_pixels
    keep_data: bool = False  # a stage reads the fetched bytes after decoding (fingerprint)
    draft: bool = True
    # JPEG draft decodes at 1/2, 1/4 or 1/8 scale; accept a draft down to this share of the
    # model minimums (a 4% upscale in the detector's letterbox costs nothing measurable, a
    # 2x larger decode costs ~2x the time).
    draft_tolerance: float = 0.8


_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")
_HEIF = (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1")
_AVIF = (b"avif", b"avis")


def _sniff_unsupported(data: bytes) -> str | None:
    for magic, reason in _REFUSED:
        if data.startswith(magic):
            return reason
    head = data[:4096]
    for bom in _BOMS:
        if head.startswith(bom):
            head = head[len(bom):]
    head = head.replace(b"\x00", b"").lstrip().lower()  # UTF-16 text reads as ASCII once NULs go
    if head.startswith(b"<svg") or (head.startswith((b"<?xml", b"<!--", b"<!doctype svg")) and b"<svg" in head):
        return "SVG (vector graphics) is not supported; rasterize it first"
    if data[4:8] == b"ftyp":
        brands = [data[i:i + 4] for i in range(8, min(len(data), int.from_bytes(data[:4], "big") or 32, 64), 4)]
        if any(b in _AVIF for b in brands):
            return "AVIF is not supported; convert it to JPEG, PNG or WebP"
        if any(b in _HEIF for b in brands):
            return "HEIC/HEIF is not supported; convert it to JPEG or PNG"
    return None


T = Image.Transpose
_TRANSPOSE = {2: T.FLIP_LEFT_RIGHT, 3: T.ROTATE_180, 4: T.FLIP_TOP_BOTTOM, 5: T.TRANSPOSE, 6: T.ROTATE_270,
              7: T.TRANSVERSE, 8: T.ROTATE_90}  # EXIF orientation -> transposition (as ImageOps.exif_transpose)


def _decode_jpeg(data: bytes, img: Image.Image, min_size: tuple[int, int] | None) -> Image.Image:
    """A JPEG in YCbCr or grey through libjpeg-turbo, with its warnings as errors (ValueError),
    DCT-scaled by the factor Pillow's draft picks for ``min_size`` (1/2, 1/4 or 1/8: libjpeg-turbo
    also offers 5/8 and the like, which would change what the models see)."""
    import simplejpeg

    grey = img.mode == "L"
    w, h = img.size
    factor = 1
    if min_size:
        fits = min(w // max(min_size[0], 1), h // max(min_size[1], 1))
        factor = next(f for f in (8, 4, 2, 1) if fits >= f or f == 1)
    pixels = simplejpeg.decode_jpeg(data, colorspace="GRAY" if grey else "RGB", min_factor=factor,
                                    min_width=-(-w // factor), min_height=-(-h // factor), strict=True)
    return Image.fromarray(pixels[:, :, 0] if grey else pixels, "L" if grey else "RGB")


def working_scale(width: int, height: int, config: DecodeConfig) -> float:
    """Largest downscale (<= 1) that keeps the short and long sides at their model minimums."""
    scale = max(config.min_short_side / min(width, height), config.min_long_side / max(width, height))
    return min(1.0, scale)


WIDE = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")  # more than 8 bits a sample
_BAND_BYTES = 1 << 20  # float64 working memory per band while converting a wide image


def _band(img: Image.Image, top: int, bottom: int, width: int) -> np.ndarray:
    """Rows top..bottom of a wide image as float64, NaN and infinities of a float image made finite."""
    band = np.asarray(img.crop((0, top, width, bottom)), dtype=np.float64)
    return np.nan_to_num(band) if img.mode == "F" else band


def _wide_range(img: Image.Image) -> tuple[float, float]:
    """(low, high) of the sample range that maps to 0..255: 16-bit scales, 32-bit ints over 255
    scale by 65535, floats stretch to their own range (NaN read as 0, band by band)."""
    if img.mode.startswith("I;16"):
        return 0.0, 65535.0
    if img.mode == "I":
        top = cast(tuple[float, float], img.getextrema())[1]
        return 0.0, 65535.0 if float(top) > 255 else 255.0
    w, h = img.size
    step = max(1, _BAND_BYTES // (8 * w))
    lo, hi = np.inf, -np.inf
    for top_row in range(0, h, step):
        band = _band(img, top_row, min(h, top_row + step), w)
        lo, hi = min(lo, float(band.min())), max(hi, float(band.max()))
    return lo, max(hi, lo + 1e-12)


def _reduce_wide(img: Image.Image, scale: float) -> Image.Image:
    """A wide-sample image box-averaged by the integer factor ``scale`` allows (1: none), band by
    band, to an 8-bit L image: never a full-size float copy (a 10000x10000 16-bit PNG would need
    2.6 GB). The one conversion of wide samples, whatever the image's size."""
    k = max(1, int(1.0 / scale))
    w, h = img.size
    cols, rows = max(1, w // k), max(1, h // k)
    k_x, k_y = (k if w >= k else w), (k if h >= k else h)
    lo, hi = _wide_range(img)
    out = np.empty((rows, cols), dtype=np.uint8)
    step = max(1, _BAND_BYTES // (8 * k_y * cols * k_x))
    for r in range(0, rows, step):
        n = min(step, rows - r)
        band = _band(img, r * k_y, (r + n) * k_y, cols * k_x).reshape(n, k_y, cols, k_x).mean(axis=(1, 3))
        out[r:r + n] = np.clip((band - lo) * (255.0 / (hi - lo)), 0, 255).astype(np.uint8)
    return Image.fromarray(out, "L")


def _to_rgb(img: Image.Image) -> Image.Image:
    """Any Pillow mode -> RGB; transparency is flattened on white, 16-bit is scaled, not clipped."""
    if img.mode in WIDE:
        img = _reduce_wide(img, 1.0)
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return img if img.mode == "RGB" else img.convert("RGB")


def decode_image(data: bytes, config: DecodeConfig) -> tuple[Image.Image, int, int]:
    """Decode bytes to (RGB image at working size, original width, original height).

    Width and height are those of the image as displayed (after EXIF orientation).
    Raises StageError with a stable error_type on any failure.
    """
    if not data:
        raise StageError("empty", "zero bytes")
    unsupported = _sniff_unsupported(data)
    if unsupported:
        raise StageError("unsupported_format", unsupported)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            img: Image.Image = Image.open(io.BytesIO(data), formats=FORMATS)
            width, height = img.size
            if width <= 0 or height <= 0:
                raise StageError("not_an_image", f"invalid dimensions {width}x{height}")
            if width * height > config.max_pixels:
                raise StageError(
                    "decompression_bomb",
                    f"{width}x{height} = {width * height} pixels > limit {config.max_pixels}",
                )
            orientation = 1
            with contextlib.suppress(Exception):  # a broken EXIF block must not lose the image
                orientation = img.getexif().get(0x0112, 1)
            if orientation in (5, 6, 7, 8):
                width, height = height, width
            scale = working_scale(width, height, config)
            draft = None
            if config.draft and scale < 1.0:
                s = scale * config.draft_tolerance
                draft = (math.ceil(img.size[0] * s), math.ceil(img.size[1] * s))
            if img.format in ("JPEG", "MPO") and img.mode in ("RGB", "L"):
                img = _decode_jpeg(data, img, draft)
            elif img.format == "JPEG" and draft:  # CMYK and YCCK: Pillow converts them
                img.draft("RGB", draft)
            elif img.format == "JPEG2000" and scale < 1.0:
                # Decode only the resolution level the models need: a tiny file can declare 100 MP.
                # Pillow's JPEG 2000 plugin reads the ``reduce`` attribute before load().
                setattr(img, "reduce", max(0, int(math.floor(math.log2(1.0 / (scale * config.draft_tolerance))))))  # noqa: B010
            img.load()
            with contextlib.suppress(Exception):  # a PNG's eXIf chunk may follow its pixels
                orientation = img.getexif().get(0x0112, orientation)
            if img.mode in WIDE and working_scale(img.size[0], img.size[1], config) < 1.0:
                img = _reduce_wide(img, working_scale(img.size[0], img.size[1], config))
            # EXIF orientation as read from the file (the decoded image may be a new one).
            if _TRANSPOSE.get(orientation) is not None:
                img = img.transpose(_TRANSPOSE[orientation])
            img = _to_rgb(img)
    except StageError:
        raise
    except Image.DecompressionBombError as exc:
        raise StageError("decompression_bomb", str(exc)) from exc
    except UnidentifiedImageError as exc:
        raise StageError("not_an_image", "bytes are not a recognised image format") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        message = str(exc)
        short = any(w in message.lower() for w in ("truncat", "premature end"))
        kind = "truncated" if short or isinstance(exc, EOFError) else "corrupt"
        raise StageError(kind, f"{type(exc).__name__}: {message}") from exc
    except Exception as exc:  # noqa: BLE001 - decoders of exotic formats raise anything
        raise StageError("corrupt", f"{type(exc).__name__}: {exc}") from exc
    target = working_scale(img.size[0], img.size[1], config)
    if target < 1.0:
        size = (max(1, round(img.size[0] * target)), max(1, round(img.size[1] * target)))
        img = img.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
    return img, width, height


def decode_element(element: Element, config: DecodeConfig) -> Element:
    """Element with ``data`` -> element with ``image``, ``width``, ``height`` (bytes dropped unless
    a stage reads them), or a decode dead letter."""
    try:
        image, width, height = decode_image(element["data"], config)
    except StageError as exc:
        return mark_failed(element, "decode", exc.error_type, str(exc))
    kept = element if config.keep_data else cast(Element, {k: v for k, v in element.items() if k != "data"})
    return with_fields(kept, image=image, width=width, height=height)
