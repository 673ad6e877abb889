"""Lesson one's exercises check themselves: a right answer is told why, a wrong one gets its
hint, an untried one says so, and none of them ever stops a run."""

import math

import pandas as pd
import pytest
import torch

from mnistlab_tools.exercises import (check_accuracy, check_exercise, check_first_loss,
                                      check_most_frequent_mistake, check_shape, check_weights)
from mnistlab_saved import DigitNet, accuracy

# DigitNet(channels=8), counted by hand: 1 × 8 × 25 + 8 × 16 × 25 weights of the convolutions,
# 2 × (8 + 16) of batch normalisation, and 16 × 4 × 4 × 10 + 10 of the linear layer.
WEIGHTS_OF_8 = 200 + 3200 + 48 + 2570
DIGITS = [str(digit) for digit in range(10)]


def told(capsys, check, *arguments):
    check(*arguments)
    (line,) = capsys.readouterr().out.splitlines()
    return line


@pytest.fixture
def confusion():
    counts = pd.DataFrame(0, index=DIGITS, columns=DIGITS)
    for digit in range(10):
        counts.iloc[digit, digit] = 95
    counts.loc["4", "9"], counts.loc["9", "4"], counts.loc["7", "2"] = 11, 6, 8
    return counts


def checks(confusion):
    """Each exercise's check, with what the lesson gives it besides the answer."""
    return {1: lambda answer: check_weights(answer, DigitNet),
            2: lambda answer: check_shape(answer, DigitNet(16).features),
            3: lambda answer: check_first_loss(answer, {"loss": [2.31, 2.2]}),
            4: lambda answer: check_most_frequent_mistake(answer, confusion)}


def test_each_untried_exercise_says_so(capsys, confusion):
    for number, check in checks(confusion).items():
        assert told(capsys, check, None) == (f"Exercise {number}: not tried yet. Replace None "
                                             f"with your answer and run this cell again.")

    def my_accuracy(predicted, known):
        return None  # your code here

    assert told(capsys, check_accuracy, my_accuracy).startswith(
        "Exercise 5: not tried yet. Write the function's body")


@pytest.mark.parametrize("number, answer, why", [
    (1, WEIGHTS_OF_8, "6,018 (Conv2d 3,400, BatchNorm2d 48, Linear 2,570)"),
    (2, (32, 5, 5), "(32, 5, 5): 32 → 28 → 14 → 10 → 5 pixels a side"),
    (2, [1, 32, 5, 5], "(32, 5, 5)"),
    (3, 2.3, "log 10 = 2.30"),
    (3, math.log(10), "your run's first batch had a loss of 2.31"),
    (4, ("4", "9"), "11 test images known to be 4 were read as 9"),
    (4, (4, 9), "11 test images"),
])
def test_a_right_answer_is_told_why(capsys, confusion, number, answer, why):
    line = told(capsys, checks(confusion)[number], answer)
    assert line.startswith(f"Exercise {number}: right. ") and why in line, line


@pytest.mark.parametrize("number, answer, hint", [
    (1, 18_426, "that is DigitNet(channels=16)'s count"),
    (1, WEIGHTS_OF_8 - 48, "batch normalisation learns weights too"),
    (1, WEIGHTS_OF_8 - 10, "a bias for each of the ten digits"),
    (1, WEIGHTS_OF_8 + 24, "the convolutions have no bias"),
    (1, 5000, "count layer by layer"),
    (1, "6018", "give a whole number"),
    (2, (32, 4, 4), "follow one side through the layers: 32 → 28"),
    (2, (16, 5, 5), "the number of maps does not depend on the image's size"),
    (2, 32, "give three numbers in brackets"),
    (3, 0.1, "1/10 is the probability; the loss is minus its logarithm"),
    (3, -2.3, "a loss is never negative"),
    (3, 10, "-math.log(1/10)"),
    (3, "2.3", "give a number"),
    (4, ("9", "4"), "the same pair the other way round"),
    (4, ("7", "2"), "a cell that counts 8; look for the largest number off the diagonal. It is 11"),
    (4, ("4", "4"), "the diagonal holds the right answers"),
    (4, ("4", "cat"), "name two of the classes"),
    (4, "4 and 9", "give two class names in brackets"),
])
def test_a_wrong_answer_gets_its_hint(capsys, confusion, number, answer, hint):
    line = told(capsys, checks(confusion)[number], answer)
    assert line.startswith(f"Exercise {number}: not yet. Hint: ") and hint in line, line
    assert line.endswith("Try again: edit the answer and run the cell.")


def share_right(predicted, known):
    return (predicted == known).float().mean().item()


def count_right(predicted, known):
    return (predicted == known).sum().item()


def as_tensor(predicted, known):
    return (predicted == known).float().mean() * 100


def raises(predicted, known):
    return predicted.mean() * 100  # a tensor of whole numbers has no mean


@pytest.mark.parametrize("function, hint", [
    (share_right, "it gives 0.5, a share: a percentage is 100 times that"),
    (count_right, "it gives 2, how many are right: divide by how many there are"),
    (as_tensor, "it gives a tensor; .item() makes"),
    (raises, "your function raised RuntimeError"),
    (lambda predicted, known: "50 %", "it gives '50 %'; it should give a number"),
])
def test_a_wrong_accuracy_gets_its_hint(capsys, function, hint):
    line = told(capsys, check_accuracy, function)
    assert line.startswith("Exercise 5: not yet. Hint: ") and hint in line, line


def test_the_lessons_own_accuracy_is_right(capsys):
    assert told(capsys, check_accuracy, accuracy).startswith("Exercise 5: right. ")


def test_the_check_of_the_shape_leaves_the_network_as_it_was():
    features = DigitNet(16).features.train()
    before = [tensor.clone() for tensor in features.state_dict().values()]
    check_shape((32, 5, 5), features)
    assert features.training
    assert all(torch.equal(a, b) for a, b in zip(before, features.state_dict().values(),
                                                  strict=True))


# Answers of any form: one line each, never a traceback (the lesson calls check_exercise).

def against(number, confusion):
    """What the lesson gives check_exercise besides the answer."""
    return {1: (DigitNet,), 2: (DigitNet(16).features,), 3: ({"loss": [2.31, 2.2]},),
            4: (confusion,), 5: ()}[number]


@pytest.mark.parametrize("number, answer, hint", [
    (1, 10**400, "count layer by layer"),
    (1, "6018", "give a whole number"),
    (2, [[1], 32, 5, 5], "give whole numbers, (maps, height, width)"),
    (2, (32.0, 5, 5), "give whole numbers"),
    (2, {"maps": 32}, "give three numbers in brackets"),
    (3, 10**400, "give a number, such as 1.5, not 1000"),
    (3, float("nan"), "each digit gets a probability of 1/10"),
    (3, object(), "give a number, such as 1.5"),
    (4, (4, None), "name two of the classes"),
    (4, {"4": "9"}, "give two class names in brackets"),
    (5, lambda predicted, known: float("nan"), "it gives nan, which is no percentage"),
    (5, lambda predicted, known: 10**400, "it gives 1000"),
    (5, lambda predicted, known: float("inf"), "it gives inf, which is no percentage"),
    (5, "accuracy", "your function raised TypeError"),
])
def test_no_answer_raises_and_a_wrong_one_is_never_right(capsys, confusion, number, answer,
                                                         hint):
    line = told(capsys, check_exercise, number, answer, *against(number, confusion))
    assert line.startswith(f"Exercise {number}: not yet. Hint: ") and hint in line, line


def test_a_mistake_named_with_tensors_is_the_confusion_matrixs(capsys, confusion):
    line = told(capsys, check_exercise, 4, (torch.tensor(4), torch.tensor(9)), confusion)
    assert line.startswith("Exercise 4: right. 11 test images known to be 4 were read as 9")


def test_a_network_without_mistakes_has_no_most_frequent_one(capsys):
    perfect = pd.DataFrame(0, index=DIGITS, columns=DIGITS)
    for digit in range(10):
        perfect.iloc[digit, digit] = 100
    line = told(capsys, check_exercise, 4, ("7", "2"), perfect)
    assert "misread none of the test images" in line and "right" not in line


def test_a_fashion_mistake_is_told_without_digits(capsys):
    names = ["Shirt", "T-shirt/top", "Coat"]
    counts = pd.DataFrame([[80, 15, 5], [9, 90, 1], [7, 2, 91]], index=names, columns=names)
    line = told(capsys, check_exercise, 4, ("Shirt", "T-shirt/top"), counts)
    assert line.startswith("Exercise 4: right.") and "digit" not in line and "written" not in line
