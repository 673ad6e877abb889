"""The training checkpoint, saved whole after every finished epoch, and --resume, which goes on
from it only after checking everything that decides the result: the settings, the training data
actually used, the network's layers, and each field it loads."""

import contextlib
from pathlib import Path

import torch

from .console import display, readable, stop
from .files import NotARegularFile, open_regular, save_file, what_is_at, why_not_writable

# The settings a run's result depends on: a cut run resumes only with the same ones.
RUN_SETTINGS = ("epochs", "batch_size", "lr", "seed", "channels", "augment", "dataset", "sample")
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
        refuse(path, "was trained with other layers than DigitNet has now (was it edited?)")
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


class EpochCheckpointer:
    """The training state of a run, saved in the output folder after each finished epoch, and the
    start of a run: afresh, or with --resume from the state a cut run saved. Of the settings it
    keeps RUN_SETTINGS; of the training images, their number and their device."""

    def __init__(self, settings, images, model, optimizer, scheduler):
        self.path = Path(settings.out_dir) / f"{settings.network_name}_training.pt"
        self.settings = {name: getattr(settings, name) for name in RUN_SETTINGS}
        self.images = len(images)
        self.device, self.model = images.device, model
        self.optimizer, self.scheduler = optimizer, scheduler
        # Where nothing can be written, the lesson has said so already; say nothing each epoch.
        self.can_save = why_not_writable(self.path.parent) is None
        self.saved_epoch = None  # the last epoch saved by this run

    def first_epoch(self, resume, history):
        """The first epoch to train: with resume, after the cut run's last (its history loaded
        into `history`); else 1, and the state of an older run removed, never to be resumed."""
        if not resume:
            with contextlib.suppress(OSError):
                self.path.unlink(missing_ok=True)
            return 1
        if not self.can_save:
            stop(f"--resume: nothing can be saved in {readable(self.path.parent)} "
                 f"({why_not_writable(self.path.parent)}), so an epoch trained now could never "
                 f"be resumed, and the network would be lost. Choose a folder you can write with "
                 f"--out-dir or MNISTLAB_OUT_DIR.")
        return resume_from(self.path, self.settings, self.images, self.model, self.optimizer,
                           self.scheduler, history, machine_of(self.device))

    def save(self, epoch, history):
        if self.can_save:
            self.can_save = save_training_state(
                self.path, epoch, self.settings, self.images, history, self.model,
                self.optimizer, self.scheduler, machine_of(self.device))
            if self.can_save:
                self.saved_epoch = epoch

    @property
    def saved(self):
        """Whether a state stands in `path` to resume from."""
        return what_is_at(self.path) == "file"
