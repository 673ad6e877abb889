"""Everything around the training loop that is not machine learning, in one object, TrainingRun:
a progress bar, Ctrl-C and a batch system's signals (stopping.py), out of memory (device.py),
the test accuracy read within each epoch, a network that does not learn, TensorBoard, one run
in a folder at a time, and the training checkpoint saved after each epoch, from which --resume
goes on."""

import contextlib
import math
import os
import shlex
import signal
import sys
import time
import warnings
from pathlib import Path

import torch
from tqdm import tqdm

from .console import IN_NOTEBOOK, readable, stop
from .device import out_of_memory_stops
from .files import new_folder, training_alone, what_is_at, why_not_writable
from .resume import RUN_SETTINGS, resume_from, save_training_state
from .settings import edited_since
from .stopping import GO_ON_LATER, STOP_SIGNALS, StopRequest


def progress(batches, description, total=None):
    """A progress bar over the batches, or none without a description. In a notebook it goes to
    stdout: Jupyter colours whatever comes on stderr as an error."""
    return tqdm(batches, desc=description, total=total, unit="batch", mininterval=1,
                disable=not description, file=sys.stdout if IN_NOTEBOOK else sys.stderr)


def tensorboard_writer(log_dir, model, images):
    """A TensorBoard SummaryWriter in log_dir, with some training images and the network's graph."""
    from torch.utils.tensorboard import SummaryWriter  # only here: it needs the tensorboard package

    writer = SummaryWriter(log_dir)
    pictures = images[:32]
    writer.add_images("training images",
                      (pictures - pictures.min()) / (pictures.max() - pictures.min()))
    with warnings.catch_warnings():  # add_graph traces with torch.jit, which warns it is deprecated
        warnings.simplefilter("ignore", FutureWarning)
        writer.add_graph(model.eval(), images[:8])
    return writer


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


class TrainingRun:
    """A training run, used as `with TrainingRun(…) as run:` around the loop over run.epochs().
    It shows a progress bar, ends an epoch after the current batch on Ctrl-C (or, in a terminal, a
    batch system's SIGTERM or SIGUSR1, which then end the program), turns out of memory
    into one line, stops a network that does not learn with an explanation, logs to TensorBoard,
    and saves the whole training state after every epoch, so that --resume goes on exactly where
    a cut run stopped. `history` holds each batch's loss, each epoch's test accuracy, and the
    probe's readings within the epochs, as [batches trained, accuracy]."""

    def __init__(self, settings, model, optimizer, scheduler, images, probe=None, classes=10):
        self.path = Path(settings.out_dir) / f"{settings.network_name}_training.pt"
        self.settings = {name: getattr(settings, name) for name in RUN_SETTINGS}
        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        self.images, self.classes = images, classes
        self.steps_per_epoch = -(-len(images) // settings.batch_size)
        # probe(): the test accuracy on a fixed slice of the test set, read ten times an epoch
        # (PROBES), so that the learning curve shows learning within an epoch too.
        self.probe, self.probe_before = probe, probe_batches(self.steps_per_epoch)
        self.history = {"loss": [], "accuracy": [], "probes": []}
        self.resume_asked, self.trouble, self.seconds = settings.resume, None, 0.0
        self.said_stopped, self.saved_epoch, self.cut_short = False, None, False
        # Where nothing can be written, the lesson has said so already; say nothing each epoch.
        self.can_save = why_not_writable(settings.out_dir) is None
        self.log_dir = None  # made when training starts (new_folder)
        self.log_name = f"{settings.network_name}-{time.strftime('%Y%m%d-%H%M%S')}"
        self.writer = None
        self.tensorboard = settings.tensorboard and self.can_save
        edited = edited_since(settings)
        if edited:
            print(f"Note: the parameters cell was changed after the settings were read "
                  f"({', '.join(edited)}), so this run uses the old values. To use the new ones, "
                  f"run the cell after the parameters cell, then the ones below it, again.")

    def __enter__(self):
        self.guards = contextlib.ExitStack()
        try:
            # First: another run training in this folder keeps its state, and this one stops.
            self.guards.enter_context(training_alone(self.path.parent))
            self.first_epoch = self.start()
            if self.tensorboard:
                self.log_dir = new_folder(self.path.parent / "runs", self.log_name)
                self.writer = tensorboard_writer(self.log_dir, self.model, self.images)
            self.stop_request = self.guards.enter_context(StopRequest())
            self.guards.enter_context(out_of_memory_stops(self.images.device,
                                                          self.settings["batch_size"]))
        except BaseException:  # a stop, in a kernel, must not keep the folder locked
            self.guards.close()
            raise
        self.started = time.perf_counter()
        return self

    def start(self):
        """The first epoch to train: after the cut run's last with --resume, else 1."""
        if not self.resume_asked:  # a fresh run: the state of an older one must not be resumed
            with contextlib.suppress(OSError):
                self.path.unlink(missing_ok=True)
            return 1
        if not self.can_save:
            stop(f"--resume: nothing can be saved in {readable(self.path.parent)} "
                 f"({why_not_writable(self.path.parent)}), so an epoch trained now could never "
                 f"be resumed, and the network would be lost. Choose a folder you can write with "
                 f"--out-dir or MNISTLAB_OUT_DIR.")
        return self.resume()

    def __exit__(self, *error):
        self.seconds = time.perf_counter() - self.started
        if self.writer:
            self.writer.close()
            print(f"TensorBoard log: {readable(self.log_dir)}")
        handled = self.guards.__exit__(*error)
        if error[0] is None and self.stop_signal not in (None, signal.SIGINT):
            self.end_for_the_batch_system()
        return handled

    def end_for_the_batch_system(self):
        """After SIGTERM or SIGUSR1 the program ends here, without the figures: the job's time is
        up, and a requeued job resumes from the epoch saved last. After the time-limit warning,
        the exit status asks the batch script to requeue the job, unless this job finished no
        epoch: then the next would only start the same one again."""
        if self.stop_signal == signal.SIGTERM:
            sys.exit(128 + signal.SIGTERM)  # as a shell reports a program ended by SIGTERM
        if self.saved_epoch is None:
            stop(f"the job's time ran out before epoch {self.first_epoch} finished, so a "
                 f"requeued job would only start it again. Ask for more time (sbatch --time), or "
                 f"for a shorter epoch (a GPU, or more CPUs: --cpus-per-task).")
        sys.exit(GO_ON_LATER)

    @property
    def interrupted(self):
        return self.stop_request.requested

    @property
    def stop_signal(self):
        return self.stop_request.signal

    @property
    def learned(self):
        return self.trouble is None

    def epochs(self):
        """The epochs still to train, until one ends in Ctrl-C or in trouble."""
        for epoch in range(self.first_epoch, self.settings["epochs"] + 1):
            yield epoch
            if self.interrupted and not self.said_stopped:  # Ctrl-C as the epoch ended
                self.say_stopped(f"as epoch {epoch} of {self.settings['epochs']} ended")
            if self.interrupted or self.trouble:
                return

    def say_stopped(self, when):
        saved = what_is_at(self.path) == "file"
        after = ("--resume goes on after the last finished epoch" if saved else
                 "--resume will find nothing to go on from, since no epoch finished")
        if os.environ.get("SLURM_JOB_ID") and saved:
            # A new job has a folder of its own (slurm/train.sbatch): name this one to it.
            after += (f": a requeued job does so by itself, and a new one when given this "
                      f"folder, sbatch --export=ALL,MNISTLAB_OUT_DIR="
                      f"{shlex.quote(readable(self.path.parent))} slurm/train.sbatch")
        ctrl_c = self.stop_signal == signal.SIGINT  # the lesson goes on with the network
        keeps = " The network keeps what it has learned so far;" if ctrl_c else ""
        print(f"Stopped by {STOP_SIGNALS[self.stop_signal]} {when}.{keeps} {after}.")
        self.said_stopped = True

    def watched(self, batches, epoch):
        """The batches, under a progress bar, ending after the current one on Ctrl-C; before
        some of them, the probe reads the test accuracy."""
        for number, batch in enumerate(progress(batches, f"epoch {epoch}",
                                                self.steps_per_epoch)):
            if self.interrupted:
                return
            if self.probe and number in self.probe_before:
                self.read_probe((epoch - 1) * self.steps_per_epoch + number)
            yield batch

    def read_probe(self, step):
        """The probe's accuracy after `step` batches of the run, noted; the network goes back to
        training mode, which the probe's prediction left."""
        accuracy = self.probe()
        self.model.train()
        self.history["probes"].append([step, accuracy])
        if self.writer:
            self.writer.add_scalar("accuracy/test-slice", accuracy, step)

    def end_epoch(self, epoch, losses, accuracy):
        """Note the epoch's losses and test accuracy; say why training stops, if it must;
        otherwise save the training state."""
        if self.writer:
            for step, loss in enumerate(losses, len(self.history["loss"]) + 1):
                self.writer.add_scalar("loss/batch", loss, step)
            self.writer.add_scalar("loss/epoch", sum(losses) / max(len(losses), 1), epoch)
            self.writer.add_scalar("accuracy/test", accuracy, epoch)
        self.history["loss"] += losses
        self.history["accuracy"].append(accuracy)
        if self.interrupted and len(losses) < self.steps_per_epoch:  # a whole epoch is finished
            self.cut_short = True
            self.say_stopped(f"in epoch {epoch} of {self.settings['epochs']}, after {len(losses)} "
                             f"of {self.steps_per_epoch} batches")
            return
        self.trouble = training_trouble(epoch, sum(losses) / max(len(losses), 1), accuracy,
                                        self.classes, self.settings["lr"], self.steps_per_epoch)
        if self.trouble:
            print(self.trouble)
        else:
            self.save(epoch)

    @property
    def complete(self):
        """Every epoch trained, none cut short."""
        return not self.cut_short and len(self.history["accuracy"]) == self.settings["epochs"]

    def outcome(self, accuracy, on_sample):
        """How the network was trained and how well it did, for its checkpoint to record."""
        return {"accuracy": float(accuracy), "data": "sample" if on_sample else "full",
                "complete": self.complete}

    def exit_if_interrupted(self):
        """In a terminal, an exit status that says the run was cut short by Ctrl-C."""
        if self.interrupted and not IN_NOTEBOOK:
            sys.exit(130)

    def save(self, epoch):
        if self.can_save:
            self.can_save = save_training_state(
                self.path, epoch, self.settings, len(self.images), self.history, self.model,
                self.optimizer, self.scheduler, self.machine)
            if self.can_save:
                self.saved_epoch = epoch

    def resume(self):
        return resume_from(self.path, self.settings, len(self.images), self.model,
                           self.optimizer, self.scheduler, self.history, self.machine)

    @property
    def machine(self):
        """What besides the settings decides the result: the kind of device, on the CPU the
        number of threads, and the PyTorch (resume.machine_note)."""
        kind = self.images.device.type
        return {"device": kind, "threads": torch.get_num_threads() if kind == "cpu" else 0,
                "pytorch": str(torch.__version__)}
