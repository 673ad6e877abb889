"""What asks a training run to stop after its current batch: Ctrl-C, and in a terminal a batch
system's SIGTERM and SIGUSR1; what the run says then, and how it ends for the batch system.
Standard library only."""

import os
import shlex
import signal
import sys

from .console import IN_NOTEBOOK, end_at_once, readable, stop

# What asks a run in a terminal to stop after its current batch, in words. A batch system sends
# SIGTERM before it preempts, requeues or cancels a job, and slurm/train.sbatch asks Slurm for
# SIGUSR1 shortly before the job's time limit.
STOP_SIGNALS = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}
if hasattr(signal, "SIGUSR1"):  # not on Windows
    STOP_SIGNALS[signal.SIGUSR1] = "SIGUSR1 (the warning before the job's time limit)"
# The exit status of a run stopped by the time-limit warning with an epoch saved (EX_TEMPFAIL,
# "try again"): the batch script requeues the job on it, and the requeued job resumes.
GO_ON_LATER = 75


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


def stopped_line(number, when, saved, folder):
    """What a run stopped by signal `number` says: when, whether the network keeps what it has
    learned, and how --resume goes on, where a training state was `saved` in `folder`."""
    after = ("--resume goes on after the last finished epoch" if saved else
             "--resume will find nothing to go on from, since no epoch finished")
    if os.environ.get("SLURM_JOB_ID") and saved:
        # A new job has a folder of its own (slurm/train.sbatch): name this one to it.
        after += (f": a requeued job does so by itself, and a new one when given this folder, "
                  f"sbatch --export=ALL,MNISTLAB_OUT_DIR={shlex.quote(readable(folder))} "
                  f"slurm/train.sbatch")
    # After Ctrl-C the lesson goes on with the network; after a batch system's signal it ends.
    keeps = " The network keeps what it has learned so far;" if number == signal.SIGINT else ""
    return f"Stopped by {STOP_SIGNALS[number]} {when}.{keeps} {after}."


def end_for_the_batch_system(number, saved_epoch, first_epoch):
    """After SIGTERM or SIGUSR1 the program ends here, without the figures: the job's time is
    up, and a requeued job resumes from the epoch saved last. After the time-limit warning,
    the exit status asks the batch script to requeue the job, unless this job finished no
    epoch (saved_epoch None): then the next would only start the same one again."""
    if number == signal.SIGTERM:
        sys.exit(128 + signal.SIGTERM)  # as a shell reports a program ended by SIGTERM
    if saved_epoch is None:
        stop(f"the job's time ran out before epoch {first_epoch} finished, so a requeued job "
             f"would only start it again. Ask for more time (sbatch --time), or for a shorter "
             f"epoch (a GPU, or more CPUs: --cpus-per-task).")
    sys.exit(GO_ON_LATER)
