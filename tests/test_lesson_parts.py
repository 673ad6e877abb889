"""The lesson's own pieces, on hand-made cases: counting, finding mistakes, the sample, the settings."""
from pathlib import Path

import pytest
import torch
from sklearn.metrics import confusion_matrix
from torchvision import datasets

from conftest import REPO


def test_confusion_counts_match_scikit_learn(lesson):
    known = torch.tensor([0, 1, 2, 2, 3, 9, 9, 9, 4, 4, 7])
    predicted = torch.tensor([0, 1, 2, 3, 3, 9, 4, 9, 9, 4, 1])
    table = lesson.confusion_counts(known, predicted)
    assert (table.to_numpy() == confusion_matrix(known, predicted, labels=range(10))).all()
    assert table.index.name == "Known digit" and table.columns.name == "Predicted digit"
    assert table.loc["9", "4"] == 1 and table.loc["4", "9"] == 1 and table.loc["9", "9"] == 2  # by class name


def test_misclassified_indexes_are_the_wrong_predictions(lesson):
    known = torch.tensor([3, 1, 4, 1, 5, 9, 2, 6])
    predicted = torch.tensor([3, 7, 4, 1, 6, 9, 2, 0])
    assert lesson.misclassified_indexes(known, predicted).tolist() == [1, 4, 7]
    assert lesson.misclassified_indexes(known, known).tolist() == []


@pytest.mark.parametrize("train, size", [(True, 2000), (False, 500)])
def test_the_committed_sample_is_balanced_real_mnist(lesson, train, size):
    split = datasets.MNIST(lesson.SAMPLE_DIR, train=train, download=False)
    assert split.data.shape == (size, 28, 28) and split.data.dtype == torch.uint8
    assert split.targets.dtype == torch.int64
    assert split.targets.bincount().tolist() == [size // 10] * 10
    assert 0.10 < split.data.float().div(255).mean() < 0.16  # ink on a black background, like MNIST


def test_the_sample_is_small_and_documented(lesson):
    files = list((lesson.SAMPLE_DIR / "MNIST" / "raw").iterdir())
    assert sum(f.stat().st_size for f in files) < 2_000_000
    assert "t10k-images-idx3-ubyte" in (lesson.SAMPLE_DIR / "README.md").read_text()


def test_defaults_apply_when_nothing_is_set(lesson):
    settings = lesson.read_settings([], {})
    assert (settings.epochs, settings.batch_size, settings.device, settings.sample) == (1, 128, "auto", False)
    assert settings.data_dir == REPO / "data" and settings.out_dir == REPO / "outputs"


def test_the_environment_overrides_the_defaults(lesson):
    settings = lesson.read_settings([], {"MNISTLAB_EPOCHS": "2", "MNISTLAB_LR": "0.003", "MNISTLAB_SAMPLE": "1",
                                         "MNISTLAB_DEVICE": "cpu", "MNISTLAB_DATA_DIR": "/srv/mnist"})
    assert (settings.epochs, settings.lr, settings.sample, settings.device) == (2, 0.003, True, "cpu")
    assert settings.data_dir == Path("/srv/mnist")


def test_options_override_the_environment(lesson):
    settings = lesson.read_settings(["--epochs", "3", "--no-sample", "--batch-size", "64"],
                                    {"MNISTLAB_EPOCHS": "2", "MNISTLAB_SAMPLE": "yes", "MNISTLAB_BATCH_SIZE": "32"})
    assert (settings.epochs, settings.sample, settings.batch_size) == (3, False, 64)


@pytest.mark.parametrize("arguments, environment, named", [
    (["--epochs", "-1"], {}, "--epochs"),
    (["--epochs", "0"], {}, "--epochs"),
    (["--lr", "fast"], {}, "--lr"),
    (["--device", "gpu"], {}, "--device"),
    (["--seed", "1.5"], {}, "--seed"),
    ([], {"MNISTLAB_EPOCHS": "abc"}, "MNISTLAB_EPOCHS"),
    ([], {"MNISTLAB_SAMPLE": "maybe"}, "MNISTLAB_SAMPLE"),
    ([], {"MNISTLAB_LR": "-0.1"}, "MNISTLAB_LR"),
    (["--speed", "2"], {}, "--speed"),
])
def test_a_bad_value_is_named(lesson, arguments, environment, named):
    with pytest.raises(lesson.SettingsError, match=named):
        lesson.read_settings(arguments, environment)
