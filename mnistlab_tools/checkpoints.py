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


def save_checkpoint(path, model, channels, dataset, class_names, mean, std):
    """The weights and what it takes to use them, written whole or not at all."""
    checkpoint = {"weights": model.state_dict(), "channels": channels, "dataset": dataset,
                  "class_names": list(class_names), "mean": float(mean), "std": float(std)}
    return save_file(path, lambda partial: torch.save(checkpoint, partial))


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
