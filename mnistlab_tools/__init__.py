"""What keeps the lessons, mnistlab.py, handwriting.py and ddp.py, robust, so that each can tell
its story, in thirteen rooms, each a thing a reader can name:

    settings   each setting declared once: the parameters cell, MNISTLAB_* variables, the
               command line and --help, the checks, the lessons' table, --doctor and --get-data
    run        one run and the output folder it owns: its lock, figures, training's companions
               (progress, the probe, stopping, out of memory, TensorBoard), saving the network
    ranks      a run in several processes (lesson three), started as torchrun starts them, its
               faults said in a line
    saved      what is saved: the network and the training state, one naming rule, the rule that
               keeps the better network, and --resume's checks
    data       finding, downloading and checking MNIST and Fashion-MNIST, or the sample
    device     where to train (a rank's GPU too), set up so that a seed repeats, and whether it
               fits in memory
    doctor     what this machine offers the lesson (--doctor): builds, GPUs, drivers, Slurm
    files      files written whole, regular files read, one run a folder, writable folders
    console    one plain line to stop with; a quiet Ctrl-C for programs run in a terminal
    figures    figures drawn from any image classifier, saved and shown
    photos     reading photos of handwriting
    pad        a drawing pad in the notebook (an anywidget), read by the networks you trained
    exercises  the checks of lesson one's exercises

`import mnistlab_tools as tools` changes nothing in the importing program and loads no PyTorch:
the names in __init__.pyi load their room when first used. The rooms never import a lesson, and
their functions take what they use as arguments. CONTRIBUTING.md has the table of names.
"""

try:
    import lazy_loader
except ImportError:  # a bare Python, as --doctor meets before the requirements are installed
    lazy_loader = None

if lazy_loader:
    __getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
else:
    import ast as _ast
    import importlib as _importlib
    from pathlib import Path as _Path

    _ROOM_OF = {alias.name: node.module for node in _ast.parse(
        (_Path(__file__).parent / "__init__.pyi").read_text(encoding="utf-8")).body
        for alias in node.names}
    __all__ = sorted(_ROOM_OF)

    def __getattr__(name):
        if name not in _ROOM_OF:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        return getattr(_importlib.import_module(f".{_ROOM_OF[name]}", __name__), name)

    def __dir__():
        return __all__
