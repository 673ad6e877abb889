"""Which PyTorch build runs on which NVIDIA GPU and driver, and the command that installs it.

A build has kernels for some GPU architectures only (compute capabilities, such as 7.0 for a
V100), and needs a driver for its CUDA major version or a newer one. Standard library only: the
doctor asks this before PyTorch is installed, or where it would not import.
"""

from dataclasses import dataclass

INDEX = "https://download.pytorch.org/whl/"


@dataclass(frozen=True)
class Build:
    index: str  # its folder on PyTorch's index; "" for pip's default, which requirements.txt gets
    cuda: str  # the CUDA version it is built for
    kernels: tuple  # torch.cuda.get_arch_list() as that build prints it
    pins: str = "torch torchvision"  # what to install from its index
    release: str = ""  # where only an older release has this build

    def describe(self):
        older = f" of PyTorch {self.release}, the newest release that has one" if self.release \
            else ""
        return f"the build for CUDA {self.cuda}{older} ({kernels_text(self.kernels)})"


# Newest first: the first that runs on a machine is the one to install. From PyTorch's release
# matrix (RELEASE.md, "PyTorch CUDA Support Matrix", releases 2.12 to 2.14, and 2.7 for CUDA
# 11.8); the default build's list is checked against the installed one by tests/test_builds.py.
BUILDS = (
    Build("", "13.0", ("sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120")),
    Build("cu126", "12.6", ("sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90")),
    Build("cu118", "11.8", ("sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90"),
          pins="torch==2.7.1 torchvision==0.22.1", release="2.7.1"),
)
CPU = Build("cpu", "", ())


def major(version):
    return int(version.split(".")[0])


def capability_of(text):
    """(major, minor) from nvidia-smi's "7.0", or None where it says something else."""
    parts = text.strip().split(".")
    return (int(parts[0]), int(parts[1])) if len(parts) == 2 and all(
        part.isdigit() for part in parts) else None


def capability_text(capability):
    return f"{capability[0]}.{capability[1]}"


def architecture(kernel):
    """(kind, (major, minor)) of a kernel name: "sm_86" → ("sm", (8, 6)), "compute_120" →
    ("compute", (12, 0)); None for a name that is not one."""
    kind, _, number = kernel.partition("_")
    return (kind, divmod(int(number), 10)) if number.isdigit() else None


def runs_on(kernels, capability):
    """Whether a build with these kernels runs on a GPU of this (major, minor) capability: code
    for an architecture (sm_70) runs on later GPUs of its major version (7.2), and PTX
    (compute_120) is compiled for any later GPU as the program starts."""
    for kind, built in filter(None, map(architecture, kernels)):
        if kind == "sm" and built[0] == capability[0] and built[1] <= capability[1]:
            return True
        if kind == "compute" and built <= capability:
            return True
    return False


def kernels_text(kernels):
    """"compute capability 7.5 to 12.0", as a learner compares it with nvidia-smi's numbers."""
    built = sorted(built for _, built in filter(None, map(architecture, kernels)))
    if not built:
        return "no GPU"
    return f"compute capability {capability_text(built[0])} to {capability_text(built[-1])}"


def installed_build(cuda):
    """The table's build for the installed PyTorch's CUDA version, or None where the table does
    not know that version (an older release's build)."""
    return next((build for build in BUILDS if build.cuda == cuda), None)


def build_for(driver_cuda, capabilities=()):
    """The newest build that this driver runs and that has kernels for every GPU capability
    given; CPU where there is no driver, or none does."""
    for build in BUILDS:
        if driver_cuda and major(driver_cuda) >= major(build.cuda) and all(
                runs_on(build.kernels, capability) for capability in capabilities):
            return build
    return CPU


def install_command(driver_cuda, capabilities=(), replacing=True):
    """The command that puts the PyTorch this driver and these GPUs can run into a fresh .venv,
    in place of the one there (replacing) or where there is none."""
    fresh = ("rm -rf .venv && " if replacing else "") + "python3 -m venv .venv && "
    fresh += ".venv/bin/pip install "
    build = build_for(driver_cuda, capabilities)
    if not build.index:
        return fresh + "-r requirements.txt"
    return (fresh + f"{build.pins} --index-url {INDEX}{build.index} && .venv/bin/pip install "
            "-r requirements.txt")


def cannot_run(kernels, built_cuda, driver_cuda, capability, others=()):
    """A sentence saying that this build has no kernels for a GPU of this capability, and the
    install of one that has for this driver (and for the `others` GPUs' capabilities too, where
    one build has both); None where it runs."""
    if runs_on(kernels, capability):
        return None
    said = (f"this PyTorch, built for CUDA {built_cuda}, has kernels for "
            f"{kernels_text(kernels)} only, and this GPU's is {capability_text(capability)}")
    wanted = [capability, *others]
    if build_for(driver_cuda, wanted) is CPU:
        wanted = [capability]
    if build_for(driver_cuda, wanted) is not CPU:
        return said + ". " + install_sentence(driver_cuda, wanted)
    return said + ": " + no_build_reason(driver_cuda, capability)


def install_sentence(driver_cuda, capabilities):
    """The sentence that says which build to install, for this driver and these GPUs, and how."""
    return (f"Install {build_for(driver_cuda, capabilities).describe()} into a fresh .venv: "
            f"{install_command(driver_cuda, capabilities)}")


def no_build_reason(driver_cuda, capability):
    """Why no build runs here, when none does, and what to do instead."""
    if not any(runs_on(build.kernels, capability) for build in BUILDS):
        return (f"no PyTorch release the lesson supports has kernels for compute capability "
                f"{capability_text(capability)}; train on the CPU")
    driver = f"a driver for CUDA {driver_cuda}" if driver_cuda else "this driver"
    return f"no build runs on it with {driver}; ask for a newer driver, or train on the CPU"
