"""Reading photos of handwritten digits as a learner means them: any mode Pillow opens,
transparency on white paper, very large photos in reduced form, and a plain reason for each
photo that cannot be read."""

import warnings

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .checks import PHOTO_PROBLEMS
from .console import readable, stop
from .files import what_is_at

SMALLEST_PHOTO = 10  # pixels a side: anything smaller cannot show a digit's strokes


def open_photo(path):
    """A photo or scan as a Pillow image, read as a learner means it: transparency flattened onto
    white paper, 16-bit and floating-point grey scaled to 0-255, a very large photo read in
    reduced form. Or a ValueError that says in a few words why it cannot be read."""
    kind = what_is_at(path)
    if kind != "file":  # only a regular file: reading a pipe would wait for ever
        raise ValueError(PHOTO_PROBLEMS.get(kind, kind))
    try:
        photo = open_whole_or_reduced(path)
    except FileNotFoundError:
        raise ValueError("there is no such file") from None
    except PermissionError:
        raise ValueError("it is not readable by you (permission denied)") from None
    except UnidentifiedImageError:
        raise ValueError("this is not an image that Pillow can read (use PNG or JPEG)") from None
    except (OSError, SyntaxError, ValueError) as error:  # Pillow's ways of saying "damaged"
        raise ValueError(f"it is damaged or cut short ({str(error).splitlines()[0]})") from None
    if min(photo.size) < SMALLEST_PHOTO:
        width, height = photo.size
        raise ValueError(f"it is only {width} × {height} pixels, too small to show a digit: "
                         f"use a photo at least {SMALLEST_PHOTO} pixels a side")
    return flattened(photo)


def open_whole_or_reduced(path):
    """Image.open and load, past Pillow's limit on pixels, since the lesson shrinks every photo
    to 1,000 pixels a side anyway; a JPEG is decoded at that reduced size straight away."""
    limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            photo = Image.open(path)
            if photo.format == "JPEG":
                photo.draft(photo.mode, (1000, 1000))
            photo.load()
    finally:
        Image.MAX_IMAGE_PIXELS = limit
    return photo


def flattened(photo):
    """The photo in a mode that converts to 8-bit grey as the eye sees it."""
    if photo.mode in ("I", "F") or photo.mode.startswith("I;16"):
        grey = np.asarray(photo, dtype=np.float64)
        low, high = grey.min(), grey.max()
        scaled = (grey - low) / (high - low) * 255 if high > low else np.zeros_like(grey)
        return Image.fromarray(scaled.round().astype(np.uint8), "L")
    if photo.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in photo.info:
        upright = ImageOps.exif_transpose(photo)  # before the EXIF is lost with the alpha
        paper = Image.new("RGBA", upright.size, "white")
        return Image.alpha_composite(paper, upright.convert("RGBA")).convert("RGB")
    if photo.mode not in ("1", "L", "P", "RGB", "CMYK", "YCbCr"):  # HSV, LAB: by way of RGB
        return photo.convert("RGB")
    return photo


def prepare_photos(paths, prepare):
    """(digits, paths_read): the photos at `paths`, each made into a digit by `prepare`, as one
    tensor, and the paths of those. A photo that cannot be read or prepared is named, with the
    reason, and the others are still read; if none can be, the lesson stops with one line."""
    digits, paths_read, problems = [], [], []
    for path in paths:
        try:
            digits.append(prepare(open_photo(path)))
            paths_read.append(path)
        except ValueError as error:
            problems.append(f"{readable(path)}: {error}")
    if not digits:
        stop("; ".join(problems))
    for problem in problems:
        print(f"Skipped {problem}.")
    return torch.stack(digits), paths_read
