"""What a run saves in its output folder, and how it is read back: the trained network, with
what it takes to use it and how well it did, and the training state after each epoch, from which
--resume goes on. One naming rule (`NAME_cnn.pt`, `NAME_training.pt`), one rule that keeps the
better network, and every file read with weights_only, so that a file from elsewhere cannot run
code. Nothing here knows MNIST: any nn.Module, any classes, any image size."""

import contextlib
import math
import pickle
import shlex
import zipfile
from pathlib import Path

import torch

from .console import display, readable, stop
from .files import NotARegularFile, open_regular, save_file, what_is_at, why_not_writable


class CheckpointError(Exception):
    pass


def network_path(folder, name):
    """Each network has its own file, named by its dataset (lesson one: mnist, fashion) or by its
    lesson (handwriting), so that training one never replaces another."""
    return Path(folder) / f"{name}_cnn.pt"


def training_state_path(folder, name):
    """The training state of the run that trains network `name`, saved after each epoch."""
    return Path(folder) / f"{name}_training.pt"


def save_network(path, model, arguments, class_names, mean, std, outcome=None):
    """Write the weights and what it takes to use them again (the network class's arguments, the
    class names, the pixels' mean and std), whole or not at all, at `path`, or beside it where
    `path` holds a better network (see kept_instead); the path written, or None. outcome: how
    the network was trained and how well it did (Run.outcome); without one, `path` is written
    whatever it holds."""
    checkpoint = {"weights": model.state_dict(), "arguments": dict(arguments),
                  "class_names": [str(name) for name in class_names],
                  "mean": plain_numbers(mean), "std": plain_numbers(std),
                  **({"outcome": outcome} if outcome else {})}
    if outcome:
        path = kept_instead(path, outcome) or path
    return path if save_file(path, lambda partial: torch.save(checkpoint, partial)) else None


def plain_numbers(value):
    """A mean or std as the checkpoint keeps it: a number, or one for each colour channel."""
    if isinstance(value, torch.Tensor):
        value = value.tolist()
    return [float(item) for item in value] if isinstance(value, (list, tuple)) else float(value)


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
LESSER = {"cut-short": "it was cut short", "fewer-images": "it was trained on fewer images",
          "lower": "it scored lower on the same test set"}


def why_lesser(outcome, old):
    """Why (a key of LESSER) a network with this outcome must not replace the one whose outcome
    is `old`, or None. Trained for the same purposes (Setting.purpose) on as many images (in a
    lesson, tested on the same set), only a score as high or higher replaces it; otherwise a
    network cut short, trained on fewer images (the sample, say), or trained for less (without
    other pens) never replaces one, and one trained for more does."""
    if old is None:
        return None
    lost = set(purposes_of(old)) - set(purposes_of(outcome))
    if lost:  # it was not trained for what the saved one was: its plain score cannot tell
        return "without-" + sorted(lost)[0].replace(" ", "-")
    if set(purposes_of(outcome)) - set(purposes_of(old)):  # trained for more: nor here
        return None if outcome["complete"] else "cut-short"
    if old.get("training_images") == outcome["training_images"] and "accuracy" in old:
        if outcome["accuracy"] >= old["accuracy"]:
            return None
        return "cut-short" if not outcome["complete"] else "lower"
    if not outcome["complete"]:
        return "cut-short"
    fewer = isinstance(old.get("training_images"), int) and (
        outcome["training_images"] < old["training_images"])
    return "fewer-images" if fewer else None


def network_record(checkpoint):
    """How a loaded checkpoint's network was trained and how well it did, in a few words."""
    outcome = checkpoint.get("outcome")
    if not isinstance(outcome, dict) or not isinstance(outcome.get("accuracy"), (int, float)):
        return "a network saved by an earlier lesson, which recorded no score"
    cut = "" if outcome.get("complete", True) else ", cut short"
    return f"a network that scored {describe_outcome(outcome)}{cut}"


def purposes_of(outcome):
    """What a network was trained for, as its record says (Run.outcome): [] where it says
    nothing, or nothing that can be read."""
    purposes = outcome.get("trained_with")
    if isinstance(purposes, list) and all(isinstance(purpose, str) for purpose in purposes):
        return purposes
    return []


def describe_outcome(old):
    if "accuracy" not in old:
        return "saved by an earlier lesson"
    trained = old.get("training_images")
    images = f"{trained:,} images" if isinstance(trained, int) else "images it did not record"
    purposes = purposes_of(old)
    with_them = f" with {' and '.join(purposes)}" if purposes else ""
    return f"{old['accuracy']:.2f} % on its test set, trained on {images}{with_them}"


def why_lesser_in_words(lesser):
    if lesser.startswith("without-"):
        purpose = lesser.removeprefix("without-").replace("-", " ")
        return f"it was trained without {purpose}, and the saved one with them"
    return LESSER[lesser]


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
          f"{why_lesser_in_words(lesser)}. To use it all the same, give it to predict.py with "
          f"--checkpoint, or put it in the other's place: mv {shlex.quote(readable(beside))} "
          f"{shlex.quote(readable(path))}")
    return beside


def read_checkpoint(path, device):
    """What torch.load finds at `path`, tensors alone; or a CheckpointError that says why not."""
    kind = other_format(path)
    if kind:  # asked first: torch.load would hand a TorchScript program to torch.jit.load
        raise CheckpointError(another_programs(path, kind))
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


def another_programs(path, kind):
    return (f"{readable(path)} is {kind}, not a network saved by a lesson; it is kept as it is. "
            f"Name the NAME_cnn.pt file a lesson saved, or run the lesson to save one.")


def damaged(path):
    """Why a file torch.load cannot read is no checkpoint."""
    return (f"{readable(path)} is damaged, incomplete, or not a PyTorch checkpoint. If a lesson "
            f"saved it, delete it and run the lesson again; otherwise name the NAME_cnn.pt file "
            f"a lesson saved.")


def other_format(path):
    """What a whole file of another program's is, as its first bytes say: a safetensors file or
    a TorchScript program; None for anything else."""
    try:
        with open_regular(path) as file:
            start = file.read(4096)
        if len(start) > 8 and start[8:9] == b"{" and b'"dtype"' in start[8:]:
            return "a safetensors file (weights in another program's format, as Hugging Face " \
                   "shares them)"
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return None
    if any(name.split("/", 1)[-1].startswith(("code/", "constants.pkl")) for name in names):
        return "a TorchScript program (saved by torch.jit.save), which runs as it is"
    return None


def number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def numbers_or_number(value, above=-math.inf):
    values = value if isinstance(value, list) and value else [value]
    return all(number(item) and item > above for item in values)


# What each field of a checkpoint must be, checked before anything is built from it.
FIELD_RULES = {
    "arguments": (lambda value: isinstance(value, dict)
                  and all(isinstance(name, str) for name in value),
                  "the network class's arguments by name"),
    "class_names": (lambda value: isinstance(value, list) and len(value) >= 2
                    and all(isinstance(name, str) for name in value),
                    "a list of two or more class names"),
    "mean": (numbers_or_number, "a number, or one for each colour channel"),
    "std": (lambda value: numbers_or_number(value, above=0), "numbers above 0"),
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


def shape_mismatch(own, weights, network_name):
    """The first layer whose saved shape differs from the network's (`own`, its state_dict), in
    words, or None."""
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
    """(model, checkpoint): a network_class(**arguments) with the saved weights, in evaluation
    mode on the device, and what was saved with them; or a CheckpointError that says why they do
    not load."""
    checkpoint = read_checkpoint(path, device)
    if isinstance(checkpoint, dict) and "optimizer" in checkpoint and "model" in checkpoint:
        raise CheckpointError(f"{readable(path)} is a training state, which --resume goes on "
                              f"from, not a saved network: name the NAME_cnn.pt file beside it.")
    if not isinstance(checkpoint, dict) or "weights" not in checkpoint:
        raise CheckpointError(f"{readable(path)} holds no network saved by this project (a "
                              f"plain state_dict, or another program's file). Name a "
                              f"NAME_cnn.pt file that a lesson saved, or run the lesson to save "
                              f"one.")
    if "arguments" not in checkpoint and "channels" in checkpoint:  # as lessons saved it in 2026
        checkpoint["arguments"] = {"channels": checkpoint["channels"]}
    problem = field_problem(checkpoint)
    if problem:
        raise CheckpointError(f"{readable(path)} cannot be used: {problem}. Run the lesson again "
                              f"to save a new one.")
    name = network_class.__name__
    try:
        with torch.device("meta"):  # built without memory first: the shapes alone are compared
            shapes = network_class(**checkpoint["arguments"]).state_dict()
    except Exception as error:
        raise CheckpointError(f"{readable(path)} was saved with arguments "
                              f"{checkpoint['arguments']} that {name} does not take ({error}). "
                              f"Run the lesson again to save a matching one.") from None
    mismatch = shape_mismatch(shapes, checkpoint["weights"], name)
    if mismatch:
        raise CheckpointError(f"{readable(path)} holds the weights of a different network, which "
                              f"do not fit {name}: {mismatch}. Run the lesson again to save a "
                              f"matching one.")
    model = network_class(**checkpoint["arguments"])
    model.load_state_dict(checkpoint["weights"])
    return model.to(device, memory_format=torch.channels_last).eval(), checkpoint


# Each field a training checkpoint holds, and the type it must have.
FIELDS = {"epoch": int, "settings": dict, "images": int, "history": dict, "model": dict,
          "optimizer": dict, "scheduler": dict, "cpu_random": torch.Tensor, "cuda_random": list}


def save_training_state(path, epoch, settings, images, history, model, optimizer, scheduler,
                        machine):
    """Everything a resumed run needs to end as if it had never been cut; False when it cannot be
    written (and has said so). machine: see machine_of."""
    state = {
        "epoch": epoch, "settings": settings, "images": images, "history": history,
        "machine": machine,
        "model": model.state_dict(), "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(), "cpu_random": torch.get_rng_state(),
        "cuda_random": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
    }
    return save_file(path, lambda partial: torch.save(state, partial))


def refuse(path, why):
    stop(f"--resume: the run in {readable(path)} {why}. Run without --resume to start afresh.")


def read_training_state(path, device):
    """The training checkpoint at `path`, each field of the type it must have."""
    try:
        with open_regular(path) as file:  # a pipe would block torch.load
            state = torch.load(file, map_location=device, weights_only=True)
    except NotARegularFile as error:
        refuse(path, f"is {error.strerror}, not a training checkpoint (remove it)")
    except Exception:  # damaged, cut short, unreadable, or not a checkpoint at all
        refuse(path, "cannot be read as a training checkpoint (delete it)")
    if not isinstance(state, dict):
        refuse(path, "is not a training checkpoint (delete it)")
    wrong = [name for name, kind in FIELDS.items() if not isinstance(state.get(name), kind)]
    if wrong:
        refuse(path, f"was saved without a proper {', '.join(wrong)}, so it cannot be resumed "
                     f"(delete it)")
    return state


def check_same_run(path, state, settings, images, model):
    """Stop, in one line, unless the saved run is this one: same settings, same training data,
    same layers, and a history as long as its epochs."""
    for name, now in settings.items():
        if state["settings"].get(name) != now:
            refuse(path, f"was trained with {name}={display(state['settings'].get(name))}, and "
                         f"this one has {name}={display(now)}; use the same settings to resume")
    if state["images"] != images:
        refuse(path, f"was trained on {state['images']:,} images, and this one has {images:,} "
                     f"(the data was not found where it was: check --data-dir)")
    saved = {name: tuple(tensor.shape) for name, tensor in state["model"].items()}
    if saved != {name: tuple(tensor.shape) for name, tensor in model.state_dict().items()}:
        refuse(path, f"was trained with other layers than {type(model).__name__} has now (was it "
                     f"edited?)")
    if not history_fits(state["history"], state["epoch"], settings["epochs"]):
        refuse(path, "has a damaged history of its epochs (delete it)")


def numbers(values):
    return isinstance(values, list) and all(isinstance(value, (int, float)) for value in values)


def history_fits(history, epoch, epochs):
    """Whether a saved history holds numbers, an accuracy for each of the epoch epochs done, and
    the probe's readings as pairs of numbers (a state saved before there were any has none)."""
    lists = numbers(history.get("accuracy")) and numbers(history.get("loss"))
    probes = history.get("probes", [])
    pairs = isinstance(probes, list) and all(numbers(pair) and len(pair) == 2 for pair in probes)
    return lists and pairs and 1 <= epoch <= epochs and len(history["accuracy"]) == epoch


def machine_note(saved, now):
    """A line that says why a resumed run will not end exactly as an uncut one, or None: another
    kind of device, another number of CPU threads, or another PyTorch, any of which adds up the
    same sums in another order. A state saved before these were recorded says nothing of them."""
    if not isinstance(saved, dict):
        return None
    keys = [key for key in now if key in saved and saved[key] != now[key]]
    if "device" in keys and "threads" in keys:  # a GPU's run has no count of CPU threads
        keys.remove("threads")
    if not keys:
        return None
    then = " and ".join(described(key, saved[key]) for key in keys)
    here = " and ".join(described(key, now[key]) for key in keys)
    return (f"Note: the cut run trained with {then}, and this one goes on with {here}, so it will "
            f"end close to an uncut run, but not exactly as one (the same sums, added in another "
            f"order).")


def described(key, value):
    return {"device": f"the {value} device", "threads": f"{value} CPU thread{'s' * (value != 1)}",
            "pytorch": f"PyTorch {value}"}[key]


def resume_from(path, settings, images, model, optimizer, scheduler, history, machine):
    """Load the cut run saved at `path` into the model, optimiser, scheduler, random generators
    and history; the first epoch still to train. Where there is none, 1, with a note. machine:
    see machine_of."""
    if what_is_at(path) == "nothing":
        print(f"Nothing to resume: there is no cut run in {readable(path)}. Training starts "
              f"afresh.")
        return 1
    state = read_training_state(path, next(model.parameters()).device)
    check_same_run(path, state, settings, images, model)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["cpu_random"].cpu())
    if state["cuda_random"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([random.cpu() for random in state["cuda_random"]])
    history.update(state["history"])
    note = machine_note(state.get("machine"), machine)
    if state["epoch"] == settings["epochs"]:
        print(f"The run in {readable(path)} had finished all its {state['epoch']} epochs: there is "
              f"nothing left to train, and the cells below use its network.")
    else:
        print(f"Resuming the run in {readable(path)} after epoch {state['epoch']} of "
              f"{settings['epochs']}.")
        if note:
            print(note)
    return state["epoch"] + 1


def machine_of(device):
    """What besides the settings decides the result: the kind of device, on the CPU the number
    of threads, and the PyTorch (machine_note)."""
    return {"device": device.type,
            "threads": torch.get_num_threads() if device.type == "cpu" else 0,
            "pytorch": str(torch.__version__)}


class TrainingState:
    """The training state of a run, saved at `path` after each finished epoch, and the start of a
    run: afresh, or with --resume from the state a cut run saved. settings: those that decide the
    result, by name; of the training images, their number and their device."""

    def __init__(self, path, settings, images, model, optimizer, scheduler, writes=True):
        self.path, self.settings = Path(path), dict(settings)
        self.images = len(images)
        self.device, self.model = images.device, model
        self.optimizer, self.scheduler, self.writes = optimizer, scheduler, writes
        # Where nothing can be written, the run has said so already; say nothing each epoch.
        # Of a run's several processes (lesson three's ranks), only the first writes it.
        self.can_save = writes and why_not_writable(self.path.parent) is None
        self.saved_epoch = None  # the last epoch saved by this run

    def first_epoch(self, resume, history):
        """The first epoch to train: with resume, after the cut run's last (its history loaded
        into `history`); else 1, and the state of an older run removed, never to be resumed."""
        if not resume:
            if self.writes:
                with contextlib.suppress(OSError):
                    self.path.unlink(missing_ok=True)
            return 1
        if self.writes and not self.can_save:
            stop(f"--resume: nothing can be saved in {readable(self.path.parent)} "
                 f"({why_not_writable(self.path.parent)}), so an epoch trained now could never "
                 f"be resumed, and the network would be lost. Choose a folder you can write with "
                 f"--out-dir or MNISTLAB_OUT_DIR.")
        return resume_from(self.path, self.settings, self.images, self.model, self.optimizer,
                           self.scheduler, history, machine_of(self.device))

    def save(self, epoch, history):
        if not self.writes:  # another rank: the first saves the state for all, in step with it
            self.saved_epoch = epoch
        elif self.can_save:
            self.can_save = save_training_state(
                self.path, epoch, self.settings, self.images, history, self.model,
                self.optimizer, self.scheduler, machine_of(self.device))
            if self.can_save:
                self.saved_epoch = epoch

    @property
    def saved(self):
        """Whether a state stands in `path` to resume from."""
        return what_is_at(self.path) == "file"
