"""The settings: each declared once (SETTINGS), with its name in the parameters cell, its
default, its check, its option and its MNISTLAB_* variable; the two lessons' table (LESSONS);
reading them from the cell, the environment and the command line, with --help; and the lesson's
first step, settings_or_stop, which also answers --doctor and --get-data.

A command-line option wins over an MNISTLAB_* variable, which wins over the parameters cell. Each
check raises ValueError with the rule; read_settings names where the bad value came from.
Standard library only, so that --help answers at once."""

import argparse
import os
import re
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

from .console import IN_NOTEBOOK, PYTHON, display, printable, readable, stop
from .data import DATASET_NAMES, DATASETS, get_data
from .doctor import doctor_report, install_advice, missing_requirements, tensorboard_importable
from .files import HERE, what_is_at

# How many feature maps the first convolution may have: the channels setting's range.
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


def meeting_place(value):
    """Where the launchers of a run over several machines meet: HOST:PORT, or "" for none."""
    place = str(value).strip()
    host, _, port = place.rpartition(":")
    if place and not (host and port.isascii() and port.isdigit() and 0 < int(port) < 65536):
        raise ValueError(f"{value!r} is not allowed: use HOST:PORT, the first machine's name and "
                         f"a free port on it, such as node01:29500 (or nothing, for this machine "
                         f"alone)")
    return place


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
            several = [readable(name.strip()) for name in str(path).split(",")]
            hint = (f": for several photos, write a list, photos = "
                    f"[{', '.join(repr(name) for name in several)}]"
                    if len(several) > 1 and kind == "nothing" else "")
            raise ValueError(f"{printable(str(path))!r} is not allowed: "
                             f"{PHOTO_PROBLEMS.get(kind, kind)}{hint}")
        if is_heic(path):
            raise ValueError(f"{printable(str(path))!r} is not allowed: it is an HEIC photo (an "
                             f"iPhone's own format), which the lesson cannot read. Save it as a "
                             f"JPEG: on the iPhone, share it by Mail or as a file with Options, "
                             f"Most Compatible; on a Mac, open it in Preview and choose File, "
                             f"Export, JPEG")
    return paths


def is_heic(path):
    """Whether a file is an HEIC or HEIF photo, as its first bytes say ("ftypheic" …)."""
    try:
        with open(path, "rb") as file:
            start = file.read(12)
    except OSError:
        return False
    return start[4:8] == b"ftyp" and start[8:12] in (b"heic", b"heix", b"mif1", b"msf1",
                                                     b"hevc", b"heim", b"heis")


# PyTorch's names of the devices a learner may have; checked without importing PyTorch.
DEVICE_NAME = re.compile(r"auto|cpu|mps|(cuda|xpu)(:\d+)?")


def device_choice(value):
    """auto, or a device as PyTorch names it: cpu, cuda, cuda:1 (a GPU by its index), mps, …"""
    name = str(value).strip().lower()
    if not DEVICE_NAME.fullmatch(name):
        raise ValueError(f"{value!r} is not allowed: use auto, cpu, cuda, cuda:N (the GPU of "
                         f"index N) or mps")
    return name


@dataclass(frozen=True)
class Lesson:
    script: str  # the lesson's file, as a terminal runs it
    about: str  # what its --help says it does
    settings: tuple  # the names in its parameters cell, in this order
    fixed: dict  # every other setting, as this lesson always has it
    network: str = ""  # the name of its network's files in out_dir; "" for the dataset's name
    batch_script: str = "slurm/train.sbatch"  # what runs it as a Slurm job
    # {name: {field: value}} where its parameters cell differs from SETTINGS: a default, a comment
    own: dict = field(default_factory=dict)


ALONE = {"ranks": 1, "nodes": 1, "rendezvous": ""}  # one process: lessons one and two
TRAINING = ("epochs", "batch_size", "lr", "seed", "channels")
MACHINE = ("device_name", "threads")
LESSONS = {
    "mnistlab": Lesson(
        "mnistlab.py", "Train a small CNN on MNIST, then look at what it learned and which digits "
        "it confuses.", (*TRAINING, *MACHINE, "dataset", "data_dir", "mirror", "sample",
                         "out_dir", "tensorboard", "resume"),
        {"augment": False, "photos": [], **ALONE}),
    "handwriting": Lesson(
        "handwriting.py", "Train a CNN on MNIST written with other pens, then read photos of "
        "your own handwriting.", (*TRAINING, "augment", *MACHINE, "data_dir", "mirror",
                                  "sample", "out_dir", "photos", "resume"),
        {"dataset": "mnist", "tensorboard": False, **ALONE}, network="handwriting",
        own={"epochs": {"default": 5,  # benchmarks/other_writers.py
                        "comment": "passes over the training data; other hands take longer to "
                                   "learn"},
             "data_dir": {"comment": "MNIST goes in MNIST/raw/ in this folder, downloaded if "
                                     "missing"},
             "mirror": {"comment": "where to download MNIST from, if not the official address"}}),
    "ddp": Lesson(
        "ddp.py", "Train lesson one's CNN in several processes at once, the ranks, with "
        "DistributedDataParallel.", (*TRAINING, *MACHINE, "ranks", "nodes", "rendezvous",
                                     "dataset", "data_dir", "mirror", "sample", "out_dir",
                                     "resume"),
        {"augment": False, "photos": [], "tensorboard": False}, network="ddp",
        batch_script="slurm/ddp.sbatch"),
}


class SettingsError(Exception):
    pass


class SettingsParser(argparse.ArgumentParser):
    def error(self, message):
        if "--predict" in message:
            message += (". To read photos with the network saved last, run: "
                        f"{PYTHON} predict.py PHOTO")
        elif "--photos" in message or "augment" in message:
            message += (". Other pens and your photos are lesson two's: "
                        f"{PYTHON} handwriting.py --help")
        raise SettingsError(message)


NOT_GIVEN = "(an empty value)"  # what an option given "" parses to: the value it had holds


def option_type(check):
    """`check` for argparse; an empty value counts as not given, as an empty variable does."""

    def convert(value):
        if not value.strip():
            return NOT_GIVEN
        try:
            return check(value)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    convert.__name__ = check.__name__
    return convert


def add_option(parser, setting, value):
    """The setting's option; only the options given end up in the parsed namespace."""
    if setting.check is switch:
        parser.add_argument(setting.flag, dest=setting.name, action=argparse.BooleanOptionalAction,
                            help=f"{setting.help} (now: {'on' if value else 'off'}; "
                            f"{setting.variable}=1)")
    elif setting.check is photo_paths:
        parser.add_argument(setting.flag, dest=setting.name, type=option_type(photo_paths),
                            nargs="+", action="extend", metavar=setting.metavar,
                            help=f"{setting.help} ({setting.variable}, paths separated by "
                            f"{os.pathsep!r})")
    else:
        parser.add_argument(setting.flag, dest=setting.name,
                            type=option_type(setting.check), metavar=setting.metavar,
                            help=f"{setting.help} (now: {display(value)}; {setting.variable})")


def settings_parser(prog, description, settings, values, epilog=None):
    """An argparse parser of these settings' options, whose help shows the values they have now.
    Options left out are left out of what it parses, so that the parse says where each came
    from."""
    parser = SettingsParser(prog=prog, description=description, epilog=epilog,
                            allow_abbrev=False, argument_default=argparse.SUPPRESS)
    parser.settings = settings
    for setting in settings:
        add_option(parser, setting, values[setting.name])
    return parser


def given_options(parsed):
    """The options given a value, an empty one counting as not given; --photos's paths (a list for
    each PATH) as one list."""
    given = {name: value for name, value in vars(parsed).items() if value is not NOT_GIVEN}
    paths = [path for paths in given.pop("photos", []) if paths is not NOT_GIVEN
             for path in (paths if isinstance(paths, list) else [paths])]
    return {**given, "photos": paths} if paths else given


def parse(parser, values, origins, arguments):
    """The namespace of values, with those given as options put in, and `.origins`."""
    given = given_options(parser.parse_args(arguments))
    for setting in parser.settings:
        if setting.name in given:
            origins[setting.name] = setting.flag
    return argparse.Namespace(**{**values, **given, "origins": origins})


@dataclass(frozen=True)
class Setting:
    name: str  # as in the parameters cell
    default: object
    check: object  # a value as given → the value as the lesson uses it, or ValueError
    help: str  # for --help
    metavar: str = ""  # what the option takes; none for a switch
    option: str = ""  # when not --NAME with dashes
    comment: str = ""  # in the parameters cell, when not the help
    docs: str = ""  # in docs/settings.md's table (Markdown), when not the comment
    decides_result: bool = False  # a run cut short resumes only with the same value
    # What a switch trains the network for, such as "other pens": a network trained without it
    # never replaces one trained with it, whatever their plain test accuracy says.
    purpose: str = ""

    @property
    def flag(self):
        return self.option or "--" + self.name.replace("_", "-")

    @property
    def variable(self):
        return environment_name(self.flag)


def environment_name(option):
    return "MNISTLAB_" + option.lstrip("-").replace("-", "_").upper()


# The parameters cells and docs/settings.md's table are written from these by
# `.venv/bin/python .hooks/parameters.py`; a test checks that they are up to date.
SETTINGS = [
    Setting("epochs", 1, whole_number(1, 10_000), "passes over the training data", "N",
            docs="passes over the training data (other hands take longer to learn, so lesson "
            "two trains longer: see [Other writers](beyond.md#other-writers))",
            decides_result=True),
    Setting("batch_size", 128, whole_number(1, 60_000), "images per training step", "N",
            decides_result=True),
    Setting("lr", 0.02, learning_rate, "peak learning rate of the one-cycle schedule", "X",
            decides_result=True),
    Setting("seed", 0, whole_number(0, 2**63 - 1), "random seed: the same seed, the same result",
            "N", comment="the same seed gives the same result on the same machine",
            docs="random seed: the same seed gives the same result on the same machine",
            decides_result=True),
    Setting("channels", 16, whole_number(*CHANNELS), "feature maps of the first convolution", "N",
            comment="feature maps of the first convolution; the second has twice as many",
            decides_result=True),
    Setting("augment", True, switch, "train on half of each batch redrawn with other pens, "
            "slants, sizes, places and bends",
            comment="train on digits redrawn with other pens, slants, sizes and bends",
            docs="train on half of each batch redrawn with other pens, slants, sizes, places and "
            "bends, so that the network reads more hands than MNIST's (lesson one trains without "
            "them: see [Your own handwriting](beyond.md#your-own-handwriting))",
            decides_result=True, purpose="other pens"),
    Setting("device_name", "auto", device_choice, "where to train: auto, cpu, cuda, cuda:N or "
            "mps; auto takes the idle GPU with the most free memory that this PyTorch can run, "
            "else the cpu", "NAME", "--device",
            comment='where to train: "auto", "cpu", "cuda", "cuda:1" (a GPU by index), "mps"',
            docs="where to train: `cpu`, `cuda` (the first GPU), `cuda:1` (a GPU by its index, "
            "as `nvidia-smi` numbers them), `mps` (Apple's GPU); `auto` takes, of the CUDA GPUs "
            "this PyTorch can run, the idle one with the most free memory ([Which GPU]"
            "(shared-server.md#which-gpu)), then MPS, then the CPU, and says which and why"),
    Setting("threads", 0, whole_number(0, 4096), "CPU threads to train with; 0: every core "
            "this job may use (on a shared server, take your share)", "N",
            comment="CPU threads to train with; 0: every core this job may use",
            docs="CPU threads to train with; `0`, one for each core this job may use (a "
            "scheduler's or `taskset`'s share, not the whole machine). On a shared server, take "
            "your share: see [Long runs on a shared server](shared-server.md#your-share-of-the-"
            "server). More than this job's cores gets a warning and that many: more threads than "
            "cores wait on each other, and train many times slower"),
    Setting("dataset", "mnist", one_of(DATASET_NAMES), "mnist for digits, fashion for clothes",
            "{" + ",".join(DATASET_NAMES) + "}",
            comment='"mnist" for handwritten digits, "fashion" for Fashion-MNIST\'s clothes',
            docs="handwritten digits, or Fashion-MNIST's clothes (see [Beyond the test set]"
            "(beyond.md#beyond-the-test-set))", decides_result=True),
    Setting("data_dir", "data", folder, "folder of the data, downloaded into it if missing",
            "DIR", comment="the data goes in MNIST/raw/ in this folder, downloaded if missing",
            docs="where the data lies, in `DIR/MNIST/raw/`, or is downloaded to when it is not "
            "there"),
    Setting("mirror", "", text, "where to download the data from, if not the official one",
            "URL", comment="where to download the data from, if not the official address",
            docs="where to download the four files from, if not the official address "
            "(`https://…/`, or `file:///shared/mnist/` for a folder of `.gz` files)"),
    Setting("sample", False, switch, "train and test on the small sample in sample/",
            comment="True: train and test on the small sample in sample/, in seconds",
            docs="train and test on the small sample committed in "
            "[`sample/`](../sample/README.md)", decides_result=True),
    Setting("out_dir", "outputs", folder, "folder for the figures and the trained network",
            "DIR", comment="where the figures and the trained network are saved"),
    Setting("tensorboard", False, switch, "log the training to runs/ in the output folder",
            comment="True: log the training to runs/ in out_dir, for TensorBoard",
            docs="log the training to `runs/` in the output folder, for TensorBoard"),
    Setting("photos", ["sample/photo_of_a_7.jpg"], photo_paths,
            "photos of handwritten digits to read at the end", "PATH",
            comment="photos of handwritten digits to read",
            docs="photos of handwritten digits to read at the end (paths separated by `:` in the "
            "variable)"),
    Setting("ranks", 2, whole_number(1, 1024), "processes to train in on this machine: one for "
            "each GPU, or CPU processes", "N",
            comment="processes (ranks) on this machine: one for each GPU, or CPU processes",
            docs="processes (*ranks*) that train together on this machine, each with a replica "
            "of the network: one for each GPU, or CPU processes (see [Many processes]"
            "(many-gpus.md))"),
    Setting("nodes", 1, whole_number(1, 4096), "machines (launchers) that meet at the "
            "rendezvous, each starting --ranks processes", "N",
            comment="machines that train together, each starting `ranks` processes",
            docs="machines that train together, each starting `ranks` processes; more than one "
            "needs a `rendezvous` (under Slurm, [`slurm/ddp.sbatch`](../slurm/ddp.sbatch) sets "
            "both)"),
    Setting("rendezvous", "", meeting_place, "HOST:PORT where the machines of a run over "
            "several meet, the first one's name and a free port; empty: this machine alone",
            "HOST:PORT", comment='where the machines meet, "HOST:PORT"; "": this machine alone',
            docs="where the machines of a run over several meet: the first one's name and a "
            "free port on it, `HOST:PORT`; empty, this machine alone"),
    Setting("resume", False, switch, "continue the run that was cut short in out_dir, from its "
            "last finished epoch",
            comment="True: go on with the run cut short in out_dir, after its last epoch",
            docs="go on with the run that was cut short in the output folder, after its last "
            "finished epoch (see [Long runs](shared-server.md#long-runs-on-a-shared-server))"),
]
SETTING = {setting.name: setting for setting in SETTINGS}
PATH_CHECKS = (folder, photo_paths)  # relative paths in the cell are from the lesson's folder


def settings_of(lesson):
    """The settings of the lesson's parameters cell, in order, with its own defaults and
    comments."""
    return [replace(SETTING[name], **lesson.own.get(name, {})) for name in lesson.settings]


def in_lesson_folder(value):
    """A path of the parameters cell (or a list of them), taken from the lesson's folder."""
    if isinstance(value, (list, tuple)):
        return [in_lesson_folder(item) for item in value]
    return HERE / Path(str(value)).expanduser() if str(value).strip() else value


def from_cell(setting, cell):
    if setting.name not in cell:
        raise SettingsError(
            f"the parameters cell has no {setting.name}: run it again, or restore it from git")
    value = cell[setting.name]
    if value is None:  # papermill's -p NAME None, or a cell's None: the default
        value = setting.default
    try:
        return setting.check(in_lesson_folder(value) if setting.check in PATH_CHECKS else value)
    except ValueError as error:
        raise SettingsError(f"{setting.name} in the parameters cell: {error}") from None


def from_environment(setting, environment):
    try:
        return setting.check(environment[setting.variable])
    except ValueError as error:
        raise SettingsError(f"environment variable {setting.variable}: {error}") from None


def starting_values(settings, cell, environment):
    """({name: value}, {name: origin}): each setting from the cell, or from its MNISTLAB_*
    variable where that is set (an empty one counts as unset)."""
    values, origins = {}, {}
    for setting in settings:
        if environment.get(setting.variable, "").strip():
            values[setting.name] = from_environment(setting, environment)
            origins[setting.name] = setting.variable
        else:
            values[setting.name] = from_cell(setting, cell)
    return values, origins


def program_name(lesson, own_program):
    """The script a terminal runs: the lesson's, or a program of the learner's own beside it."""
    return Path(sys.argv[0]).name if own_program and not IN_NOTEBOOK else lesson.script


class Settings(argparse.Namespace):
    """A lesson's settings, read and checked: each value by its name (settings.epochs), printed
    as a line of them all (describe)."""

    def __str__(self):
        return describe(self)

    def note_unread_edits(self, cell):
        """Print a note naming the parameters whose value in `cell` (the lesson's globals())
        has changed since these settings were read from it: in a kernel, the parameters cell
        edited and run again, without the cell that reads it."""
        edited = [name for name, value in self.cell_values.items()
                  if cell.get(name, value) != value]
        if edited:
            print(f"Note: the parameters cell was changed after the settings were read "
                  f"({', '.join(edited)}), so this run uses the old values. To use the new ones, "
                  f"run the cell after the parameters cell, then the ones below it, again.")


def read_settings(cell=None, arguments=None, environment=None, lesson="mnistlab"):
    """The settings of the lesson (a key of LESSONS) from its parameters cell (a dict; None for
    its defaults), the environment and the command line, and its fixed values for the others.
    Relative paths in the cell are taken from the lesson's folder; those typed in a terminal,
    from the current folder.

    Returns Settings: the checked values, with `.origins`: where each value that did not come
    from the cell came from, and `.network_name`. A wrong value raises SettingsError naming where
    it came from."""
    if arguments is None:
        # A kernel's own command line (-f kernel.json) is not meant for the lesson.
        arguments = [] if IN_NOTEBOOK else sys.argv[1:]
    lesson, own_program = LESSONS[lesson], cell is None
    if own_program:  # a program beside the lessons, with their defaults: it has no cell
        cell = {setting.name: setting.default for setting in settings_of(lesson)}
    values, origins = starting_values(settings_of(lesson), cell,
                                      os.environ if environment is None else environment)
    parser = settings_parser(
        f"{PYTHON} {program_name(lesson, own_program)}",
        f"{lesson.about} Each option overrides the lesson's parameters cell.",
        settings_of(lesson), values,
        "Each option can also be set by an environment variable, such as MNISTLAB_EPOCHS=3; an "
        "option wins over the variable.")
    parser.add_argument("--doctor", action="store_true", default=False,
                        help="print what this machine offers the lesson, to paste when you ask "
                        "for help, and stop")
    parser.add_argument("--get-data", action="store_true", default=False,
                        help="download the dataset into data_dir, check it, and stop (on a "
                        "cluster, on the login node: compute nodes may have no internet)")
    settings = Settings(**vars(parse(parser, {**lesson.fixed, **values}, origins, arguments)))
    settings.lesson, settings.network_name = lesson, lesson.network or settings.dataset
    settings.cell_values = {} if own_program else {name: cell[name] for name in values}
    return settings


def describe(settings):
    """A line of every setting, paths as typed, saying which came from elsewhere than the cell."""
    line = ", ".join(f"{s.name}={display(getattr(settings, s.name))}"
                     for s in settings_of(settings.lesson))
    if settings.origins:
        line += ("\n  (from " + ", ".join(f"{origin}: {name}" for name, origin in
                                          settings.origins.items())
                 + "; these win over the "
                 + ("parameters cell)" if settings.cell_values else "lesson's defaults)"))
    return "\n".join(["Settings: " + line, *overridden_edits(settings)])


def overridden_edits(settings):
    """A line for each value edited in the parameters cell that a variable overrides unseen: a
    .env file that VS Code read when the kernel started wins over every later edit."""
    cell = settings.cell_values
    defaults = {setting.name: setting.default for setting in settings_of(settings.lesson)}
    return [f"Note: {name} = {display(cell[name])} in the parameters cell is not used: "
            f"{origin} wins over it (from the environment, or a .env file in VS Code). Remove "
            f"{origin} there and restart the kernel to use the cell's value."
            for name, origin in settings.origins.items()
            if origin.startswith("MNISTLAB_") and name in cell
            and cell[name] != defaults[name]]


def settings_or_stop(cell=None, lesson="mnistlab"):
    """read_settings of the lesson (a key of LESSONS), ending in one plain line, exit status 2,
    when a value is wrong; with --doctor, the doctor's report, then the end. In a kernel a wrong
    value stops the cell, and every later cell that uses the settings, rather than run on with
    the values from before.

    `cell` may be the lesson's globals(): only the settings' names are read from it. Without
    one, the lesson's defaults, as a program of your own beside the lessons has them."""
    values = None if cell is None else {
        s.name: cell[s.name] for s in settings_of(LESSONS[lesson]) if s.name in cell}
    try:
        settings = read_settings(values, lesson=lesson)
    except SettingsError as error:
        script = program_name(LESSONS[lesson], cell is None)
        message = f"{error}. Run {PYTHON} {script} --help to see the settings."
        if not IN_NOTEBOOK:
            stop(message)
        return BrokenSettings(f"{message} Fix it, then run the parameters cell and the cells "
                              f"below it again.")
    if settings.doctor:
        print(*doctor_report(settings), sep="\n")
        sys.exit(0)
    if settings.get_data:
        get_data(DATASETS[settings.dataset], settings.data_dir, settings.mirror)
        sys.exit(0)
    if settings.tensorboard and not tensorboard_importable():
        stop("--tensorboard: TensorBoard is not installed. Install it with "
             "'.venv/bin/pip install tensorboard' (or 'pip install tensorboard'), then run again")
    missing = missing_requirements()
    if missing:  # better said now than as an ImportError in the next cell
        stop(install_advice(missing))
    return settings


class BrokenSettings:
    """Settings that failed their check: reading any of them stops with the reason."""

    def __init__(self, message):
        self.message = message

    def __getattr__(self, name):
        if name in ("origins", "lesson", "network_name", "note_unread_edits") or name in SETTING:
            stop(self.message)
        raise AttributeError(name)  # what other tools look for, such as a variable viewer

    def __str__(self):
        stop(self.message)


def program_settings(prog, description, names, arguments, environment, more_arguments):
    """The settings `names` (out_dir, device_name, …) of a program beside the lessons, such as
    predict.py, from its command line and the MNISTLAB_* variables, checked as the lessons check
    them, with the arguments that more_arguments(parser) adds; a wrong one, or a package the
    program needs missing, stops in one line."""
    settings = [SETTING[name] for name in names]
    try:
        values, origins = starting_values(settings, {s.name: s.default for s in settings},
                                          environment)
        parser = settings_parser(prog, description, settings, values)
        more_arguments(parser)
        options = parse(parser, values, origins, arguments)
    except SettingsError as error:
        stop(f"{error}. Run {prog} --help to see how to use it.")
    missing = missing_requirements()
    if missing:  # better said in a line than as an ImportError
        stop(install_advice(missing))
    return options
