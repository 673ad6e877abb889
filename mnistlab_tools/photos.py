"""Reading photos of handwritten digits as a learner means them: any mode Pillow opens,
transparency on white paper, very large photos in reduced form, and a plain reason for each
photo that cannot be read."""

import warnings

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .console import readable, stop
from .files import NotARegularFile, open_regular
from .settings import PHOTO_PROBLEMS

SMALLEST_PHOTO = 10  # pixels a side: anything smaller cannot show a digit's strokes


def open_photo(path):
    """A photo or scan as a Pillow image, read as a learner means it: transparency flattened onto
    paper of the colour the ink is not, 16-bit and floating-point grey scaled to 0-255, and the
    whole shrunk to at most MOST_PIXELS as it is read. Or a ValueError that says in a few words
    why it cannot be read."""
    try:
        with open_regular(path) as file:  # only a regular file: reading a pipe would wait for ever
            photo = open_reduced(file)
    except NotARegularFile as error:
        raise ValueError(PHOTO_PROBLEMS["folder"] if error.strerror == "a folder" else
                         f"it is not a regular file but {error.strerror}") from None
    except FileNotFoundError:
        raise ValueError("there is no such file") from None
    except PermissionError:
        raise ValueError("it is not readable by you (permission denied)") from None
    except UnidentifiedImageError:
        raise ValueError("this is not an image that Pillow can read (use PNG or JPEG)") from None
    except TooLarge:
        raise
    except (OSError, SyntaxError, ValueError) as error:  # Pillow's ways of saying "damaged"
        raise ValueError(f"it is damaged or cut short ({str(error).splitlines()[0]})") from None
    if min(photo.size) < SMALLEST_PHOTO:
        width, height = photo.size
        raise ValueError(f"it is only {width} × {height} pixels, too small to show a digit: "
                         f"use a photo at least {SMALLEST_PHOTO} pixels a side")
    return flattened(photo)


class TooLarge(ValueError):
    """A photo of more pixels than can be decoded safely; the message says how many."""


def open_reduced(file):
    """Image.open, then load no more pixels than it must: a JPEG decoded at a reduced size
    (draft), and Pillow's decompression-bomb check on the pixels decoded, so that a small file
    that unpacks to billions of pixels is refused before it takes the memory. The image loaded
    is then shrunk to at most MOST_PIXELS, keeping its shape."""
    with warnings.catch_warnings():  # the check below is Pillow's own, made after the draft
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            photo = Image.open(file)  # reads the header alone
        finally:
            Image.MAX_IMAGE_PIXELS = limit
        if photo.format == "JPEG":
            photo.draft(photo.mode, fitting(photo.size))
        width, height = photo.size
        if limit and width * height > 2 * limit:  # where Pillow itself refuses to decode
            raise TooLarge(f"it is {width:,} × {height:,} pixels, more than the {2 * limit:,} "
                           f"that can be decoded safely: shrink it to a few thousand pixels a "
                           f"side first")
        photo.load()
    photo.thumbnail(fitting(photo.size))
    return photo


MOST_PIXELS = 1_000_000  # a photo is read at this size at most: a digit needs far fewer


def fitting(size):
    """The size, keeping its shape, with at most MOST_PIXELS: a long, narrow photo keeps its
    narrow side, where a limit on each side would shrink it away; and the narrow side keeps at
    least MNIST's 28 pixels."""
    width, height = size
    scale = min(1, max((MOST_PIXELS / (width * height)) ** 0.5, 28 / min(width, height)))
    return max(1, round(width * scale)), max(1, round(height * scale))


def flattened(photo):
    """The photo in a mode that converts to 8-bit grey as the eye sees it."""
    if photo.mode in ("I", "F") or photo.mode.startswith("I;16"):
        grey = np.asarray(photo, dtype=np.float64)
        known = np.isfinite(grey)  # a NaN or infinite pixel says nothing of the ink
        if not known.any():
            raise ValueError("none of its pixels is a number (all are NaN or infinite)")
        grey = np.where(known, grey, np.median(grey[known]))
        low, high = grey.min(), grey.max()
        scaled = (grey - low) / (high - low) * 255 if high > low else np.zeros_like(grey)
        return Image.fromarray(scaled.round().astype(np.uint8), "L")
    if photo.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in photo.info:
        upright = without_transparent_margin(
            ImageOps.exif_transpose(photo).convert("RGBA"))  # before the alpha loses EXIF
        paper = Image.new("RGBA", upright.size, paper_colour(upright))
        return Image.alpha_composite(paper, upright).convert("RGB")
    if photo.mode not in ("1", "L", "P", "RGB", "CMYK", "YCbCr"):  # HSV, LAB: by way of RGB
        return photo.convert("RGB")
    return photo


def without_transparent_margin(rgba):
    """A picture that is mostly opaque, within a transparent margin (a screenshot of a window,
    with its soft shadow), cropped to its opaque part: the margin, laid on any paper, would frame
    the window as a shape to read. Ink on a transparent canvas, mostly transparent, is left."""
    opaque = np.asarray(rgba)[..., 3] == 255
    if opaque.mean() < 0.5 or opaque.all():
        return rgba
    rows, columns = np.nonzero(opaque)
    return rgba.crop((columns.min(), rows.min(), columns.max() + 1, rows.max() + 1))


def paper_colour(rgba):
    """The paper to put transparent ink on: white, unless the ink itself is light (white chalk
    on a transparent board), which on white paper would vanish: then black."""
    pixels = np.asarray(rgba, dtype=np.float64)
    opacity = pixels[..., 3] / 255
    if opacity.sum() == 0:
        return "white"
    ink = (pixels[..., :3].mean(axis=-1) * opacity).sum() / opacity.sum()
    return "black" if ink > 127.5 else "white"


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
