"""The run: one training run of a lesson and the output folder it owns (Run). Around the
training loop it keeps one run in the folder at a time, goes on from a cut run with --resume,
shows progress and the probe's readings within each epoch, ends after the current batch on
Ctrl-C, SIGTERM or SIGUSR1, says plainly when the network is not learning or memory runs out,
logs to TensorBoard where asked, and saves the training state after each epoch (.saved). Nothing
here knows MNIST: any nn.Module, any number of classes, any image size."""

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

from .console import IN_NOTEBOOK, end_at_once, readable, stop
from .device import out_of_memory_stops
from .files import (lock_can_be_taken, made_folder, new_folder, training_alone,
                    why_not_writable)
from .saved import (
    CheckpointError,
    TrainingState,
    load_checkpoint,
    network_path,
    save_network,
    training_state_path,
)
from .settings import SETTINGS

# What asks a run in a terminal to stop after its current batch, in words. A batch system sends
# SIGTERM before it preempts, requeues or cancels a job, and slurm/train.sbatch asks Slurm for
# SIGUSR1 shortly before the job's time limit.
STOP_SIGNALS = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}
if hasattr(signal, "SIGUSR1"):  # not on Windows
    STOP_SIGNALS[signal.SIGUSR1] = "SIGUSR1 (the warning before the job's time limit)"
# The exit status of a run stopped by the time-limit warning with an epoch saved (EX_TEMPFAIL,
# "try again"): the batch script requeues the job on it, and the requeued job resumes.
GO_ON_LATER = 75
# The exit statuses of a run that stopped as asked, after its batch: Ctrl-C's and SIGTERM's, as a
# shell reports a program they ended, and the time-limit warning's.
INTERRUPTED, TERMINATED = 128 + signal.SIGINT, 128 + signal.SIGTERM
PLANNED_ENDS = {INTERRUPTED, TERMINATED, GO_ON_LATER}


class StopRequest:
    """While active, a first Ctrl-C sets `signal` and a second one interrupts at once. In a
    terminal SIGTERM and SIGUSR1 set it too: in a kernel they are left to Jupyter."""

    def __enter__(self):
        self.signal, self.previous = None, {}
        for number in [signal.SIGINT] if IN_NOTEBOOK else STOP_SIGNALS:
            try:
                self.previous[number] = signal.signal(number, self.request)
            except ValueError:  # not the main thread, as under some debuggers: as usual, then
                break
        return self

    @property
    def requested(self):
        return self.signal is not None

    def request(self, number, _frame):
        if self.requested and number == signal.SIGINT:
            if not IN_NOTEBOOK:
                end_at_once()
            raise KeyboardInterrupt
        self.signal = self.signal or number  # the first says why: a repeat changes nothing

    def __exit__(self, *_):
        for number, previous in self.previous.items():
            signal.signal(number, previous)


def stopped_line(number, when, saved, folder, batch_script):
    """What a run stopped by signal `number` says: when, whether the network keeps what it has
    learned, and how --resume goes on, where a training state was `saved` in `folder`, and, in a
    Slurm job, the lesson's batch_script."""
    after = ("--resume goes on after the last finished epoch" if saved else
             "--resume will find nothing to go on from, since no epoch finished")
    if os.environ.get("SLURM_JOB_ID") and saved:
        # A new job has a folder of its own (as the batch scripts make it): name this one to it.
        after += (f": a requeued job does so by itself, and a new one when given this folder, "
                  f"sbatch --export=ALL,MNISTLAB_OUT_DIR={shlex.quote(readable(folder))} "
                  f"{batch_script}")
    # After Ctrl-C the lesson goes on with the network; after a batch system's signal it ends.
    keeps = " The network keeps what it has learned so far;" if number == signal.SIGINT else ""
    return f"Stopped by {STOP_SIGNALS[number]} {when}.{keeps} {after}."


def end_rank(status):
    """End this rank at once with exit status `status`, what it printed flushed first: the
    normal end of a program tears down its process group, which may abort (SIGABRT) where a
    peer is gone or is tearing down its own at the same moment. All it keeps is saved by then."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def end_for_the_batch_system(number, saved_epoch, first_epoch, leave=sys.exit):
    """After SIGTERM or SIGUSR1 the program ends here, without the figures: the job's time is
    up, and a requeued job resumes from the epoch saved last. After the time-limit warning,
    the exit status asks the batch script to requeue the job, unless this job finished no
    epoch (saved_epoch None): then the next would only start the same one again. leave: how
    the program ends with an exit status (a rank of several: at once, end_rank)."""
    if number == signal.SIGTERM:
        leave(TERMINATED)
    if saved_epoch is None:
        stop(f"the job's time ran out before epoch {first_epoch} finished, so a requeued job "
             f"would only start it again. Ask for more time (sbatch --time), or for a shorter "
             f"epoch (a GPU, or more CPUs: --cpus-per-task).")
    leave(GO_ON_LATER)


class TensorBoardLog:
    """A log in a new folder in `runs`, named after the network and the time it starts, used as
    `with TensorBoardLog(…) as log:`; the folder is named on exit."""

    def __init__(self, runs, network_name, model, images):
        from torch.utils.tensorboard import SummaryWriter  # it needs the tensorboard package

        made_folder(runs, "--out-dir")
        self.log_dir = new_folder(runs, f"{network_name}-{time.strftime('%Y%m%d-%H%M%S')}")
        self.writer = SummaryWriter(self.log_dir)
        pictures = images[:32]
        self.writer.add_images("training images",
                               (pictures - pictures.min()) / (pictures.max() - pictures.min()))
        with warnings.catch_warnings():  # add_graph traces with torch.jit, deprecated
            warnings.simplefilter("ignore", FutureWarning)
            self.writer.add_graph(model.eval(), images[:8])

    def __enter__(self):
        return self

    def probe(self, step, accuracy):
        """The probe's test accuracy after `step` batches of the run."""
        self.writer.add_scalar("accuracy/test-slice", accuracy, step)

    def epoch(self, epoch, losses, mean_loss, accuracy, steps_before):
        """An epoch's batch losses, the first after steps_before batches, its mean loss and its
        test accuracy."""
        for step, loss in enumerate(losses, steps_before + 1):
            self.writer.add_scalar("loss/batch", loss, step)
        self.writer.add_scalar("loss/epoch", mean_loss, epoch)
        self.writer.add_scalar("accuracy/test", accuracy, epoch)

    def __exit__(self, *_):
        self.writer.close()
        print(f"TensorBoard log: {readable(self.log_dir)}")


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


class Run:
    """One run of a lesson and the output folder it owns. Made once, at the top of the lesson,
    from the settings, it says at once (and once) when the folder cannot be written, saves each
    figure there (show), trains (training), saves the network it trained with the better-network
    rule (save_network) and loads it back (load_network). Every file in the folder is named here
    and in .saved, by the name of the network: the dataset's, or the lesson's. Of a run in
    several processes (lesson three's ranks), rank 0 alone writes the folder.

    `history` holds each batch's loss, each epoch's test accuracy, and the probe's readings
    within the epochs, as [batches trained, accuracy]."""

    def __init__(self, settings, name=None, rank=0):
        self.settings, self.name = settings, name or settings.network_name
        self.folder, self.writes = Path(settings.out_dir), rank == 0
        # Of a run's several processes (lesson three's ranks), the first alone writes the folder.
        self.why_not_writable = why_not_writable(self.folder) if self.writes else None
        self.can_write = self.writes and not self.why_not_writable
        if self.writes and self.why_not_writable:
            print(f"Warning: cannot write to {readable(self.folder)} ({self.why_not_writable}). "
                  f"The lesson goes on, but its figures and the trained network will not be "
                  f"saved. Choose another folder with --out-dir or MNISTLAB_OUT_DIR.")
        elif self.writes:
            lock_can_be_taken(self.folder)
        self.model, self.saved_path, self.measured = None, None, None
        self.history = {"loss": [], "accuracy": [], "probes": []}
        self.learned, self.seconds, self.cut_short, self.stop_request = True, 0.0, False, None

    def network_path(self, name=None):
        """Where the network `name` (this run's own, if none) is saved in the folder."""
        return network_path(self.folder, name or self.name)

    def show(self, figure, name):
        """Save the figure as NAME.png in the folder, where it can be written, and show it; of a
        run's several processes, the first alone does: the others would draw the same."""
        if self.writes:
            from .figures import show  # here: a rank that draws nothing never loads matplotlib

            show(figure, self.folder / f"{name}.png" if self.can_write else None)

    @contextlib.contextmanager
    def training(self, model, optimizer, scheduler, images, steps_per_epoch, agree=None):
        """Around the training loop over epochs(): one run in the folder at a time; resume, or
        an older run's state removed; Ctrl-C and a batch system's signals end it after a batch;
        running out of memory is said in a line; TensorBoard where asked. agree: for a run of
        several processes, the one stop signal all of them take from those each has had (its
        number, 0 for none; any had one: all stop), asked of every process before each batch
        and after each epoch, so that they stop together, and alike."""
        settings = self.settings
        self.agree, self.agreed_signal, self.stopping = agree, None, False
        self.model, self.saved_path = None, None  # until this training starts
        self.measured = None  # the versions of the weights the last test accuracy was read on
        self.images, self.steps_per_epoch = images, steps_per_epoch
        self.classes = classes_of(model, images)
        self.history = {"loss": [], "accuracy": [], "probes": []}
        self.learned, self.cut_short, self.log = True, False, None
        self.state = TrainingState(training_state_path(self.folder, self.name),
                                   deciding_values(settings), images, model, optimizer, scheduler,
                                   writes=self.writes)
        with contextlib.ExitStack() as guards:
            # First: another run training in this folder keeps its state, and this one stops.
            if self.writes:
                guards.enter_context(training_alone(self.folder))
            self.first_epoch = self.state.first_epoch(settings.resume, self.history)
            if self.history["accuracy"]:  # a finished run resumed: its score is of these weights
                self.measured = versions(model)
            if settings.tensorboard and self.can_write:
                self.log = guards.enter_context(TensorBoardLog(self.folder / "runs", self.name,
                                                               model, images))
            self.stop_request = guards.enter_context(StopRequest())
            guards.enter_context(out_of_memory_stops(images.device, settings.batch_size))
            self.model, started = model, time.perf_counter()  # the network this run trains
            self.bar = None
            try:
                yield self
            finally:
                self.seconds = time.perf_counter() - started
                if self.bar is not None:  # an error's line starts on a line of its own
                    self.bar.close()
        if self.stop_signal not in (None, signal.SIGINT):
            end_for_the_batch_system(self.stop_signal, self.state.saved_epoch, self.first_epoch,
                                     leave=sys.exit if self.agree is None else end_rank)

    def epochs(self):
        """The epochs still to train, until one ends in Ctrl-C or in trouble."""
        for epoch in range(self.first_epoch, self.settings.epochs + 1):
            yield epoch
            if self.stop_asked(agreeing=True) and not self.cut_short:  # as the epoch ended
                self.say_stopped(f"as epoch {epoch} of {self.settings.epochs} ended")
            if self.stopping or not self.learned:
                return

    @property
    def stop_signal(self):
        """The signal the run stops by, if any: this process's, or, in a run of several
        processes, the one they agreed on last, the same in all."""
        if self.stop_request is None:
            return None
        return self.stop_request.signal if self.agree is None else self.agreed_signal

    def stop_asked(self, agreeing=False):
        """Whether to stop after this batch: this process's wish, or, where the run has several
        processes, what they agree when asked to (agreeing), every one the same."""
        if self.agree is None:
            self.stopping = self.stop_request.requested
        elif agreeing:
            # Not this process's signal: one may reach it a batch before the others, or it alone.
            self.agreed_signal = self.agree(self.stop_request.signal or 0) or None
            self.stopping = self.agreed_signal is not None
        return self.stopping

    def say_stopped(self, when):
        print(stopped_line(self.stop_signal, when, self.state.saved, self.folder,
                           self.settings.lesson.batch_script))

    def watched(self, batches, epoch, probe=None):
        """The batches, under a progress bar, ending after the current one on Ctrl-C; before
        some of them, probe() is read (ProbeReadings)."""
        readings = ProbeReadings(probe, self.model, self.steps_per_epoch, self.history["probes"],
                                 self.log)
        description = f"epoch {epoch}" if self.writes else ""  # rank 0's bar speaks for all
        self.bar = progress(batches, description, self.steps_per_epoch)
        for number, batch in enumerate(self.bar):
            if self.stop_asked(agreeing=True):
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
        self.history["accuracy"].append(float(accuracy))
        self.measured = versions(self.model)
        if self.stop_asked() and len(losses) < self.steps_per_epoch:  # cut in the epoch
            self.cut_short = True
            self.say_stopped(f"in epoch {epoch} of {self.settings.epochs}, after {len(losses)} "
                             f"of {self.steps_per_epoch} batches")
            return
        trouble = training_trouble(epoch, loss, accuracy, self.classes, self.settings.lr,
                                   self.steps_per_epoch)
        self.learned = trouble is None
        if trouble:
            print(trouble)
        else:
            self.state.save(epoch, self.history)

    @property
    def complete(self):
        """Every epoch trained, none cut short."""
        return not self.cut_short and len(self.history["accuracy"]) == self.settings.epochs

    def outcome(self):
        """How the network was trained and how well it did, for its file to record: the test
        accuracy measured on this network after its last epoch."""
        return {"accuracy": self.history["accuracy"][-1], "complete": self.complete,
                "training_images": len(self.images), "trained_with": purposes(self.settings)}

    def save_network(self, class_names, mean, std, **arguments):
        """Save the network this run trained, with what it takes to use it again (the class
        names, the pixels' mean and std, and the arguments of its class), as NAME_cnn.pt, unless
        a better one is there: then beside it. The path written, or None, with a line that says
        why."""
        path = self.network_path()
        if not self.writes:
            return None  # the first rank saves the network all of them trained
        if self.model is None or self.measured is None:
            print(f"Not saved: this run trained no network (its training cell stopped, or was "
                  f"not run), and {readable(path)} keeps what it had.")
        elif versions(self.model) != self.measured:
            print(f"Not saved: the network changed after its test accuracy was last read (a "
                  f"second Ctrl-C or Interrupt stopped it in the middle of a batch, or it was "
                  f"trained outside the run), so its score is unknown, and {readable(path)} "
                  f"keeps what it had. Run the training cell again to train and measure it.")
        elif not self.learned:
            print(f"Not saved: the network did not learn, and {readable(path)} keeps what it "
                  f"had.")
        elif self.can_write:
            self.saved_path = save_network(path, self.model, arguments, class_names, mean, std,
                                           self.outcome())
            if self.saved_path:
                print(f"Saved the network to {readable(self.saved_path)}")
        return self.saved_path

    def load_network(self, network_class, device):
        """The network this run saved, loaded into a fresh network_class on the device; a stop,
        in one line, where it cannot be (the class was edited since, say)."""
        try:
            return load_checkpoint(self.saved_path, network_class, device)[0]
        except CheckpointError as error:
            stop(str(error))

    def exit_if_interrupted(self):
        """In a terminal, an exit status that says the run was cut short by Ctrl-C."""
        if self.stop_signal and not IN_NOTEBOOK:
            sys.exit(INTERRUPTED)


def classes_of(model, images):
    """How many classes the network tells apart: the length of its answer for one image, read in
    evaluation mode, which changes nothing in it."""
    was_training = model.training
    with torch.no_grad():
        classes = model.eval()(images[:1]).shape[-1]
    model.train(was_training)
    return classes


def purposes(settings):
    """What the run's switches train the network for (Setting.purpose), those switched on."""
    return sorted(setting.purpose for setting in SETTINGS
                  if setting.purpose and getattr(settings, setting.name, False))


def versions(model):
    """How many times each of the network's tensors has been changed in place: an optimiser's
    step, batch normalisation's statistics and load_state_dict all count. Equal versions, the
    same weights."""
    return [tensor._version for tensor in model.state_dict(keep_vars=True).values()]


def deciding_values(settings):
    """The values of the settings that decide a run's result: a cut run resumes only with them."""
    return {setting.name: getattr(settings, setting.name) for setting in SETTINGS
            if setting.decides_result and hasattr(settings, setting.name)}
