"""The trained network on disk: its weights with what it takes to use them, written whole, and
loaded with weights_only, so that a checkpoint from elsewhere cannot run code."""

import pickle
from pathlib import Path

import torch

from .console import readable
from .files import save_file


class CheckpointError(Exception):
    pass


def checkpoint_path(out_dir, dataset):
    """Each dataset has its own checkpoint, so that training on one never replaces the other's."""
    return Path(out_dir) / f"{dataset}_cnn.pt"


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
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # missing, damaged or unreadable: nothing that a new network could spoil
        return None
    outcome = checkpoint.get("outcome", {}) if isinstance(checkpoint, dict) else None
    return outcome if isinstance(outcome, dict) else {}


def why_lesser(outcome, old):
    """Why a network with this outcome must not replace the one whose outcome is `old`, or None:
    cut short, or trained on the sample, and not measured better on the same test set."""
    if old is None:
        return None
    lesser = ("it was cut short" if not outcome["complete"] else
              "it was trained on the small sample" if outcome["data"] == "sample" else None)
    measured_alike = old.get("data") == outcome["data"] and "accuracy" in old
    if lesser and not (measured_alike and outcome["accuracy"] >= old["accuracy"]):
        return lesser
    return None


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
    beside = path.with_name(f"{path.stem}.{'cut-short' if not outcome['complete'] else 'sample'}"
                            f"{path.suffix}")
    print(f"Kept {readable(path)} ({describe_outcome(old)}): this network is saved beside it as "
          f"{readable(beside)}, since {lesser}. To use it all the same, give it to predict.py "
          f"with --checkpoint, or rename it to {path.name}.")
    return beside


def read_checkpoint(path, device):
    """What torch.load finds at `path`, tensors alone; or a CheckpointError that says why not."""
    try:
        # weights_only: tensors, numbers and strings alone: a file from elsewhere cannot run code
        return torch.load(path, map_location=device, weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"There is no checkpoint at {readable(path)}: run the lesson to "
                              f"train and save one.") from None
    except PermissionError:
        raise CheckpointError(f"{readable(path)} is not readable by you (permission denied): ask "
                              f"its owner (ls -l shows who), or run the lesson to save a "
                              f"checkpoint of your own.") from None
    except IsADirectoryError:
        raise CheckpointError(f"{readable(path)} is a folder, not a checkpoint.") from None
    except pickle.UnpicklingError:  # what weights_only=True refuses: pickled Python objects
        raise CheckpointError(f"{readable(path)} holds a whole pickled Python object, not the "
                              f"weights and settings the lesson saves, and such a file could run "
                              f"code when loaded. Run the lesson to save a checkpoint of its "
                              f"own.") from None
    except Exception:  # torch reports a damaged file in many ways, none of them for a learner
        raise CheckpointError(f"{readable(path)} is damaged, incomplete, or not a PyTorch "
                              f"checkpoint. Delete it and run the lesson again.") from None


def load_checkpoint(path, network_class, device):
    """(model, checkpoint): a network_class(channels) with the saved weights, and what was saved
    with them; or a CheckpointError that says why they do not load."""
    checkpoint = read_checkpoint(path, device)
    expected = {"weights", "channels", "dataset", "mean", "std"}
    if not isinstance(checkpoint, dict) or not expected <= set(checkpoint):
        raise CheckpointError(f"{readable(path)} holds weights alone, without the settings they "
                              f"were trained with (an older lesson saved it so). Run the lesson "
                              f"again to save a new one.")
    model = network_class(checkpoint["channels"]).to(device, memory_format=torch.channels_last)
    try:
        model.load_state_dict(checkpoint["weights"])
    except (RuntimeError, TypeError, AttributeError) as error:
        raise CheckpointError(
            f"{readable(path)} holds the weights of a different network, which do not fit "
            f"{network_class.__name__} ({str(error).splitlines()[-1].strip()[:120]}). Run the "
            f"lesson again to save a matching one.") from None
    return model.eval(), checkpoint
