"""A real Slurm cluster of one node, this machine, for the tests of slurm/train.sbatch and the
doctor: Debian's slurm-wlm, started as root from a config of its own in a temporary folder."""

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from real_systems import free_port, require


class SlurmCluster:
    """munged, slurmctld and slurmd on 127.0.0.1 and free ports, with their state, logs and key in
    `folder`, stopped afterwards with every job they ran. `environment` points Slurm's commands
    at this cluster; `run` runs one of them."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self.node = socket.gethostname().split(".")[0]  # slurmd serves the host's short name
        self.environment = {**os.environ, "SLURM_CONF": str(self.folder / "slurm.conf")}
        self.pid_files = [self.folder / name for name in ("slurmd.pid", "slurmctld.pid",
                                                          "munged.pid")]

    def run(self, *command, cwd=None):
        """What a Slurm command prints, typed in `cwd`; a failure fails the test."""
        answer = subprocess.run(command, capture_output=True, text=True, timeout=30,
                                env=self.environment, cwd=cwd)
        assert answer.returncode == 0, answer.stderr
        return answer.stdout.strip()

    def write_config(self, munge_socket):
        with open("/proc/meminfo") as meminfo:
            megabytes = int(meminfo.readline().split()[1]) // 1024
        ports = [free_port(), free_port()]
        (self.folder / "state").mkdir()
        (self.folder / "spool").mkdir()
        settings = {
            "ClusterName": "mnistlab", "SlurmctldHost": f"{self.node}(127.0.0.1)",
            "SlurmctldPort": ports[0], "SlurmdPort": ports[1], "AuthType": "auth/munge",
            # A requeued job waits for its old job credential to expire: 5 s here, not 120.
            "AuthInfo": f"socket={munge_socket},cred_expire=5", "CredType": "cred/munge",
            "SlurmUser": "root", "SlurmdUser": "root",
            "StateSaveLocation": self.folder / "state", "SlurmdSpoolDir": self.folder / "spool",
            "SlurmctldPidFile": self.pid_files[1], "SlurmdPidFile": self.pid_files[0],
            "SlurmctldLogFile": self.folder / "slurmctld.log",
            "SlurmdLogFile": self.folder / "slurmd.log",
            "ProctrackType": "proctrack/linuxproc", "TaskPlugin": "task/none",
            "SelectType": "select/cons_tres", "SelectTypeParameters": "CR_Core_Memory",
            "SchedulerType": "sched/builtin", "SchedulerParameters": "sched_interval=1",
            "MpiDefault": "none", "ReturnToService": 2,
            "JobCompType": "jobcomp/none", "AccountingStorageType": "accounting_storage/none",
            "NodeName": f"{self.node} NodeAddr=127.0.0.1 CPUs={os.cpu_count()} "
                        f"RealMemory={megabytes * 9 // 10} State=UNKNOWN",
            "PartitionName": "lesson Nodes=ALL Default=YES MaxTime=INFINITE State=UP",
        }
        (self.folder / "slurm.conf").write_text(
            "".join(f"{name}={value}\n" for name, value in settings.items()))

    def __enter__(self):
        require("munged", "slurmctld", "slurmd", "sbatch", why="root")
        munge = self.folder / "munge"
        munge.mkdir(mode=0o700, parents=True)
        key = munge / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        subprocess.run(["munged", f"--key-file={key}", f"--socket={munge / 'socket'}",
                        f"--pid-file={self.pid_files[2]}", f"--log-file={munge / 'log'}",
                        f"--seed-file={munge / 'seed'}", "--force"], check=True)
        self.write_config(munge / "socket")
        config = str(self.folder / "slurm.conf")
        subprocess.run(["slurmctld", "-f", config], check=True, env=self.environment)
        subprocess.run(["slurmd", "-f", config], check=True, env=self.environment)
        deadline = time.monotonic() + 30
        while "idle" not in self.states():
            assert time.monotonic() < deadline, (self.folder / "slurmctld.log").read_text()
            time.sleep(0.2)
        return self

    def states(self):
        answer = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True,
                                env=self.environment)
        return answer.stdout.split()

    def job(self, job_id, field):
        """A field of `scontrol show job`, such as JobState or Restarts."""
        shown = self.run("scontrol", "show", "job", str(job_id))
        return next(part.split("=", 1)[1] for part in shown.split()
                    if part.startswith(field + "="))

    def wait_for(self, job_id, field, values, seconds=60, output=None):
        """The job's field once it is one of `values`; past the seconds, a failure that shows
        the job's output file where one is named."""
        deadline = time.monotonic() + seconds
        while (value := self.job(job_id, field)) not in values:
            assert time.monotonic() < deadline, (
                f"job {job_id}: {field}={value}\n{output.read_text() if output else ''}")
            time.sleep(0.1)
        return value

    def __exit__(self, *_):
        subprocess.run(["scancel", "--full", "--user", "root"], env=self.environment,
                       capture_output=True)
        deadline = time.monotonic() + 40
        while subprocess.run(["squeue", "-h"], capture_output=True, text=True,
                             env=self.environment).stdout.strip():
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)
        for pid_file in self.pid_files:
            if pid_file.exists():
                os.kill(int(pid_file.read_text()), signal.SIGTERM)
