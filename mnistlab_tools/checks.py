"""The checks of the settings' values: each takes a value as it came, from the parameters cell,
the environment or the command line, and gives it back as the lesson uses it, or raises
ValueError with the rule the value breaks. Standard library only."""

import os
import re
from pathlib import Path

from .console import printable
from .files import what_is_at


# How many feature maps the first convolution may have: a setting's range, and a checkpoint's.
CHANNELS = (1, 256)


def whole_number(minimum, maximum):
    def whole_number(value):
        text = str(value).strip()
        # isascii: "²" and other digit-like characters pass isdigit() but are no number
        if isinstance(value, bool) or not (text.isascii() and text.isdigit()) or not (
            minimum <= int(text) <= maximum
        ):
            raise ValueError(f"{value!r} is not allowed: use a whole number from {minimum:,} to "
                             f"{maximum:,}")
        return int(text)

    return whole_number


def learning_rate(value):
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    # Adam works in 32-bit floats, which end near 3.4e38; past 1,000 training only ever diverges.
    if isinstance(value, bool) or not 0 < number <= 1000:
        raise ValueError(f"{value!r} is not allowed: use a number above 0 and at most 1000, such "
                         f"as 0.01")
    return number


SWITCH_WORDS = {"1": True, "true": True, "yes": True, "on": True,
                "0": False, "false": False, "no": False, "off": False}


def switch(value):
    word = str(value).strip().lower()
    if word not in SWITCH_WORDS:
        raise ValueError(f"{value!r} is not allowed: use True or False (1 or 0)")
    return SWITCH_WORDS[word]


def one_of(choices):
    def one_of(value):
        if value not in choices:
            raise ValueError(f"{value!r} is not allowed: use one of {', '.join(choices)}")
        return value

    return one_of


def folder(value):
    """A folder's name; spaces around it, easy to leave in a .env file, are not part of it."""
    name = str(value).strip()
    if not name:
        raise ValueError("an empty name is not allowed: name a folder, such as outputs")
    return Path(name).expanduser()


def text(value):
    return str(value).strip()


PHOTO_PROBLEMS = {"folder": "it is a folder, not a photo", "nothing": "there is no such file",
                  "other": "it is not a regular file (a pipe or a device, say)"}


def photo_paths(value):
    """Paths of photos: a list, or one text of paths separated by os.pathsep (papermill and the
    environment give text, or a number for a name such as 7)."""
    parts = list(value) if isinstance(value, (list, tuple)) else str(value).split(os.pathsep)
    paths = [Path(str(part).strip()).expanduser() for part in parts if str(part).strip()]
    for path in paths:
        kind = what_is_at(path)
        if kind != "file":
            raise ValueError(f"{printable(str(path))!r} is not allowed: "
                             f"{PHOTO_PROBLEMS.get(kind, kind)}")
    return paths


# PyTorch's names of the devices a learner may have; checked without importing PyTorch.
DEVICE_NAME = re.compile(r"auto|cpu|mps|(cuda|xpu)(:\d+)?")


def device_choice(value):
    """auto, or a device as PyTorch names it: cpu, cuda, cuda:1 (a GPU by its index), mps, …"""
    name = str(value).strip().lower()
    if not DEVICE_NAME.fullmatch(name):
        raise ValueError(f"{value!r} is not allowed: use auto, cpu, cuda, cuda:N (the GPU of "
                         f"index N) or mps")
    return name
