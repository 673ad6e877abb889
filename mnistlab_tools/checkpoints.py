"""The trained network on disk: its weights with what it takes to use them, written whole, and
loaded with weights_only, so that a checkpoint from elsewhere cannot run code."""

import math
import pickle
import shlex
from pathlib import Path

import torch

from .console import readable
from .files import NotARegularFile, open_regular, save_file
from .checks import CHANNELS
from .data import DATASET_NAMES


class CheckpointError(Exception):
    pass


def checkpoint_path(out_dir, name):
    """Each network has its own checkpoint, named by its dataset (lesson one: mnist, fashion) or
    by its lesson (handwriting), so that training one never replaces another."""
    return Path(out_dir) / f"{name}_cnn.pt"


def save_checkpoint(path, model, channels, dataset, class_names, mean, std, outcome=None):
    """Write the weights and what it takes to use them, whole or not at all, at `path`, or beside
    it where `path` holds a better network (see kept_instead); the path written, or None.
    outcome: how the network was trained and how well it did (TrainingRun.outcome)."""
    checkpoint = {"weights": model.state_dict(), "channels": channels, "dataset": dataset,
                  "class_names": list(class_names), "mean": float(mean), "std": float(std),
                  **({"outcome": outcome} if outcome else {})}
    if outcome:
        path = kept_instead(path, outcome) or path
    return path if save_file(path, lambda partial: torch.save(checkpoint, partial)) else None


def saved_outcome(path):
    """What the checkpoint at `path` says of how its network was trained: {} for one saved by an
    older lesson, None where there is no readable checkpoint to lose."""
    try:
        checkpoint = read_checkpoint(path, "cpu")
    except CheckpointError:  # missing, damaged or unreadable: nothing a new network could spoil
        return None
    outcome = checkpoint.get("outcome") if isinstance(checkpoint, dict) else None
    return outcome if isinstance(outcome, dict) else {}


# How a network can be lesser than the one it would replace: the name it is saved under beside
# the better one, and why.
LESSER = {"cut-short": "it was cut short", "sample": "it was trained on the small sample",
          "lower": "it scored lower on the same test set"}


def why_lesser(outcome, old):
    """Why (a key of LESSER) a network with this outcome must not replace the one whose outcome
    is `old`, or None. Measured on the same test set, only a score as high or higher replaces
    it; otherwise a network cut short, or trained on the sample, never replaces one."""
    if old is None:
        return None
    if old.get("data") == outcome["data"] and "accuracy" in old:
        if outcome["accuracy"] >= old["accuracy"]:
            return None
        return "cut-short" if not outcome["complete"] else "lower"
    return ("cut-short" if not outcome["complete"] else
            "sample" if outcome["data"] == "sample" else None)


def network_record(checkpoint):
    """How a loaded checkpoint's network was trained and how well it did, in a few words."""
    outcome = checkpoint.get("outcome")
    if not isinstance(outcome, dict) or not isinstance(outcome.get("accuracy"), (int, float)):
        return "a network saved by an earlier lesson, which recorded no score"
    cut = "" if outcome.get("complete", True) else ", cut short"
    return f"a network that scored {describe_outcome(outcome)}{cut}"


def describe_outcome(old):
    if "accuracy" not in old:
        return "saved by an earlier lesson"
    test_set = "the sample's test set" if old.get("data") == "sample" else "the full test set"
    return f"{old['accuracy']:.2f} % on {test_set}"


def kept_instead(path, outcome):
    """Where to save a lesser network so that a better one at `path` is kept, with one line
    saying so; None where it may replace what is there."""
    old = saved_outcome(path)
    lesser = why_lesser(outcome, old)
    if lesser is None:
        return None
    beside = path.with_name(f"{path.stem}.{lesser}{path.suffix}")
    print(f"Kept {readable(path)} ({describe_outcome(old)}): this network "
          f"({outcome['accuracy']:.2f} %) is saved beside it as {readable(beside)}, since "
          f"{LESSER[lesser]}. To use it all the same, give it to predict.py with --checkpoint, "
          f"or put it in the other's place: mv {shlex.quote(readable(beside))} "
          f"{shlex.quote(readable(path))}")
    return beside


def read_checkpoint(path, device):
    """What torch.load finds at `path`, tensors alone; or a CheckpointError that says why not."""
    try:
        with open_regular(path) as file:  # a pipe or a device would block torch.load, or never end
            # weights_only: tensors, numbers and strings alone: a file from elsewhere cannot run
            # code
            return torch.load(file, map_location=device, weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"There is no checkpoint at {readable(path)}: run the lesson to "
                              f"train and save one.") from None
    except PermissionError:
        raise CheckpointError(f"{readable(path)} is not readable by you (permission denied): ask "
                              f"its owner (ls -l shows who), or run the lesson to save a "
                              f"checkpoint of your own.") from None
    except IsADirectoryError:
        raise CheckpointError(f"{readable(path)} is a folder, not a checkpoint.") from None
    except NotARegularFile as error:
        raise CheckpointError(f"{readable(path)} is {error.strerror}, not a checkpoint file: name "
                              f"the .pt file the lesson saved.") from None
    except pickle.UnpicklingError as error:
        if "unsupported global" not in str(error).lower():  # random bytes, say
            raise CheckpointError(damaged(path)) from None
        # what weights_only=True refuses: pickled Python objects of named classes
        raise CheckpointError(f"{readable(path)} holds a whole pickled Python object, not the "
                              f"weights and settings the lesson saves, and such a file could run "
                              f"code when loaded. Run the lesson to save a checkpoint of its "
                              f"own.") from None
    except Exception:  # torch reports a damaged file in many ways, none of them for a learner
        raise CheckpointError(damaged(path)) from None


def damaged(path):
    return (f"{readable(path)} is damaged, incomplete, or not a PyTorch checkpoint. Delete it and "
            f"run the lesson again.")


def number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# What each field of a checkpoint must be, checked before anything is built from it.
FIELD_RULES = {
    "channels": (lambda value: isinstance(value, int) and not isinstance(value, bool)
                 and CHANNELS[0] <= value <= CHANNELS[1],
                 f"a whole number from {CHANNELS[0]} to {CHANNELS[1]}"),
    "dataset": (lambda value: value in DATASET_NAMES, f"one of {', '.join(DATASET_NAMES)}"),
    "class_names": (lambda value: isinstance(value, list) and len(value) == 10
                    and all(isinstance(name, str) for name in value), "a list of ten names"),
    "mean": (number, "a number"),
    "std": (lambda value: number(value) and value > 0, "a number above 0"),
    "weights": (lambda value: isinstance(value, dict)
                and all(isinstance(tensor, torch.Tensor) for tensor in value.values()),
                "the network's tensors by name"),
}


def field_problem(checkpoint):
    """The first field of the checkpoint that is missing or not what it must be, in words."""
    for name, (fits, rule) in FIELD_RULES.items():
        if name not in checkpoint:
            return f"it has no {name}"
        if not fits(checkpoint[name]):
            return f"its {name} is {str(checkpoint[name])[:40]!r}, where it must be {rule}"
    return None


def shape_mismatch(model, weights, network_name):
    """The first layer whose saved shape differs from the network's, in words, or None."""
    own = model.state_dict()
    for name in sorted(set(own) | set(weights)):
        if name not in weights:
            return f"it has no {name}, which {network_name} has"
        if name not in own:
            return f"it has a layer {name}, which {network_name} has not"
        if own[name].shape != weights[name].shape:
            return (f"its {name} is {tuple(weights[name].shape)}, where {network_name}'s is "
                    f"{tuple(own[name].shape)}")
    return None


def load_checkpoint(path, network_class, device):
    """(model, checkpoint): a network_class(channels) with the saved weights, and what was saved
    with them; or a CheckpointError that says why they do not load."""
    checkpoint = read_checkpoint(path, device)
    if not isinstance(checkpoint, dict) or "weights" not in checkpoint:
        raise CheckpointError(f"{readable(path)} holds weights alone, without the settings they "
                              f"were trained with (an older lesson saved it so). Run the lesson "
                              f"again to save a new one.")
    problem = field_problem(checkpoint)
    if problem:
        raise CheckpointError(f"{readable(path)} cannot be used: {problem}. Run the lesson again "
                              f"to save a new one.")
    model = network_class(checkpoint["channels"]).to(device, memory_format=torch.channels_last)
    mismatch = shape_mismatch(model, checkpoint["weights"], network_class.__name__)
    if mismatch:
        raise CheckpointError(f"{readable(path)} holds the weights of a different network, which "
                              f"do not fit {network_class.__name__}: {mismatch}. Run the lesson "
                              f"again to save a matching one.")
    model.load_state_dict(checkpoint["weights"])
    return model.eval(), checkpoint
