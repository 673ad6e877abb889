"""What keeps the lessons, mnistlab.py and handwriting.py, robust, so that each can tell its
story: one module per concern, each short enough to read in one sitting.

    console      one plain line to stop with; a quiet Ctrl-C for programs run in a terminal
    lessons      the two lessons: their scripts, their settings, their networks' names
    settings     each setting declared once; the parameters cell, MNISTLAB_* and options
    options      the command line: an option for each setting, and --help
    checks       the checks of the settings' values
    doctor       what this machine offers the lesson (--doctor), without PyTorch
    builds       which PyTorch build runs on which NVIDIA GPU and driver, and how to install it
    cluster      a Slurm job's share of the machine; a login node, where nothing should train
    files        files written whole, regular files read, one run a folder, writable folders
    data         finding, downloading and checking the dataset files
    device       where to train; whether the training fits in its memory, and if it does not
    figures      figures shown and saved
    checkpoints  the trained network on disk
    stopping     what asks a run to stop after its batch: Ctrl-C, SIGTERM, SIGUSR1
    training     TrainingRun: progress, test accuracy within epochs, trouble, TensorBoard
    resume       the training state saved after each epoch, and --resume's checks
    photos       reading photos of handwriting
    exercises    the checks of lesson one's exercises
    export       copies the lesson's #@save cells into mnistlab_saved.py (not imported here)

`import mnistlab_tools as tools` changes nothing in the importing program and loads no PyTorch:
`tools.NAME` loads the module that holds NAME when it is first used. The modules never import a
lesson, and their functions take what they use as arguments.
"""

import importlib
import re
from pathlib import Path

# The modules; a name is looked for in the source of each, in this order, and only the module
# that defines it is loaded, so that a light name never loads PyTorch.
MODULES = ("console", "lessons", "settings", "options", "checks", "files", "builds", "doctor",
           "cluster", "data", "device", "figures", "checkpoints", "resume", "stopping", "training",
           "photos", "exercises")


def __getattr__(name):
    for module in MODULES:
        source = (Path(__file__).parent / f"{module}.py").read_text(encoding="utf-8")
        if re.search(rf"^(def |class ){name}\b|^{name} = ", source, re.M):
            value = getattr(importlib.import_module(f".{module}", __name__), name)
            globals()[name] = value  # found once, kept: the next use costs nothing
            return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
