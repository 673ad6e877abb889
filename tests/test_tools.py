"""Unit tests of mnistlab_tools, the lesson's plumbing: settings, data, files, figures,
checkpoints."""

import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from fake_data import write_mnist_like
from lesson_runs import (HANDWRITING_NOTEBOOK, REPO, hook, lesson_parameters,
                         training_run)
from PIL import Image, ImageOps
from run_outputs import colours_drawn
from torch import nn
from torchvision import datasets

import mnistlab_tools as tools
from mnistlab_tools.data import DATASETS, IDX_FILES, data_folder, data_problems
from mnistlab_tools.files import save_file
from mnistlab_tools.photos import MOST_PIXELS, fitting, flattened, open_photo
from mnistlab_tools.run import TensorBoardLog, training_trouble
from mnistlab_tools.settings import LESSONS, SETTING, SettingsError
from benchmarks.photo_like import photo_of
from mnistlab_saved import DigitNet, prepare_digit

CELL = lesson_parameters()
TWO = lesson_parameters(HANDWRITING_NOTEBOOK)  # lesson two's parameters cell


# Settings


def test_the_parameters_cell_gives_the_defaults():
    settings = tools.read_settings(CELL, [], {})
    assert (
        settings.epochs,
        settings.batch_size,
        settings.lr,
        settings.device_name,
        settings.sample,
    ) == (1, 128, 0.02, "auto", False)
    # Folders in the cell are taken from the lesson's folder, wherever the lesson is started from.
    assert settings.data_dir == REPO / "data" and settings.out_dir == REPO / "outputs"
    assert settings.origins == {} and settings.network_name == "mnist"
    assert (settings.augment, settings.photos) == (False, [])  # lesson two's settings
    two = tools.read_settings(TWO, [], {}, "handwriting")
    assert two.photos == [REPO / "sample" / "photo_of_a_7.jpg"] and two.augment
    assert (two.dataset, two.tensorboard, two.network_name) == ("mnist", False, "handwriting")


def test_lesson_one_points_to_lesson_two_for_its_settings():
    for option in ("--augment", "--photos"):
        with pytest.raises(SettingsError,
                           match=r"lesson two's: \.venv/bin/python handwriting\.py"):
            tools.read_settings(CELL, [option, "my_7.jpg"][:1 + (option == "--photos")], {})


def test_the_environment_overrides_the_cell():
    settings = tools.read_settings(
        CELL,
        [],
        {
            "MNISTLAB_EPOCHS": "2",
            "MNISTLAB_LR": "0.003",
            "MNISTLAB_SAMPLE": "1",
            "MNISTLAB_DEVICE": "cpu",
            "MNISTLAB_DATA_DIR": "/srv/mnist",
        },
    )
    assert (settings.epochs, settings.lr, settings.sample, settings.device_name) == (
        2,
        0.003,
        True,
        "cpu",
    )
    assert settings.data_dir == Path("/srv/mnist")
    assert settings.origins["epochs"] == "MNISTLAB_EPOCHS" and "batch_size" not in settings.origins


def test_options_override_the_environment():
    settings = tools.read_settings(
        CELL,
        ["--epochs", "3", "--no-sample", "--batch-size=64"],
        {"MNISTLAB_EPOCHS": "2", "MNISTLAB_SAMPLE": "yes", "MNISTLAB_BATCH_SIZE": "32"},
    )
    assert (settings.epochs, settings.sample, settings.batch_size) == (3, False, 64)
    assert settings.origins == {
        "epochs": "--epochs",
        "sample": "--sample",
        "batch_size": "--batch-size",
    }


def test_an_edited_cell_is_read_with_the_same_checks():
    settings = tools.read_settings(
        {**CELL, "epochs": 4, "channels": 8, "data_dir": "/srv/data"}, [], {}
    )
    assert (settings.epochs, settings.channels, settings.data_dir) == (4, 8, Path("/srv/data"))


def test_paths_typed_in_a_terminal_are_taken_from_the_current_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my 7.png").write_bytes(b"")
    settings = tools.read_settings(TWO, ["--out-dir", "figures here", "--photos", "my 7.png"], {},
                                   "handwriting")
    assert settings.out_dir.resolve() == tmp_path / "figures here"
    assert settings.photos == [Path("my 7.png")]
    line = str(settings)
    assert (
        "out_dir=figures here" in line and "photos=[my 7.png]" in line and "PosixPath" not in line
    )


@pytest.mark.parametrize(
    "cell, arguments, environment, named",
    [
        ({}, ["--epochs", "-1"], {}, "--epochs"),
        ({}, ["--epochs", "0"], {}, "--epochs"),
        ({}, ["--lr", "fast"], {}, "--lr"),
        ({}, ["--device", "gpu"], {}, "--device"),
        ({}, ["--seed", "1.5"], {}, "--seed"),
        ({}, ["--speed", "2"], {}, "--speed"),
        ({}, [], {"MNISTLAB_EPOCHS": "abc"}, "MNISTLAB_EPOCHS"),
        ({}, [], {"MNISTLAB_SAMPLE": "maybe"}, "MNISTLAB_SAMPLE"),
        ({}, [], {"MNISTLAB_LR": "-0.1"}, "MNISTLAB_LR"),
        ({}, ["--seed", "²"], {}, "--seed"),
        ({}, ["--seed", "99999999999999999999"], {}, "--seed"),
        ({}, ["--lr", "1e39"], {}, "--lr"),
        ({}, ["--lr", "nan"], {}, "--lr"),
        ({}, ["--channels", "4096"], {}, "--channels"),
        ({}, ["--batch-size", "1000000"], {}, "--batch-size"),
        ({}, ["--epochs", "1e9"], {}, "--epochs"),
        ({"out_dir": ""}, [], {}, "out_dir in the parameters cell"),
        ({"epochs": 2.5}, [], {}, "epochs in the parameters cell"),
        ({"batch_size": True}, [], {}, "batch_size in the parameters cell"),
        ({"dataset": "cifar"}, [], {}, "dataset in the parameters cell"),
    ],
)
def test_a_bad_value_is_named_where_it_came_from(cell, arguments, environment, named):
    with pytest.raises(SettingsError, match=named):
        tools.read_settings({**CELL, **cell}, arguments, environment)


@pytest.mark.parametrize("cell, environment, named", [
    ({}, {"MNISTLAB_PHOTOS": "/no/such/photo.jpg"}, "MNISTLAB_PHOTOS"),
    ({"augment": "perhaps"}, {}, "augment in the parameters cell"),
    ({"epochs": 0}, {}, "epochs in the parameters cell"),
])
def test_a_bad_value_in_lesson_two_is_named_where_it_came_from(cell, environment, named):
    with pytest.raises(SettingsError, match=named):
        tools.read_settings({**TWO, **cell}, [], environment, "handwriting")


def test_an_edit_of_the_cell_that_a_variable_overrides_is_pointed_out(monkeypatch):
    """A .env file read when the kernel started wins over a later edit of the cell: say so."""
    monkeypatch.setattr(sys, "argv", ["mnistlab.py"])
    monkeypatch.setenv("MNISTLAB_EPOCHS", "3")
    edited = tools.settings_or_stop({**CELL, "epochs": 8})
    assert edited.epochs == 3
    assert ("Note: epochs = 8 in the parameters cell is not used: MNISTLAB_EPOCHS wins over it"
            in str(edited))
    untouched = tools.settings_or_stop(dict(CELL))  # the cell as it came: nothing to point out
    assert "Note:" not in str(untouched)


def test_a_bad_value_names_the_range_and_no_internal_function():
    with pytest.raises(SettingsError) as caught:
        tools.read_settings(CELL, ["--seed", "²"], {})
    assert str(caught.value) == "argument --seed: '²' is not allowed: use a whole number from 0 " \
                                "to 9,223,372,036,854,775,807"
    with pytest.raises(SettingsError, match="from 1 to 256"):
        tools.read_settings(CELL, [], {"MNISTLAB_CHANNELS": "4096"})


@pytest.mark.parametrize("lesson", LESSONS)
def test_an_empty_value_means_the_parameters_cell_for_every_setting(lesson):
    values = lesson_parameters(REPO / LESSONS[lesson].script)
    own = [SETTING[name] for name in LESSONS[lesson].settings]
    empty = {setting.variable: " " for setting in own}
    from_variables = tools.read_settings(values, [], empty, lesson)
    options = [word for setting in own if setting.metavar for word in (setting.flag, "")]
    from_options = tools.read_settings(values, options, {}, lesson)
    cell = tools.read_settings(values, [], {}, lesson)
    for name in SETTING:
        assert getattr(from_variables, name) == getattr(from_options, name) == getattr(cell, name)
    assert from_variables.origins == {}


def test_a_missing_parameter_says_to_run_the_cell_again():
    cell = dict(CELL)
    del cell["lr"]
    with pytest.raises(SettingsError, match="the parameters cell has no lr"):
        tools.read_settings(cell, [], {})


def test_the_old_predict_option_points_to_predict_py():
    with pytest.raises(SettingsError, match=".venv/bin/python predict.py PHOTO"):
        tools.read_settings(CELL, ["--predict", "my_7.jpg"], {})


# Data


def test_a_chosen_folder_is_downloaded_into_from_the_mirror(tmp_path, mirror, monkeypatch):
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    chosen = tmp_path / "chosen"
    assert data_folder(DATASETS["mnist"], chosen, False, mirror) == chosen
    raw_dir = chosen / "MNIST" / "raw"
    assert data_problems(raw_dir) == [] and not list(raw_dir.glob(".*"))
    assert sorted(
        path.name for path in raw_dir.iterdir() if not path.name.endswith(".gz")
    ) == sorted(IDX_FILES)
    split = datasets.MNIST(chosen, train=False)
    assert split.data.shape == (10_000, 28, 28)


def test_without_the_mirror_the_sample_is_used_and_the_advice_names_the_folder(tmp_path, capsys):
    chosen = tmp_path / "chosen"
    folder = data_folder(DATASETS["fashion"], chosen, False, "http://127.0.0.1:9/")
    assert folder == tools.SAMPLE_DIR
    advice = capsys.readouterr().out
    assert "Could not download FashionMNIST" in advice and "http://127.0.0.1:9/" in advice
    assert str((chosen / "FashionMNIST" / "raw").resolve()) in advice and "--data-dir" in advice


def test_gz_files_fetched_by_hand_are_unpacked_without_a_network(tmp_path):
    write_mnist_like(tmp_path / "MNIST" / "raw", packed=True)
    assert (
        data_folder(DATASETS["mnist"], tmp_path, False, "http://127.0.0.1:9/") == tmp_path
    )
    assert data_problems(tmp_path / "MNIST" / "raw") == []


def test_the_file_check_names_what_is_wrong(tmp_path):
    write_mnist_like(tmp_path)
    assert data_problems(tmp_path) == []
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(b"\x00" * 100)
    assert data_problems(tmp_path) == [
        "train-labels-idx1-ubyte is damaged or incomplete (100 bytes; the whole file has 60,008)"
    ]


@pytest.mark.parametrize(
    "name, train, size",
    [
        ("MNIST", True, 2000),
        ("MNIST", False, 500),
        ("FashionMNIST", True, 2000),
        ("FashionMNIST", False, 500),
    ],
)
def test_the_committed_sample_is_balanced_real_data(name, train, size):
    split = getattr(datasets, name)(tools.SAMPLE_DIR, train=train, download=False)
    assert split.data.shape == (size, 28, 28) and split.data.dtype == torch.uint8
    assert split.targets.dtype == torch.int64
    assert split.targets.bincount().tolist() == [size // 10] * 10
    assert 0.10 < split.data.float().div(255).mean() < 0.35  # light on a black background


def test_the_sample_is_small_and_documented():
    files = list((tools.SAMPLE_DIR / "MNIST" / "raw").iterdir())
    assert sum(f.stat().st_size for f in files) < 2_000_000
    assert "t10k-images-idx3-ubyte" in (tools.SAMPLE_DIR / "README.md").read_text()


# Files and figures


def test_a_file_is_written_whole_or_not_at_all(tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(b"the previous, whole file")

    def write_half_then_fail(target):
        target.write(b"half a fi")
        raise OSError(28, "No space left on device")

    assert save_file(path, write_half_then_fail) is False
    assert path.read_bytes() == b"the previous, whole file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]


def test_many_photos_make_a_compact_grid(tmp_path):
    digits = datasets.MNIST(tools.SAMPLE_DIR, train=False).data[:200].float() / 255
    probabilities = torch.rand(200, 10).softmax(dim=1)
    figure = tools.readings_figure(digits, probabilities, [f"photo_{i}.jpg" for i in range(200)])
    width, height = figure.get_size_inches()
    assert width <= 12 and height <= 30  # one row of ten a little over an inch tall
    tools.show(figure, tmp_path / "your_digits.png")
    assert (tmp_path / "your_digits.png").stat().st_size < 1_500_000


@pytest.mark.parametrize("channels", [1, 4, 16])
def test_what_the_network_sees_is_drawn_and_leaves_the_network_as_it_was(tmp_path, channels):
    model = DigitNet(channels).train()
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    figure = tools.what_the_network_sees(model.features, torch.randn(1, 28, 28), "7")
    assert model.training  # still training, as the lesson left it
    for name, tensor in model.state_dict().items():  # batch normalisation's statistics too
        assert torch.equal(tensor, before[name]), name
    tools.show(figure, tmp_path / "what_the_network_sees.png")
    assert (tmp_path / "what_the_network_sees.png").stat().st_size > 5_000


def test_a_few_photos_show_their_probabilities():
    sure = torch.full((2, 10), 0.01).index_put_((torch.arange(2), torch.tensor([3, 7])),
                                                 torch.tensor(0.91))
    figure = tools.readings_figure(torch.rand(2, 28, 28), sure, ["a.jpg", "b.jpg"])
    assert colours_drawn(figure) & {"firebrick", "darkorange"} == {"firebrick"}  # one sure guess


def test_tensorboard_logs_each_step_without_deprecation_warnings(tmp_path):
    pytest.importorskip("tensorboard")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with TensorBoardLog(tmp_path, "mnist", DigitNet(), torch.randn(8, 1, 28, 28)) as log:
            log.probe(0, 10.0)
            log.epoch(1, [2.3, 2.0], 2.15, 40.0, 0)
    assert not [
        w
        for w in caught
        if issubclass(w.category, (FutureWarning, DeprecationWarning))
        and "tensorboard" not in str(w.filename)
    ], [str(w.message) for w in caught]
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logged = EventAccumulator(str(log.log_dir)).Reload()
    assert [(event.step, event.value) for event in logged.Scalars("loss/batch")] == [
        (1, pytest.approx(2.3)), (2, pytest.approx(2.0))]
    assert [event.step for event in logged.Scalars("accuracy/test-slice")] == [0]


# Training


def test_a_network_that_does_not_learn_is_told_apart_from_one_that_does():
    assert training_trouble(1, 0.72, 92.8, 10, 0.02, 16) is None
    overshoot = training_trouble(1, 120_281.5, 17.0, 10, 900, 16)  # lucky in accuracy
    assert "does no better than guessing" in overshoot and "try 0.02 or lower" in overshoot
    tiny = training_trouble(1, 2.30, 9.8, 10, 1e-9, 469)  # in range, and still no good
    assert "a learning rate of 1e-09 makes each step too small" in tiny and "469" not in tiny
    barely = training_trouble(1, 2.38, 7.4, 10, 0.02, 1)
    assert "only 1 step an epoch" in barely
    assert "diverged" in training_trouble(2, float("nan"), 9.8, 10, 50, 16)


# Checkpoints


def save_example(path, dataset="mnist", mean=0.13, std=0.31):
    info = DATASETS[dataset]
    assert tools.save_network(path, DigitNet(8), {"channels": 8}, info.class_names, mean, std)


def test_a_checkpoint_carries_what_it_takes_to_use_it(tmp_path):
    path = tools.network_path(tmp_path, "fashion")
    save_example(path, "fashion", mean=0.29, std=0.35)
    model, saved = tools.load_checkpoint(path, DigitNet, torch.device("cpu"))
    assert path.name == "fashion_cnn.pt" and tools.network_path(tmp_path, "mnist") != path
    assert model.features[0].out_channels == 8 and not model.training
    assert (saved["arguments"], saved["mean"], saved["std"]) == ({"channels": 8}, 0.29, 0.35)
    assert saved["class_names"][9] == "Ankle boot"


def test_weights_alone_from_an_older_lesson_are_refused_plainly(tmp_path):
    path = tmp_path / "mnist_cnn.pt"
    torch.save(DigitNet().state_dict(), path)
    with pytest.raises(tools.CheckpointError, match="holds no network saved by this project"):
        tools.load_checkpoint(path, DigitNet, torch.device("cpu"))


def test_a_training_state_given_as_a_network_is_named_as_such(tmp_path):
    with training_run(tmp_path, 2000, epochs=1) as run:
        run.end_epoch(1, [0.3] * 16, 95.0)
    with pytest.raises(tools.CheckpointError, match="is a training state, which --resume goes "
                                                    "on from, not a saved network"):
        tools.load_checkpoint(tmp_path / "mnist_training.pt", DigitNet, torch.device("cpu"))


def test_photos_written_as_one_text_with_commas_are_told_to_be_a_list():
    with pytest.raises(SettingsError, match=re.escape(
            "for several photos, write a list, photos = ['a.jpg', 'b.jpg']")):
        tools.read_settings({**lesson_parameters(HANDWRITING_NOTEBOOK), "photos": "a.jpg, b.jpg"},
                            [], {}, "handwriting")


def test_an_heic_photo_is_named_before_any_training(tmp_path):
    heic = tmp_path / "IMG_0042.HEIC"
    heic.write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(200))
    with pytest.raises(SettingsError, match="it is an HEIC photo .* Save it as a JPEG"):
        tools.read_settings({**lesson_parameters(HANDWRITING_NOTEBOOK), "photos": [str(heic)]},
                            [], {}, "handwriting")


def test_a_checkpoint_of_another_network_is_refused_plainly(tmp_path):
    path = tmp_path / "other.pt"
    torch.save(
        {
            "weights": nn.Linear(3, 2).state_dict(),
            "arguments": {"channels": 16},
            "class_names": [str(digit) for digit in range(10)],
            "mean": 0.1,
            "std": 0.3,
        },
        path,
    )
    with pytest.raises(tools.CheckpointError,
                       match="different network, which do not fit DigitNet") as refused:
        tools.load_checkpoint(path, DigitNet, torch.device("cpu"))
    assert str(refused.value).endswith("Run the lesson again to save a matching one.")  # whole


@pytest.mark.parametrize("field, value, phrase", [
    ("arguments", {"channels": "16"}, "{'channels': '16'} that DigitNet does not take"),
    # told from the shapes, before 2 TB of weights are taken
    ("arguments", {"channels": 100_000}, re.escape("where DigitNet's is (10, 3200000)")),
    ("arguments", {"width": 8}, "that DigitNet does not take"),
    ("arguments", [8], "where it must be the network class's arguments by name"),
    ("mean", "0.1307", "its mean is '0.1307', where it must be a number"),
    ("std", 0.0, "numbers above 0"),
    ("std", [0.3, -1.0], "numbers above 0"),
    ("class_names", None, "it has no class_names"),
    ("class_names", ["7"], "a list of two or more class names"),
])
def test_each_field_of_a_checkpoint_is_checked_before_use(tmp_path, field, value, phrase):
    path = tmp_path / "mnist_cnn.pt"
    save_example(path)
    checkpoint = torch.load(path, weights_only=True)
    if value is None:
        del checkpoint[field]
    else:
        checkpoint[field] = value
    torch.save(checkpoint, path)
    with pytest.raises(tools.CheckpointError, match=phrase):
        tools.load_checkpoint(path, DigitNet, torch.device("cpu"))


def test_a_truncated_or_missing_checkpoint_is_refused_plainly(tmp_path):
    whole, cut = tmp_path / "whole.pt", tmp_path / "cut.pt"
    save_example(whole)
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(
        tools.CheckpointError, match="damaged, incomplete, or not a PyTorch checkpoint"
    ):
        tools.load_checkpoint(cut, DigitNet, torch.device("cpu"))
    with pytest.raises(tools.CheckpointError, match="There is no checkpoint"):
        tools.load_checkpoint(tmp_path / "missing.pt", DigitNet, torch.device("cpu"))


# The saved cells


def test_the_saved_module_holds_the_lessons_save_cells_as_they_stand():
    export = hook("export")
    assert export.saved_source() == export.SAVED_MODULE.read_text(), (
        "the #@save cells changed: run python .hooks/export.py"
    )


# Photos

def seven():
    """A held-out sample 7 as a phone would photograph it: dark ink on light paper, 8-bit grey."""
    digit = datasets.MNIST(tools.SAMPLE_DIR, train=False).data[0]
    return photo_of(digit, seed=0).convert("L")


def prepared(photo_or_path):
    digits, _ = tools.prepare_photos([photo_or_path], prepare_digit)
    return digits[0]


def test_transparent_ink_drawn_on_black_is_read_as_ink_on_paper(tmp_path):
    ink = np.asarray(seven()) < 128
    rgba = np.zeros((*ink.shape, 4), dtype=np.uint8)  # transparent black, as drawing apps save
    rgba[ink] = (20, 20, 20, 255)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "drawn.png")
    Image.fromarray(np.where(ink, 20, 255).astype(np.uint8), "L").save(tmp_path / "flat.png")
    assert torch.allclose(prepared(tmp_path / "drawn.png"), prepared(tmp_path / "flat.png"))


def screenshot_of_a_window(photo, margin=24):
    """The photo in a window, as macOS saves a window's screenshot: a grey title bar and frame,
    and around them a transparent margin with a soft shadow."""
    window = ImageOps.expand(photo.convert("RGB"), border=1, fill=(200, 200, 200))
    window = ImageOps.expand(window, border=(0, 22, 0, 0), fill=(236, 236, 236))
    width, height = window.size
    shot = np.zeros((height + 2 * margin, width + 2 * margin, 4), dtype=np.uint8)
    for ring in range(margin):  # the shadow: darker and more opaque towards the window
        shot[ring:-ring or None, ring:-ring or None, 3] = 3 * ring
    shot[margin:-margin, margin:-margin, :3] = np.asarray(window)
    shot[margin:-margin, margin:-margin, 3] = 255
    return Image.fromarray(shot, "RGBA")


def test_a_screenshot_with_a_transparent_margin_is_read_as_its_window(tmp_path):
    screenshot_of_a_window(seven()).save(tmp_path / "screenshot.png")
    seven().save(tmp_path / "photo.png")
    # The window's own paper fills the margin: the digit is prepared as from the photo, not
    # squeezed into a frame that reads as a 0.
    assert (prepared(tmp_path / "screenshot.png") - prepared(tmp_path / "photo.png")).abs() \
        .mean() < 0.03


@pytest.mark.parametrize("mode, scale", [("I;16", 257), ("F", 1 / 255)])
def test_16_bit_and_floating_point_grey_are_scaled_not_clipped(tmp_path, mode, scale):
    grey = np.asarray(seven(), dtype=np.float64)
    deep = Image.fromarray((grey * scale).astype(np.uint16 if mode == "I;16" else np.float32))
    path = tmp_path / ("deep.png" if mode == "I;16" else "deep.tif")
    deep.save(path)
    assert Image.open(path).mode.startswith("I" if mode == "I;16" else "F")
    seven().save(tmp_path / "plain.png")
    # The same digit, give or take a pixel of the photo's where the pen is made MNIST's width.
    assert (prepared(path) - prepared(tmp_path / "plain.png")).abs().mean() < 0.03


def test_a_jpeg_is_decoded_reduced_and_a_decompression_bomb_is_refused(tmp_path, monkeypatch,
                                                                         capsys):
    seven().resize((4000, 4800)).save(tmp_path / "big.jpg")
    seven().resize((4000, 4800)).save(tmp_path / "big.png")
    # As if each were a 40,000 × 48,000 photo, beyond what Pillow decodes.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1_000_000)
    photo = open_photo(tmp_path / "big.jpg")  # decoded at a quarter of each side
    assert photo.width * photo.height <= MOST_PIXELS
    assert prepared(tmp_path / "big.jpg").shape == (28, 28)
    with pytest.raises(SystemExit):
        prepared(tmp_path / "big.png")
    assert "big.png: it is 4,000 × 4,800 pixels, more than the 2,000,000 that can be decoded " \
           "safely" in capsys.readouterr().err
    assert Image.MAX_IMAGE_PIXELS == 1_000_000


def test_a_long_narrow_photo_keeps_its_narrow_side():
    assert fitting((12, 5000)) == (12, 5000)
    assert fitting((4000, 3000)) == (1155, 866)
    assert fitting((20, 100_000)) == (20, 100_000)  # 2 million pixels, and a side of 20
    assert fitting((100, 100_000)) == (32, 31623)


def stroke_photo(mode):
    """One clear vertical stroke, a 1, on a photo 12 pixels wide and 5,000 tall."""
    ink = np.zeros((5000, 12), dtype=bool)
    ink[300:4700, 4:8] = True
    if mode == "white on transparent":
        rgba = np.zeros((5000, 12, 4), dtype=np.uint8)
        rgba[ink] = (255, 255, 255, 255)
        return Image.fromarray(rgba, "RGBA")
    grey = np.where(ink, 0.05, 0.9).astype(np.float32)
    if mode == "float with NaN":
        grey[0, 0] = np.nan
    return Image.fromarray(grey if mode == "float with NaN" else (grey * 255).astype(np.uint8))


@pytest.mark.parametrize("mode", ["grey", "white on transparent", "float with NaN"])
def test_ink_in_the_alpha_a_narrow_photo_and_a_nan_pixel_are_read_not_blank(tmp_path, mode):
    path = tmp_path / ("one.tif" if mode == "float with NaN" else "one.png")
    stroke_photo(mode).save(path)
    digit = prepared(path)
    assert digit.sum() > 20  # ink, not "it looks blank"
    columns = digit.sum(dim=0).nonzero().flatten()
    assert columns.max() - columns.min() <= 8  # a tall, narrow stroke: a 1


@pytest.mark.parametrize("make, phrase", [
    (lambda path: path.mkdir(), "it is a folder, not a photo"),
    (lambda path: os.mkfifo(path), "not a regular file"),  # opening it would wait for ever
    (lambda path: Image.new("L", (3, 3), 255).save(path, "PNG"), "only 3 × 3 pixels"),
    (lambda path: path.write_text("not a picture"), "not an image that Pillow can read"),
    (lambda path: None, "there is no such file"),
])
def test_a_photo_that_cannot_be_read_is_named_in_one_line(tmp_path, capsys, make, phrase):
    path = tmp_path / "photo.jpg"
    make(path)
    with pytest.raises(SystemExit):
        tools.prepare_photos([path], prepare_digit)
    message = capsys.readouterr().err.strip()
    assert len(message.splitlines()) == 1 and phrase in message and "photo.jpg" in message


def test_a_photo_cut_short_by_an_interrupted_copy_is_named(tmp_path, capsys):
    seven().save(tmp_path / "whole.jpg")
    whole = (tmp_path / "whole.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(SystemExit):
        tools.prepare_photos([tmp_path / "cut.jpg"], prepare_digit)
    assert "cut.jpg: it is damaged or cut short" in capsys.readouterr().err


def test_among_several_photos_a_bad_one_is_named_and_the_others_are_read(tmp_path, capsys):
    seven().save(tmp_path / "a.png")
    Image.new("L", (200, 200), 255).save(tmp_path / "blank.png")
    seven().save(tmp_path / "b.png")
    digits, paths_read = tools.prepare_photos(
        [tmp_path / "a.png", tmp_path / "blank.png", tmp_path / "b.png"], prepare_digit
    )
    assert digits.shape == (2, 28, 28) and [path.name for path in paths_read] == ["a.png", "b.png"]
    printed = capsys.readouterr().out
    assert "Skipped" in printed and "blank.png: it looks blank" in printed


@pytest.mark.parametrize("mode", ["1", "P", "RGB", "CMYK", "YCbCr", "HSV", "LAB", "I", "F", "LA",
                                  "RGBA", "PA"])
def test_every_mode_pillow_opens_is_read_as_the_same_digit(mode):
    grey = prepare_digit(flattened(seven()))
    # A black-and-white scan is thresholded; dithering a photo of uneven paper would add noise.
    image = seven().point(lambda v: 255 * (v > 128), "1") if mode == "1" else seven().convert(mode)
    digit = prepare_digit(flattened(image))
    assert torch.corrcoef(torch.stack([grey.flatten(), digit.flatten()]))[0, 1] > 0.9



def test_what_a_killed_run_left_half_written_is_removed_by_the_next_save(tmp_path):
    gone = subprocess.Popen(["true"])
    gone.wait(timeout=30)
    left = tmp_path / f".f.{gone.pid}.partial"  # a run killed while it wrote f
    left.write_bytes(b"half")
    writing = tmp_path / f".f.{os.getppid()}.partial"  # a run still alive, writing f now
    writing.write_bytes(b"in progress")
    assert save_file(tmp_path / "f", lambda target: target.write(b"whole"))
    assert not left.exists() and writing.exists()
    assert (tmp_path / "f").read_bytes() == b"whole"


def labels_file(path, count, even):
    """A label file of `count` labels of ten classes, as many of each (as Fashion-MNIST's are) or
    not (as MNIST's digits are)."""
    labels = [index % 10 for index in range(count)]
    if not even:
        labels[:50] = [1] * 50
    path.write_bytes((2049).to_bytes(4, "big") + count.to_bytes(4, "big") + bytes(labels))


@pytest.mark.parametrize("folder, even, other", [("FashionMNIST", False, "MNIST's"),
                                                 ("MNIST", True, "Fashion-MNIST's")])
def test_the_files_of_the_other_dataset_are_recognised(tmp_path, folder, even, other):
    raw_dir = tmp_path / folder / "raw"
    write_mnist_like(raw_dir)
    labels_file(raw_dir / "train-labels-idx1-ubyte", 60_000, even)
    labels_file(raw_dir / "t10k-labels-idx1-ubyte", 10_000, even)
    problems = data_problems(raw_dir)
    assert len(problems) == 2 and all(f"holds {other} labels, not {folder}'s" in problem
                                      for problem in problems)
    labels_file(raw_dir / "t10k-labels-idx1-ubyte", 10_000, not even)
    labels_file(raw_dir / "train-labels-idx1-ubyte", 60_000, not even)
    assert data_problems(raw_dir) == []


def test_an_option_given_an_empty_value_leaves_the_cells_value_and_says_so():
    cell = {**CELL, "epochs": 3}
    settings = tools.read_settings(cell, ["--epochs", "", "--lr", " "], {})
    assert (settings.epochs, settings.lr) == (3, cell["lr"])
    assert "epochs" not in settings.origins and "lr" not in settings.origins  # nor claimed
    from_variable = tools.read_settings(cell, ["--epochs", ""], {"MNISTLAB_EPOCHS": "5"})
    assert (from_variable.epochs, from_variable.origins["epochs"]) == (5, "MNISTLAB_EPOCHS")
