"""Everything around the training loop that is not machine learning, put together in one object,
TrainingRun, from parts that each do one job: a progress bar with the probe's readings within
each epoch, a check that the network learns, and, from their own modules, Ctrl-C and a batch
system's signals (stopping), out of memory (memory), TensorBoard (tensorboard_log), one run in a
folder at a time (files), and the training state saved after each epoch, from which --resume goes
on (resume)."""

import contextlib
import math
import signal
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

from .console import IN_NOTEBOOK
from .files import training_alone
from .memory import out_of_memory_stops
from .resume import EpochCheckpointer
from .stopping import StopRequest, end_for_the_batch_system, stopped_line
from .tensorboard_log import TensorBoardLog


def progress(batches, description, total=None):
    """A progress bar over the batches, or none without a description. In a notebook it goes to
    stdout: Jupyter colours whatever comes on stderr as an error."""
    return tqdm(batches, desc=description, total=total, unit="batch", mininterval=1,
                disable=not description, file=sys.stdout if IN_NOTEBOOK else sys.stderr)


def mean_loss(losses):
    """An epoch's training loss: the mean of its batches' (0 for an epoch cut before any)."""
    return sum(losses) / max(len(losses), 1)


def training_trouble(epoch, loss, accuracy, classes, lr, steps_per_epoch):
    """A plain explanation if the network is not learning after this epoch (its training
    diverged, or has barely started), or None if it is."""
    if not torch.isfinite(torch.tensor(loss)):
        return (f"Training diverged in epoch {epoch}: the loss became {loss}, so the weights are "
                f"no longer numbers. The learning rate {lr:g} is far too high for this network: "
                f"try the default, 0.02, or lower.")
    chance, guessing_loss = 100 / classes, math.log(classes)  # the scores of equal odds
    # A loss far above guessing's means the steps overshoot, whatever the accuracy happens to be.
    if accuracy < 1.5 * chance or loss > 2 * guessing_loss:
        advice = (f"a learning rate of {lr:g} makes each step overshoot: try 0.02 or lower"
                  if lr > 0.1 else
                  f"a learning rate of {lr:g} makes each step too small to change the weights "
                  f"much: try 0.02" if lr < 1e-4 else
                  f"with only {steps_per_epoch} step{'s' * (steps_per_epoch > 1)} an epoch it "
                  f"has barely started: try a smaller batch size, or more epochs")
        return (f"After epoch {epoch} the network does no better than guessing ({accuracy:.1f} % "
                f"right and a loss of {loss:.4g}, where guessing gets {chance:.0f} % and "
                f"{guessing_loss:.2f}): {advice}.")
    return None


# Where in an epoch the probe reads the test accuracy, as shares of its batches: ten readings,
# the first before any training, and most at the start, where the network learns fastest.
PROBES = (0, 0.01, 0.02, 0.04, 0.07, 0.1, 0.2, 0.4, 0.6, 0.8)


def probe_batches(steps_per_epoch):
    """The batches of an epoch before which the probe reads the test accuracy (fewer than ten
    where an epoch has few batches)."""
    return {int(share * steps_per_epoch) for share in PROBES}


class ProbeReadings:
    """probe(), the test accuracy on a fixed slice of the test set, read before some batches of
    each epoch (probe_batches) into `readings`, as [batches trained, accuracy], and the log, so
    that the learning curve shows learning within an epoch too. With no probe, nothing."""

    def __init__(self, probe, model, steps_per_epoch, readings, log=None):
        self.probe, self.model, self.readings, self.log = probe, model, readings, log
        self.steps_per_epoch = steps_per_epoch
        self.batches = probe_batches(steps_per_epoch) if probe else set()

    def before(self, epoch, number):
        """Read the probe if it is due before batch `number` of this epoch."""
        if number in self.batches:
            step = (epoch - 1) * self.steps_per_epoch + number
            self.readings.append([step, self.probe()])
            self.model.train()  # the probe's prediction left evaluation mode on
            if self.log:
                self.log.probe(step, self.readings[-1][1])


class TrainingRun:
    """A training run, used as `with TrainingRun(…) as run:` around the loop over run.epochs(),
    made of the parts in this module's docstring. `history` holds each batch's loss, each epoch's
    test accuracy, and the probe's readings within the epochs, as [batches trained, accuracy]."""

    def __init__(self, settings, model, optimizer, scheduler, images, steps_per_epoch, classes=10):
        self.epochs_asked, self.lr, self.classes = settings.epochs, settings.lr, classes
        self.model, self.images, self.steps_per_epoch = model, images, steps_per_epoch
        self.folder, self.resume_asked = Path(settings.out_dir), settings.resume
        self.checkpoint = EpochCheckpointer(settings, images, model, optimizer, scheduler)
        self.tensorboard = settings.tensorboard and self.checkpoint.can_save
        self.network_name = settings.network_name
        self.history = {"loss": [], "accuracy": [], "probes": []}
        self.learned, self.log, self.seconds, self.cut_short = True, None, 0.0, False

    def __enter__(self):
        self.guards = contextlib.ExitStack()
        try:
            # First: another run training in this folder keeps its state, and this one stops.
            self.guards.enter_context(training_alone(self.folder))
            self.first_epoch = self.checkpoint.first_epoch(self.resume_asked, self.history)
            if self.tensorboard:
                self.log = self.guards.enter_context(TensorBoardLog(
                    self.folder / "runs", self.network_name, self.model, self.images))
            self.stop_request = self.guards.enter_context(StopRequest())
            self.guards.enter_context(out_of_memory_stops(self.images.device,
                                                          self.checkpoint.settings["batch_size"]))
        except BaseException:  # a stop, in a kernel, must not keep the folder locked
            self.guards.close()
            raise
        self.started = time.perf_counter()
        return self

    def __exit__(self, *error):
        self.seconds = time.perf_counter() - self.started
        handled = self.guards.__exit__(*error)
        if error[0] is None and self.stop_request.signal not in (None, signal.SIGINT):
            end_for_the_batch_system(self.stop_request.signal, self.checkpoint.saved_epoch,
                                     self.first_epoch)
        return handled

    def epochs(self):
        """The epochs still to train, until one ends in Ctrl-C or in trouble."""
        for epoch in range(self.first_epoch, self.epochs_asked + 1):
            yield epoch
            if self.stop_request.requested and not self.cut_short:  # as the epoch ended
                self.say_stopped(f"as epoch {epoch} of {self.epochs_asked} ended")
            if self.stop_request.requested or not self.learned:
                return

    def say_stopped(self, when):
        print(stopped_line(self.stop_request.signal, when, self.checkpoint.saved, self.folder))

    def watched(self, batches, epoch, probe=None):
        """The batches, under a progress bar, ending after the current one on Ctrl-C; before
        some of them, probe() is read (ProbeReadings)."""
        readings = ProbeReadings(probe, self.model, self.steps_per_epoch, self.history["probes"],
                                 self.log)
        for number, batch in enumerate(progress(batches, f"epoch {epoch}",
                                                self.steps_per_epoch)):
            if self.stop_request.requested:
                return
            readings.before(epoch, number)
            yield batch

    def end_epoch(self, epoch, losses, accuracy):
        """Say and note the epoch's loss and accuracy; say why training stops, or save it."""
        loss = mean_loss(losses)
        print(f"epoch {epoch}: training loss {loss:.4f}, test accuracy {accuracy:.2f} %")
        if self.log:
            self.log.epoch(epoch, losses, loss, accuracy, len(self.history["loss"]))
        self.history["loss"] += losses
        self.history["accuracy"].append(accuracy)
        if self.stop_request.requested and len(losses) < self.steps_per_epoch:  # cut in the epoch
            self.cut_short = True
            self.say_stopped(f"in epoch {epoch} of {self.epochs_asked}, after {len(losses)} of "
                             f"{self.steps_per_epoch} batches")
            return
        trouble = training_trouble(epoch, loss, accuracy, self.classes, self.lr,
                                   self.steps_per_epoch)
        self.learned = trouble is None
        if trouble:
            print(trouble)
        else:
            self.checkpoint.save(epoch, self.history)

    @property
    def complete(self):
        """Every epoch trained, none cut short."""
        return not self.cut_short and len(self.history["accuracy"]) == self.epochs_asked

    def outcome(self, accuracy, on_sample):
        """How the network was trained and how well it did, for its checkpoint to record."""
        return {"accuracy": float(accuracy), "data": "sample" if on_sample else "full",
                "complete": self.complete}

    def exit_if_interrupted(self):
        """In a terminal, an exit status that says the run was cut short by Ctrl-C."""
        if self.stop_request.requested and not IN_NOTEBOOK:
            sys.exit(130)
