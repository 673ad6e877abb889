"""What asks a training run to stop after its current batch: Ctrl-C, and in a terminal a batch
system's SIGTERM and SIGUSR1, with the words the run says them in. Standard library only."""

import signal

from .console import IN_NOTEBOOK, end_at_once

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
