"""mnistlab_tools as a package: rooms that import each other without a cycle, a few names that
each load their room when first used, an import that changes nothing in the importing program,
settings declared once, answers that come at once, a doctor that works where PyTorch is missing,
and checks that read the real model and the real lesson."""

import ast
import json
import re
import subprocess
import sys
import venv
from pathlib import Path

import pytest
import torch
from lesson_runs import PAIRS, REPO, SCRIPT, hook, lesson_environment, lesson_parameters
from run_outputs import assert_plain_stop
from torch import nn
from torchvision import datasets

import mnistlab_saved as saved
import mnistlab_tools as tools
from mnistlab_tools.data import DATASETS
from mnistlab_tools.device import training_bytes
from mnistlab_tools.settings import LESSONS

PACKAGE = REPO / "mnistlab_tools"
MODULES = sorted(PACKAGE.glob("*.py"))


export, parameters = hook("export"), hook("parameters")


def test_each_name_the_package_offers_loads_and_an_unknown_one_is_named():
    program = ("import sys, mnistlab_tools as tools\n"
               "for name in tools.__all__:\n"
               "    getattr(tools, name)\n"
               "print(sorted(dir(tools)) == sorted(tools.__all__))\n"
               "tools.no_such_name\n")
    finished = subprocess.run([sys.executable, "-c", program], cwd=REPO, capture_output=True,
                              text=True, timeout=120)
    assert finished.stdout.split() == ["True"], finished.stdout
    assert "AttributeError" in finished.stderr and "no_such_name" in finished.stderr


def package_imports(path):
    """The modules of the package that `path` imports."""
    tree = ast.parse(path.read_text())
    return {node.module for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module}


def test_the_modules_import_each_other_without_a_cycle():
    imports = {path.stem: package_imports(path) for path in MODULES}
    done = set()

    def visit(module, path):
        assert module not in path, " → ".join([*path, module])
        if module not in done:
            for imported in imports[module]:
                visit(imported, [*path, module])
            done.add(module)

    for module in imports:
        visit(module, [])


# What an importing program keeps: its Ctrl-C, excepthook, streams and matplotlib backend.
BEFORE_AND_AFTER = """
import json, signal, sys
def state():
    import matplotlib
    return [repr(signal.getsignal(signal.SIGINT)), repr(sys.excepthook), sys.stdout.errors,
            sys.stderr.errors, matplotlib.get_backend(), "torch" in sys.modules]
before = state()
import mnistlab_tools as tools
light = "torch" not in sys.modules
for name in ("settings_or_stop", "find_data", "pick_device", "show", "Run", "prepare_photos",
             "load_checkpoint", "check_exercise"):
    getattr(tools, name)  # every room loaded
after = state()
print(json.dumps({"before": before[:-1], "after": after[:-1], "light": light}))
"""


def test_importing_the_package_changes_nothing_in_the_importing_program(tmp_path):
    finished = subprocess.run([sys.executable, "-c", BEFORE_AND_AFTER], cwd=REPO,
                              env=lesson_environment(tmp_path), capture_output=True, text=True,
                              timeout=120)
    assert finished.returncode == 0, finished.stderr
    seen = json.loads(finished.stdout)
    assert seen["after"] == seen["before"]
    assert seen["light"], "import mnistlab_tools loaded PyTorch"


def test_only_a_program_in_a_terminal_gets_the_quiet_ctrl_c(tmp_path):
    program = ("import signal, sys, mnistlab_tools as tools\ntools.set_up_terminal()\n"
               "from mnistlab_tools.console import end_at_once, end_quietly\n"
               "print(signal.getsignal(signal.SIGINT) is end_at_once,"
               " sys.excepthook is end_quietly, sys.stdout.errors)\n"
               "import matplotlib\nprint(matplotlib.get_backend())")
    finished = subprocess.run([sys.executable, "-c", program], cwd=REPO, capture_output=True,
                              env={**lesson_environment(tmp_path), "DISPLAY": ":0"}, text=True)
    assert finished.stdout.lower().split() == ["true", "true", "mnistlab_ascii", "agg"], (
        finished.stderr)


def test_the_parameters_cells_and_the_settings_page_are_written_from_settings():
    for path, text in parameters.written().items():
        assert path.read_text(encoding="utf-8") == text, (
            f"{path.name} is not up to date: run .venv/bin/python .hooks/parameters.py")


def test_an_edited_parameters_cell_is_written_back_from_settings():
    script = (REPO / "handwriting.py").read_text()
    edited = script.replace("epochs = 5                #", "epochs = 2                #")
    assert edited != script and parameters.with_cell(edited, "handwriting") == script
    assert ("epochs = 5                # passes over the training data; other hands take longer "
            "to learn\n") in parameters.parameters_cell("handwriting")


@pytest.mark.parametrize("lesson", PAIRS)
def test_each_setting_is_assigned_in_the_parameters_cell_only(lesson):
    script, notebook = PAIRS[lesson]
    names = LESSONS[lesson].settings
    assert list(lesson_parameters(notebook)) == list(names)  # as papermill finds them
    code = [cell.source for cell in export.jupytext.read(script).cells
            if cell.cell_type == "code"]
    for name in names:
        named = [source for source in code if re.search(rf"^\s*{name} = ", source, re.M)]
        assert len(named) == 1, name  # the parameters cell, and nowhere else


def test_predict_refuses_a_bad_device_from_the_environment_in_one_line(tmp_path):
    finished = subprocess.run([sys.executable, str(REPO / "predict.py"), "seven.jpg"],
                              cwd=tmp_path, capture_output=True, text=True, timeout=60,
                              env={**lesson_environment(tmp_path), "MNISTLAB_DEVICE": "gpu"})
    assert_plain_stop(finished, "environment variable MNISTLAB_DEVICE: 'gpu' is not allowed",
                      ".venv/bin/python predict.py --help")


def test_predict_reads_its_options_through_the_lessons_declarations(tmp_path):
    import predict

    parsed = predict.read_options(["seven.jpg"], {"MNISTLAB_OUT_DIR": str(tmp_path)})
    assert parsed.out_dir == tmp_path and parsed.origins == {"out_dir": "MNISTLAB_OUT_DIR"}
    assert parsed.device_name == "auto" and parsed.photos == [Path("seven.jpg")]


def test_the_doctor_runs_in_a_python_without_pytorch(tmp_path):
    venv.create(tmp_path / "bare", with_pip=False)
    finished = subprocess.run([str(tmp_path / "bare" / "bin" / "python"), str(SCRIPT), "--doctor",
                               "--mirror", "http://127.0.0.1:9/"], cwd=tmp_path,
                              env=lesson_environment(tmp_path / "out"), capture_output=True,
                              text=True, timeout=60)
    assert finished.returncode == 0 and finished.stderr == "", finished.stderr
    line = {text.split(" ")[0].rstrip(":"): text for text in finished.stdout.splitlines()}
    assert "Missing torch, torchvision, matplotlib" in line["Requirements"]
    assert f".venv/bin/pip install -r {REPO}/requirements.txt" in line["Requirements"]
    assert line["PyTorch"] == "PyTorch: not installed in this Python (see Requirements)"
    trained = subprocess.run([str(tmp_path / "bare" / "bin" / "python"), str(SCRIPT), "--sample"],
                             cwd=tmp_path, env=lesson_environment(tmp_path / "out"),
                             capture_output=True, text=True, timeout=60)
    assert_plain_stop(trained, "Missing torch", "requirements.txt")
    read = subprocess.run([str(tmp_path / "bare" / "bin" / "python"), str(REPO / "predict.py"),
                           str(REPO / "sample" / "photo_of_a_7.jpg")], cwd=tmp_path,
                          env=lesson_environment(tmp_path / "out"), capture_output=True,
                          text=True, timeout=60)
    assert_plain_stop(read, "Missing torch", "requirements.txt")


def test_the_download_addresses_are_torchvisions():
    for info in DATASETS.values():
        assert list(info.mirrors) == info.torchvision_class.mirrors
    assert DATASETS["fashion"].class_names == datasets.FashionMNIST.classes


class WiderNet(saved.DigitNet):
    """DigitNet with its first convolution doubled in width, as a learner may edit it."""

    def __init__(self, channels=16):
        super().__init__(channels)
        self.features[0] = nn.Conv2d(1, 2 * channels, kernel_size=5, bias=False)
        self.features[2] = nn.BatchNorm2d(2 * channels)
        self.features[4] = nn.Conv2d(2 * channels, 2 * channels, kernel_size=5, bias=False)


def test_the_memory_check_measures_the_model_itself(capsys):
    images = torch.zeros(4, 1, 28, 28)
    narrow = training_bytes(saved.DigitNet(16), images, 128)
    wider = training_bytes(WiderNet(16), images, 128)
    assert wider > 1.5 * narrow  # the first layer's maps, twice as many, dominate
    assert training_bytes(saved.DigitNet(16), images, 256) > 1.9 * narrow
    weights = sum(p.numel() for p in saved.DigitNet(16).parameters()) * 4
    assert narrow > 4 * weights  # maps kept for the backward pass come on top of the weights
    with pytest.raises(SystemExit):
        tools.check_memory(WiderNet(256), images, 60_000)
    assert "needs about" in capsys.readouterr().err


def test_the_saved_module_says_it_is_generated_and_where_each_block_comes_from():
    text = export.SAVED_MODULE.read_text()
    assert text.startswith("# AUTOGENERATED! DO NOT EDIT! Files to edit: mnistlab.py and "
                           "handwriting.py")
    assert '# From mnistlab.py, section "The network"' in text
    assert '# From handwriting.py, section "Preparing a photo"' in text
    for script, _ in PAIRS.values():
        sections = [line for line in text.splitlines()
                    if line.startswith(f"# From {script.name}")]
        assert sections, script.name
        for line in sections:
            assert f"# ## {line.split('section ')[1].strip(chr(34))}" in script.read_text(), line
