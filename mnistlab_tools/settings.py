"""The lessons' settings, each declared once below: its name in the parameters cell, its default,
how a value is checked, what it does, its option and its environment variable.

A command-line option wins over an MNISTLAB_* variable, which wins over the parameters cell. Each
check raises ValueError with the rule; read_settings names where the bad value came from. Standard
library only, so that --help answers at once.
"""

import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from .checks import (CHANNELS, device_choice, folder, learning_rate, one_of, photo_paths, switch,
                     text, whole_number)
from .console import IN_NOTEBOOK, PYTHON, display
from .data import DATASET_NAMES
from .files import HERE
from .lessons import LESSONS
from .options import SettingsError, parse, settings_parser


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

    @property
    def flag(self):
        return self.option or "--" + self.name.replace("_", "-")

    @property
    def variable(self):
        return environment_name(self.flag)


def environment_name(option):
    return "MNISTLAB_" + option.lstrip("-").replace("-", "_").upper()


# The parameters cells and docs/settings.md's table are written from these by
# `python -m mnistlab_tools.parameters`; a test checks that they are up to date.
SETTINGS = [
    Setting("epochs", 1, whole_number(1, 10_000), "passes over the training data", "N",
            docs="passes over the training data (other hands take longer to learn, so lesson "
            "two trains longer: see [Other writers](beyond.md#other-writers))"),
    Setting("batch_size", 128, whole_number(1, 60_000), "images per training step", "N"),
    Setting("lr", 0.02, learning_rate, "peak learning rate of the one-cycle schedule", "X"),
    Setting("seed", 0, whole_number(0, 2**63 - 1), "random seed: the same seed, the same result",
            "N", comment="the same seed gives the same result on the same machine",
            docs="random seed: the same seed gives the same result on the same machine"),
    Setting("channels", 16, whole_number(*CHANNELS), "feature maps of the first convolution", "N",
            comment="feature maps of the first convolution; the second has twice as many"),
    Setting("augment", True, switch, "train on half of each batch redrawn with other pens, "
            "slants, sizes, places and bends",
            comment="train on digits redrawn with other pens, slants, sizes and bends",
            docs="train on half of each batch redrawn with other pens, slants, sizes, places and "
            "bends, so that the network reads more hands than MNIST's (lesson one trains without "
            "them: see [Your own handwriting](beyond.md#your-own-handwriting))"),
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
            "(beyond.md#beyond-the-test-set))"),
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
            "[`sample/`](../sample/README.md)"),
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


def read_settings(cell, arguments=None, environment=None, lesson="mnistlab"):
    """The settings of the lesson (a key of LESSONS) from its parameters cell (a dict), the
    environment and the command line, and its fixed values for the others. Relative paths in the
    cell are taken from the lesson's folder; those typed in a terminal, from the current folder.

    Returns a namespace of the checked values, with `.origins`: where each value that did not come
    from the cell came from, and `.network_name`. A wrong value raises SettingsError naming where
    it came from."""
    if arguments is None:
        # A kernel's own command line (-f kernel.json) is not meant for the lesson.
        arguments = [] if IN_NOTEBOOK else sys.argv[1:]
    lesson = LESSONS[lesson]
    values, origins = starting_values(settings_of(lesson), cell,
                                      os.environ if environment is None else environment)
    parser = settings_parser(
        f"{PYTHON} {lesson.script}",
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
    settings = parse(parser, {**lesson.fixed, **values}, origins, arguments)
    settings.lesson, settings.network_name = lesson, lesson.network or settings.dataset
    settings.cell_values = {name: cell[name] for name in values if name in cell}
    return settings


def describe(settings):
    """A line of every setting, paths as typed, saying which came from elsewhere than the cell."""
    line = ", ".join(f"{s.name}={display(getattr(settings, s.name))}"
                     for s in settings_of(settings.lesson))
    if settings.origins:
        line += ("\n  (from " + ", ".join(f"{origin}: {name}" for name, origin in
                                          settings.origins.items())
                 + "; these win over the parameters cell)")
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


def note_unread_edits(settings, cell):
    """Print a note naming the parameters whose value in `cell` (the lesson's globals()) has
    changed since the settings were read from it: in a kernel, the parameters cell edited and run
    again, without the cell that reads it."""
    edited = [name for name, value in settings.cell_values.items()
              if cell.get(name, value) != value]
    if edited:
        print(f"Note: the parameters cell was changed after the settings were read "
              f"({', '.join(edited)}), so this run uses the old values. To use the new ones, "
              f"run the cell after the parameters cell, then the ones below it, again.")
