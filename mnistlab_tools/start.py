"""The lesson's first step: its settings read, or, where the command line asks for an action
instead (--doctor, --get-data), that action done and the program ended; then what the lesson
needs installed checked, so that a missing package is said at once rather than cells later."""

import sys

from .console import IN_NOTEBOOK, PYTHON, stop
from .data import DATASETS, get_data
from .doctor import doctor_report, install_advice, missing_requirements, tensorboard_importable
from .lessons import LESSONS
from .options import SettingsError
from .settings import SETTING, read_settings, settings_of


def settings_or_stop(cell, lesson="mnistlab"):
    """read_settings of the lesson (a key of LESSONS), ending in one plain line, exit status 2,
    when a value is wrong; with --doctor, the doctor's report, then the end. In a kernel a wrong
    value stops the cell, and every later cell that uses the settings, rather than run on with
    the values from before.

    `cell` may be the lesson's globals(): only the settings' names are read from it."""
    values = {s.name: cell[s.name] for s in settings_of(LESSONS[lesson]) if s.name in cell}
    try:
        settings = read_settings(values, lesson=lesson)
    except SettingsError as error:
        message = f"{error}. Run {PYTHON} {LESSONS[lesson].script} --help to see the settings."
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
        if name in ("origins", "lesson", "network_name") or name in SETTING:
            stop(self.message)
        raise AttributeError(name)  # what other tools look for, such as a variable viewer
