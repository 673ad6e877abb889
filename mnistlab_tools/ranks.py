"""The ranks: a run in several processes (lesson three), started as torchrun starts them, on this
machine or on several that meet at a rendezvous (as_ranks), and ended in one plain line where
torchrun would end in its own report: a rank that died, a rendezvous that failed, more ranks
than GPUs. Each rank's own side, its device and its part of the run, is in .device and .run.
PyTorch is loaded only once the launcher has quietened its C++ log."""

import contextlib
import os
import signal
import socket
import sys
import time
from pathlib import Path

from .console import stop
from .doctor import usable_cores

# The exit status of a rank that stopped because another died mid-step: its launcher names the
# one that died, where it runs the rank (on another machine, that machine's launcher does).
LOST_A_RANK = 3

# How long the machines of a run wait at the rendezvous for each other, and for a reply from the
# first: enough for a slow node to start (PyTorch loads slowly from a shared disk), and not
# torchrun's ten minutes.
RENDEZVOUS_SECONDS = 120

# torchrun's c10d rendezvous, under the name the launcher registers it as: the same meeting, held
# by the first launcher, that the others no longer need once met (rendezvous_met_once).
MET_ONCE = "c10d-met-once"


def as_ranks(script, settings):
    """Run `script` as settings.ranks processes on this machine, the ranks, as torchrun does,
    each with this program's command line; it ends the program. On this machine alone, as
    `torchrun --standalone`; with a rendezvous, as one of settings.nodes machines that meet
    there (torchrun's c10d rendezvous), each starting its own ranks. Where the ranks stopped as
    planned (Ctrl-C, SIGTERM, the time-limit warning) it ends with their exit status, each rank
    having said what it kept; what torchrun itself would end in a traceback ends in one line: a
    rank that died, named with how, or a rendezvous that failed, with the fix."""
    if settings.nodes > 1 and not settings.rendezvous:
        stop(f"--nodes {settings.nodes} needs a --rendezvous HOST:PORT where the machines meet: "
             f"the first one's name and a free port on it, such as node01:29500")
    if settings.rendezvous:
        unknown = unknown_host(settings.rendezvous)
        if unknown:
            stop(unknown)
    torchrun, stopped, failed, unmet = launcher()
    from .device import ranks_beyond_the_gpus
    from .run import PLANNED_ENDS

    too_many = ranks_beyond_the_gpus(settings.device_name, settings.ranks)
    if too_many:
        stop(too_many)
    where = ["--standalone"] if not settings.rendezvous else [
        f"--nnodes={settings.nodes}", f"--rdzv-backend={MET_ONCE}",
        f"--rdzv-endpoint={settings.rendezvous}",
        f"--rdzv-id={os.environ.get('SLURM_JOB_ID', 'mnistlab')}",
        f"--rdzv-conf=join_timeout={RENDEZVOUS_SECONDS},read_timeout={RENDEZVOUS_SECONDS}"
        + hosting(os.environ)]
    os.environ.setdefault("OMP_NUM_THREADS",
                          str(max(1, usable_cores(os.environ) // settings.ranks)))
    if hasattr(signal, "SIGUSR1"):  # a batch system may warn the launcher alone
        signal.signal(signal.SIGUSR1, lambda number, _: tell_the_ranks(number))
    started = time.monotonic()
    try:
        torchrun.run(torchrun.parse_args([*where, f"--nproc-per-node={settings.ranks}",
                                          "--monitor-interval=0.5", str(script),
                                          *sys.argv[1:]]))
    except stopped as error:
        if error.sigval in (signal.SIGINT, signal.SIGTERM):
            sys.exit(128 + error.sigval)  # each rank has said where it stopped, and what it kept
        stop(f"the ranks were stopped by signal {error.sigval.name}; what the last finished "
             f"epoch saved stays for --resume.")
    except failed as error:
        planned = {failure.exitcode for failure in error.failures.values()} - {-signal.SIGTERM}
        if len(planned) == 1 and planned <= PLANNED_ENDS:
            sys.exit(planned.pop())
        stop(failure_line(error.failures, settings.nodes * settings.ranks))
    except unmet as error:
        stop(rendezvous_line(settings.rendezvous, error, settings.nodes,
                             time.monotonic() - started))
    sys.exit(0)


def launcher():
    """torchrun's module, and the errors it ends in (a signal, a failed rank, a failed
    rendezvous), loaded with the launcher's C++ log quiet: it would repeat each failed try to
    meet with its stack, where one line says it. The ranks keep their log as it was."""
    import logging

    ranks_log = os.environ.get("TORCH_CPP_LOG_LEVEL")
    os.environ["TORCH_CPP_LOG_LEVEL"] = "FATAL"  # read as PyTorch loads
    from torch.distributed import run as torchrun
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.elastic.rendezvous import rendezvous_handler_registry
    from torch.distributed.elastic.rendezvous.api import RendezvousError

    rendezvous_handler_registry.register(MET_ONCE, rendezvous_met_once)
    if ranks_log is None:
        del os.environ["TORCH_CPP_LOG_LEVEL"]
    else:
        os.environ["TORCH_CPP_LOG_LEVEL"] = ranks_log
    # torchrun's Python log, said in a line instead ("Received 15 death signal, …" and the
    # like). Each of its modules sets its own level, so its records stop here, on their way up.
    elastic_log = logging.getLogger("torch.distributed.elastic")
    elastic_log.addHandler(logging.NullHandler())
    elastic_log.propagate = False
    return torchrun, SignalException, ChildFailedError, RendezvousError


def rendezvous_met_once(parameters):
    """torchrun's c10d rendezvous, for machines that meet once (RendezvousMetOnce)."""
    from torch.distributed.elastic.rendezvous.c10d_rendezvous_backend import create_backend
    from torch.distributed.elastic.rendezvous.dynamic_rendezvous import create_handler

    backend, store = create_backend(parameters)
    return RendezvousMetOnce(create_handler(store, backend, parameters))


class RendezvousMetOnce:
    """A rendezvous of fixed machines, none restarted, that no longer need its host once met.
    While its ranks train, torchrun's launcher asks the rendezvous every half second whether a
    machine waits to join, and ends in a rendezvous error where it finds the first launcher,
    the host, gone. That one ends as its own ranks end, which may be a moment before the ranks
    here end: stopped together, as planned, or as the ranks there died. Here the answer is then
    none, and this launcher waits for its own ranks, which say how they ended."""

    def __init__(self, handler):
        self.handler = handler

    def __getattr__(self, name):
        return getattr(self.handler, name)

    def get_backend(self):
        return MET_ONCE

    def num_nodes_waiting(self):
        from torch.distributed.elastic.rendezvous.api import RendezvousConnectionError

        try:
            return self.handler.num_nodes_waiting()
        except RendezvousConnectionError:  # the host has ended: no machine will join now
            return 0


def lost_a_rank():
    """End this rank at once, and quietly, where another died mid-step: the launcher of the rank
    that died names it."""
    from .run import end_rank

    end_rank(LOST_A_RANK)


def hosting(environment):
    """Under Slurm, whether this launcher hosts the rendezvous: the job's first task does, so
    that a port taken on its machine is said at once. Elsewhere torchrun decides by the name."""
    task = environment.get("SLURM_PROCID")
    return "" if task is None else f",is_host={int(task == '0')}"


def tell_the_ranks(number):
    """Send signal `number` to this process's children, the ranks (Linux; elsewhere none)."""
    for children in Path("/proc/self/task").glob("*/children"):
        for child in children.read_text().split():
            with contextlib.suppress(OSError):
                os.kill(int(child), number)


def unknown_host(place):
    """Why the machines cannot meet at `place` (HOST:PORT) where its host has no address, or
    None."""
    host, _, port = place.rpartition(":")
    try:
        socket.getaddrinfo(host, port)
    except OSError:
        return (f"no machine is called {host} from here, so the machines cannot meet at the "
                f"rendezvous {place}. Name the first machine as the others know it: hostname "
                f"on it, or, in a Slurm job, the first of scontrol show hostnames.")
    return None


def rendezvous_line(place, error, machines, seconds):
    """What a rendezvous of `machines` at `place` (HOST:PORT) that failed after `seconds` means,
    and what to do."""
    host, _, port = place.rpartition(":")
    if "EADDRINUSE" in str(error.__cause__):
        return (f"port {port} on {host} is taken by another program, so the machines cannot meet "
                f"there (the rendezvous). Choose a free one: --rendezvous {host}:PORT, or, under "
                f"Slurm, submit the job again (slurm/ddp.sbatch takes a port from its number).")
    return (f"the {machines} machines did not all meet at the rendezvous {place}, waited for "
            f"{seconds:.0f} s. The first machine, {host}, must have started the run too, "
            f"and the others must reach its port {port}: ping {host}, and ask whether a firewall "
            f"blocks the port.")


def failure_line(failures, ranks):
    """The rank that failed first, and how, in words, with what the others did. A rank ended by
    torchrun's own SIGTERM, or one that stopped as another died (LOST_A_RANK), is no cause: a
    rank that ended otherwise is named, and where none did, the cause was on another machine."""
    rank, failure = min(failures.items(), key=lambda item: (
        item[1].exitcode in (-signal.SIGTERM, LOST_A_RANK), item[1].timestamp, item[0]))
    if failure.exitcode in (-signal.SIGTERM, LOST_A_RANK):
        here = "the rank" if len(failures) == 1 else f"the {len(failures)} ranks"
        return (f"a rank on another machine was lost, and {here} here stopped with it: that "
                f"machine's output names it, and how. What the last finished epoch saved stays "
                f"for --resume.")
    how = (f"was killed by signal {signal.Signals(-failure.exitcode).name}"
           if failure.exitcode < 0 else f"ended with exit status {failure.exitcode}")
    return (f"rank {rank} of {ranks} {how}, and the others were stopped with it (its own "
            f"message, if it left one, is above). What the last finished epoch saved stays "
            f"for --resume.")
