"""Finding the data: checking the four dataset files, downloading what is missing whole or not at
all, and falling back to the committed sample without a network. torchvision reads the files;
it is imported only when the lesson asks for its dataset class."""

import collections
import errno
import gzip
import importlib
import sys
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

from .console import IN_NOTEBOOK, readable, stop
from .files import (DISK_FULL, HERE, NOT_WRITABLE, folder_fault, make_folder, open_regular,
                    what_is_at, writing)

SAMPLE_DIR = HERE / "sample"


@dataclass(frozen=True)
class DatasetInfo:
    """A dataset the lesson can train on: torchvision's name for it, what the learner calls one
    of its images, and where it is downloaded from (torchvision's addresses; a test checks)."""

    name: str
    items: str
    mirrors: tuple

    @property
    def torchvision_class(self):
        return getattr(importlib.import_module("torchvision.datasets"), self.name)

    def raw_folder(self, data_dir):
        """Where the dataset's four files lie in data_dir."""
        return Path(data_dir) / self.name / "raw"

    def addresses(self, mirror=""):
        """Where to download the files from: the mirror given, or torchvision's addresses."""
        return [mirror.rstrip("/") + "/"] if mirror else list(self.mirrors)

    @property
    def class_names(self):
        if self.name == "MNIST":  # torchvision's are "0 - zero", …: a digit is its own name
            return [str(digit) for digit in range(10)]
        return list(self.torchvision_class.classes)


DATASETS = {
    "mnist": DatasetInfo("MNIST", "digits", ("https://ossci-datasets.s3.amazonaws.com/mnist/",
                                             "http://yann.lecun.com/exdb/mnist/")),
    "fashion": DatasetInfo("FashionMNIST", "images",
                           ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)),
}
DATASET_NAMES = tuple(DATASETS)  # as the dataset setting names them

# Each file: the number at its start that says what it holds, how many items, the bytes before them.
IDX_FILES = {
    "train-images-idx3-ubyte": (2051, 60_000, 16),
    "train-labels-idx1-ubyte": (2049, 60_000, 8),
    "t10k-images-idx3-ubyte": (2051, 10_000, 16),
    "t10k-labels-idx1-ubyte": (2049, 10_000, 8),
}


def idx_problem(path, magic, count, header):
    """Why the file at `path` is not the whole dataset file it should be, or None if it is."""
    size = header + count * (28 * 28 if magic == 2051 else 1)
    actual = path.stat().st_size
    try:
        with path.open("rb") as file:
            first_bytes = file.read(8)
    except PermissionError:
        return (f"{path.name} is not readable by you (permission denied): ask its owner "
                f"(ls -l shows who), or copy the files into a folder of yours and name it with "
                f"--data-dir")
    if actual != size:
        return (f"{path.name} is damaged or incomplete ({actual:,} bytes; the whole file has "
                f"{size:,})")
    kind = path.parent.parent.name  # the dataset's folder: MNIST or FashionMNIST
    if first_bytes != magic.to_bytes(4, "big") + count.to_bytes(4, "big"):
        article = "an" if kind == "MNIST" else "a"
        return (f"{path.name} has the right size but is not {article} {kind} file of that kind "
                f"(its first bytes differ)")
    return labels_of_the_other_dataset(path, kind) if magic == 2049 else None


def labels_of_the_other_dataset(path, kind):
    """Fashion-MNIST has exactly as many images of each of its ten classes, and MNIST's digits
    are not so even: a cheap way to tell their files apart, which share sizes and headers."""
    counts = collections.Counter(path.read_bytes()[8:])
    even = len(counts) == 10 and len(set(counts.values())) == 1
    if even == (kind == "FashionMNIST"):
        return None
    other = "Fashion-MNIST's" if even else "MNIST's"
    return (f"{path.name} holds {other} labels, not {kind}'s: the two datasets' files were mixed "
            f"up. Put {kind}'s own files in {kind}/raw/")


def data_problems(raw_dir):
    """One line for each dataset file in raw_dir that is there but not whole."""
    return [problem for name, layout in IDX_FILES.items() if what_is_at(raw_dir / name) == "file"
            for problem in [idx_problem(raw_dir / name, *layout)] if problem]


def unpack(packed, path, layout):
    """Unpack a .gz into `path` through a partial file, which is renamed only once it checks out."""
    try:
        with writing(path) as target, open_regular(packed) as file, gzip.open(file) as source:
            while chunk := source.read(1 << 20):
                target.write(chunk)
            target.flush()
            problem = idx_problem(Path(target.name), *layout)
            if problem:
                raise ValueError(problem.replace(Path(target.name).name, packed.name + " unpacked"))
    except (OSError, EOFError, zlib.error) as error:
        if folder_fault(error):
            raise  # the folder, not the file, is at fault: it cannot be written, or it is full
        raise ValueError(f"{packed.name} is damaged or incomplete ({error})") from None


GZIP_START = b"\x1f\x8b"  # the first bytes of every .gz file


def fetch(url, path):
    """Download `url` to `path`, whole or not at all, with a progress bar of its size. What is
    not a .gz file (a mirror's web page, say) is refused, and not kept."""
    from tqdm import tqdm  # only here: most runs download nothing

    # The bar first: by the time the partial file is there, the learner sees what is coming.
    with urllib.request.urlopen(url, timeout=20) as response, \
            tqdm(total=int(response.headers.get("Content-Length") or 0) or None, unit="B",
                 unit_scale=True, desc=f"downloading {Path(path).name}", mininterval=1,
                 file=sys.stdout if IN_NOTEBOOK else sys.stderr) as bar, \
            writing(path) as target:
        chunk = response.read(1 << 20)
        if not chunk.startswith(GZIP_START):  # a login page, an error page
            kind = response.headers.get("Content-Type", "no type").split(";")[0]
            raise ValueError(f"what it sent is not a .gz file (it says {kind})")
        while chunk:
            target.write(chunk)
            bar.update(len(chunk))
            chunk = response.read(1 << 20)


def fetch_from_any(mirrors, packed):
    errors = []
    for mirror in mirrors:
        try:
            return fetch(mirror + packed.name, packed)
        except (OSError, ValueError) as error:
            if folder_fault(error):
                raise  # no mirror helps when the folder cannot be written, or is full
            errors.append(f"{mirror}: {getattr(error, 'reason', None) or error}")
    raise ConnectionError("; ".join(errors))


def download(raw_dir, mirrors):
    """Fetch and unpack each missing file; a .gz already there (fetched by hand, say) is used."""
    make_folder(raw_dir)
    for name, layout in IDX_FILES.items():
        path, packed = raw_dir / name, raw_dir / f"{name}.gz"
        if path.is_file():
            continue
        if not packed.is_file():
            fetch_from_any(mirrors, packed)
        unpack(packed, path, layout)


def packed_files_there(raw_dir):
    """Whether raw_dir holds the four .gz files, as fetched by hand."""
    return all(what_is_at(raw_dir / f"{name}.gz") == "file" for name in IDX_FILES)


def why_no_download(info, raw_dir, error, mirrors):
    """What stood in the way of downloading or unpacking the dataset into raw_dir, and what to
    do, named by its real cause: the folder, its disk, or the network."""
    named = Path(error.filename or raw_dir)
    where = readable(named.parent if named.name.endswith(".partial") else named)  # its folder
    if error.errno in DISK_FULL:
        return (f"the disk of {where} is full ({error.strerror}): the dataset needs up to 90 MB "
                f"there. Make room, or name a folder on another disk with --data-dir")
    if error.errno == errno.ENOTDIR:
        return (f"{error.strerror}, so {info.name} cannot be put in {readable(raw_dir)}. Move "
                f"the file away, or name another folder with --data-dir")
    if error.errno in NOT_WRITABLE and packed_files_there(raw_dir):
        return (f"{readable(raw_dir)} holds the four .gz files, but cannot be written by you "
                f"({error.strerror}), so they cannot be unpacked there. Unpack them into a "
                f"folder of yours: --data-dir DIR --mirror {raw_dir.resolve().as_uri()}/")
    if error.errno in NOT_WRITABLE:
        return (f"{where} cannot be written by you ({error.strerror}). Name a folder you can "
                f"write with --data-dir (data_dir in the parameters cell), or one that already "
                f"holds {info.name}/raw/")
    return (f"the download did not go through ({error.strerror or error}).\n"
            f"To use the full dataset, fetch these four files on a machine with internet access\n"
            f"  {'  '.join(name + '.gz' for name in IDX_FILES)}\n"
            f"from {mirrors[0]} and copy them into\n"
            f"  {raw_dir.resolve()}\n"
            f"(or name a folder that holds {info.name}/raw/ with --data-dir, or your group's "
            f"copy with --mirror: docs/troubleshooting.md#the-mnist-download-fails)")


def sample_instead(info, raw_dir, error, mirrors):
    """What to say when the files cannot be downloaded; the sample's folder, to go on with."""
    print(f"Could not download {info.name} into {readable(raw_dir)}: "
          f"{why_no_download(info, raw_dir, error, mirrors)}.")
    print(f"Going on with the small sample in {readable(SAMPLE_DIR)}/: the accuracy will be lower "
          f"than on the full dataset.\n")
    return SAMPLE_DIR


def data_folder(info, data_dir, sample, mirror=""):
    """The folder to read the dataset from: data_dir, once its files are there and whole, or the
    sample.

    Missing files are downloaded into data_dir/NAME/raw/. Without a network the lesson goes on with
    the committed sample and says how to fetch the files by hand. A damaged file is never deleted:
    the lesson stops and says which file it is and what to do."""
    if sample:
        return SAMPLE_DIR
    try:
        return whole_data(info, data_dir, mirror)
    except OSError as error:
        return sample_instead(info, info.raw_folder(data_dir), error, info.addresses(mirror))


@dataclass(frozen=True)
class Data:
    """The dataset a lesson reads, found: torchvision's class for it, the folder to read it
    from, its class names and what one of its images is called. Printed, it says which dataset
    and where from."""

    info: DatasetInfo
    folder: Path

    @property
    def on_sample(self):
        return self.folder == SAMPLE_DIR

    @property
    def name(self):
        """What its test images are, in a result line: "sample", or the dataset's name."""
        return "sample" if self.on_sample else self.info.name

    torchvision_class = property(lambda self: self.info.torchvision_class)
    class_names = property(lambda self: self.info.class_names)
    items = property(lambda self: self.info.items)

    def __str__(self):
        where = "the committed sample" if self.on_sample else readable(self.folder)
        return f"{self.info.name} from {where}"


def find_data(settings):
    """The dataset the settings name, found (data_folder): in data_dir, downloaded there once,
    or the sample."""
    info = DATASETS[settings.dataset]
    return Data(info, data_folder(info, settings.data_dir, settings.sample, settings.mirror))


def whole_data(info, data_dir, mirror):
    """data_dir, once the dataset's files are there and whole, downloaded where missing; OSError
    where they cannot be downloaded."""
    raw_dir = info.raw_folder(data_dir)
    remedy = " Delete the file to download it again, copy a whole one there, or use --sample."
    problems = data_problems(raw_dir)
    if problems:
        damaged = any("not readable by you" not in problem for problem in problems)
        stop(f"{info.name} in {readable(raw_dir)} cannot be used: {'; '.join(problems)}."
             f"{remedy if damaged else ''}")
    try:
        download(raw_dir, info.addresses(mirror))
    except ValueError as error:
        stop(f"{info.name} in {readable(raw_dir)} cannot be used: {error}.{remedy}")
    return Path(data_dir)


def get_data(info, data_dir, mirror=""):
    """--get-data: the dataset downloaded into data_dir and checked, then a line that says so, or
    a stop that says why not. On a cluster the login node reaches the internet; compute nodes
    often do not."""
    raw_dir = info.raw_folder(data_dir)
    try:
        whole_data(info, data_dir, mirror)
    except OSError as error:
        if folder_fault(error):
            stop(f"could not download {info.name} into {readable(raw_dir)}: "
                 f"{why_no_download(info, raw_dir, error, info.addresses(mirror))}")
        stop(f"could not download {info.name} into {readable(raw_dir.parent)} "
             f"({error.strerror or error}). Run --get-data where the internet answers (on a "
             f"cluster, the login node), name a --mirror, or copy the four files by hand "
             f"(docs/troubleshooting.md#the-mnist-download-fails)")
    print(f"{info.name} is whole in {readable(info.raw_folder(data_dir))}: the lesson "
          f"will read it from there.")
