"""A camera frame's pixels: cheap checks before a frame is taken, decoding, conversion to RGB, and the
thumbnail that tells a changed view from the same one. No sampling, no models (see ``duplex.vision``)."""

from __future__ import annotations

import numpy as np

THUMBNAIL_SIDE = 32  # change detection compares frames at this size


class BadFrame(ValueError):
    """A frame that cannot be used; the message says why, for the log."""


ENCODED_TYPES = (bytes, bytearray, memoryview)
MAX_ENCODED_BYTES = 50_000_000


def _encoded_size(data: bytes | bytearray | memoryview) -> tuple[int, int]:
    """(width, height) from a JPEG/PNG/... header, without decoding the pixels."""
    import io

    from PIL import Image, UnidentifiedImageError

    if len(data) == 0:
        raise BadFrame("an encoded frame of 0 bytes")
    if len(data) > MAX_ENCODED_BYTES:
        raise BadFrame(f"an encoded frame of {len(data) / 1e6:.0f} MB is over the {MAX_ENCODED_BYTES / 1e6:g} MB limit")
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise BadFrame(f"not a readable image ({len(data)} bytes): {error}") from None


def decode_image(data: bytes | bytearray | memoryview, max_pixels: int) -> np.ndarray:
    """(vision thread) An encoded image (JPEG, PNG, WebP...) as RGB uint8; a corrupt one raises ``BadFrame``."""
    import io
    import warnings

    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                if image.size[0] * image.size[1] > max_pixels:
                    raise BadFrame(f"an image of {image.size[0]}x{image.size[1]} pixels is over the limit")
                return np.asarray(image.convert("RGB"))
    except BadFrame:
        raise
    except Exception as error:  # truncated data, bad Huffman tables, bombs: all the same to the caller
        raise BadFrame(f"a corrupt image could not be decoded: {type(error).__name__}: {error}") from None


def check_frame(image: object, max_pixels: int) -> tuple[int, int]:
    """Cheap checks done on the event loop before a frame is taken (no pixel is touched): (width, height).
    An encoded image (bytes) is checked by its header only; it is decoded on the vision thread."""
    if isinstance(image, ENCODED_TYPES):
        width, height = _encoded_size(image)
        if width * height > max_pixels:
            raise BadFrame(f"an image of {width}x{height} pixels is larger than the {max_pixels / 1e6:g} MP limit "
                           "(vision_max_input_pixels)")
        return width, height
    if not isinstance(image, np.ndarray):
        raise BadFrame(f"a frame must be a numpy array or an encoded image, got {type(image).__name__}")
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
        raise BadFrame(f"a frame must be HxW, HxWx3 or HxWx4, got shape {image.shape}")
    if image.shape[0] < 2 or image.shape[1] < 2:
        raise BadFrame(f"a frame of {image.shape[1]}x{image.shape[0]} pixels is empty")
    if image.shape[0] * image.shape[1] > max_pixels:
        raise BadFrame(f"a frame of {image.shape[1]}x{image.shape[0]} pixels is larger than the "
                       f"{max_pixels / 1e6:g} MP limit (vision_max_input_pixels)")
    if not (image.dtype == np.uint8 or image.dtype == np.bool_ or np.issubdtype(image.dtype, np.floating)
            or image.dtype == np.uint16):
        raise BadFrame(f"a frame must be uint8 (or uint16, float in 0-1), got {image.dtype}")
    return int(image.shape[1]), int(image.shape[0])


def to_rgb(image: np.ndarray, max_side: int) -> np.ndarray:
    """Any accepted frame as RGB uint8 HxWx3, downscaled so its longer side is at most ``max_side``."""
    step = int(np.ceil(max(image.shape[:2]) / max_side))
    if step > 1:  # striding first keeps the conversion of an enormous frame cheap
        image = image[::step, ::step]
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype == np.bool_:
        image = image.astype(np.uint8) * 255
    elif image.dtype != np.uint8:
        floats = np.nan_to_num(image.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0)
        image = (np.clip(floats, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)
    if image.ndim == 2:
        image = image[:, :, None]
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    elif image.shape[2] == 4:
        image = image[:, :, :3]  # the alpha channel says nothing about the scene
    return np.ascontiguousarray(image)


def thumbnail(frame: np.ndarray, side: int = THUMBNAIL_SIDE) -> np.ndarray:
    """A small grey version for change detection (block means, float 0-1)."""
    grey = frame.astype(np.float32).mean(axis=2) / 255.0
    rows = np.array_split(np.arange(grey.shape[0]), min(side, grey.shape[0]))
    cols = np.array_split(np.arange(grey.shape[1]), min(side, grey.shape[1]))
    row_means = np.stack([grey[r].mean(axis=0) for r in rows])
    return np.stack([row_means[:, c].mean(axis=1) for c in cols], axis=1)


def frame_change(previous: np.ndarray | None, current: np.ndarray) -> float:
    """Mean absolute difference of two thumbnails (0 same, 1 opposite); 1.0 when there is nothing to compare."""
    if previous is None or previous.shape != current.shape:
        return 1.0
    return float(np.mean(np.abs(previous - current)))
