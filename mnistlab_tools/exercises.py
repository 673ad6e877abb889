"""The checks of lesson one's exercises ("Try it yourself"). Each takes the learner's answer and
what it is checked against, and prints one of three things: that the exercise is not tried yet
(the answer is still None), that the answer is right, with why, or a hint to try again. None of
them raises, so that a wrong answer never stops a run; they need only what the lesson imports.
"""

import math
import numbers

NOT_TRIED = "not tried yet. Replace None with your answer and run this cell again."


def told(number, verdict):
    print(f"Exercise {number}: {verdict}")


def right(number, why):
    told(number, f"right. {why}")


def hint(number, text):
    told(number, f"not yet. Hint: {text} Try again: edit the answer and run the cell.")


def weights_by_kind(network):
    """{kind of layer: its weights in the network}, such as {"Conv2d": 3400, …}."""
    counts = {}
    for layer in network.modules():
        own = sum(weight.numel() for weight in layer.parameters(recurse=False))
        if own:
            counts[type(layer).__name__] = counts.get(type(layer).__name__, 0) + own
    return counts


def check_weights(answer, network_class, channels=8):
    """Exercise 1: how many weights network_class(channels) has."""
    if answer is None:
        return told(1, NOT_TRIED)
    counts = weights_by_kind(network_class(channels))
    total = sum(counts.values())
    wider = sum(weights_by_kind(network_class(2 * channels)).values())
    if not isinstance(answer, numbers.Integral) or isinstance(answer, bool):
        return hint(1, f"give a whole number, such as 1234, not {answer!r}.")
    if answer == total:
        parts = ", ".join(f"{kind} {count:,}" for kind, count in counts.items())
        return right(1, f"{total:,} ({parts}). Halving the channels leaves {total / wider:.0%} "
                        f"of DigitNet(channels={2 * channels})'s {wider:,}: the second "
                        f"convolution's weights grow as the square of the channels.")
    mistakes = {
        wider: f"that is DigitNet(channels={2 * channels})'s count; count again with "
               f"channels={channels}.",
        total - counts.get("BatchNorm2d", 0): "batch normalisation learns weights too: a scale "
                                              "and an offset for each of its maps.",
        total - 10: "the linear layer has a bias for each of the ten digits.",
        total + 3 * channels: "the convolutions have no bias (bias=False): batch "
                              "normalisation's offset does that job.",
    }
    hint(1, mistakes.get(answer, f"count layer by layer. The first convolution has 1 × "
                                 f"{channels} × 25 weights; the linear layer reads "
                                 f"{2 * channels} maps of 4 × 4 numbers."))


def features_shape(features, side):
    """The shape `features` gives one image of side × side pixels, without its batch."""
    import torch  # loaded by the lesson already

    was_training = features.training
    with torch.inference_mode():
        shape = features.eval()(next(features.parameters()).new_zeros(1, 1, side, side)).shape
    features.train(was_training)
    return tuple(shape[1:])


def check_shape(answer, features, side=32):
    """Exercise 2: the shape `features` gives for one image of side × side pixels."""
    if answer is None:
        return told(2, NOT_TRIED)
    shape = features_shape(features, side)
    given = tuple(answer) if isinstance(answer, (tuple, list)) else ()
    if not all(whole(number) for number in given):
        return hint(2, f"give whole numbers, (maps, height, width), such as (16, 7, 7), not "
                       f"{short(answer)}.")
    if given[-3:] == shape and set(given[:-3]) <= {1}:  # (1, maps, height, width) will do too
        return right(2, f"{shape}: {side} → {side - 4} → {(side - 4) // 2} → "
                        f"{(side - 4) // 2 - 4} → {shape[1]} pixels a side, in {shape[0]} maps. "
                        f"The linear layer would read {math.prod(shape):,} numbers instead of "
                        f"512, so DigitNet would need another: its size depends on the image's.")
    if len(given) != 3:
        return hint(2, "give three numbers in brackets, (maps, height, width), such as "
                       "(16, 7, 7).")
    if given[0] != shape[0]:
        return hint(2, f"the number of maps does not depend on the image's size: it is what "
                       f"the second convolution makes, {shape[0]}.")
    hint(2, f"follow one side through the layers: {side} → {side - 4} after the first "
            f"convolution, then halved by pooling, and so on.")


def check_first_loss(answer, history, classes=10):
    """Exercise 3: the loss before training, that of guessing among `classes` equally."""
    if answer is None:
        return told(3, NOT_TRIED)
    if as_number(answer) is None:
        return hint(3, f"give a number, such as 1.5, not {short(answer)}.")
    answer = as_number(answer)
    guessing = math.log(classes)
    first = history["loss"][0] if history["loss"] else guessing
    if abs(answer - guessing) < 0.1 or abs(answer - first) < 0.05:
        return right(3, f"minus the logarithm of 1/{classes} is log {classes} = {guessing:.2f}, "
                        f"and your run's first batch had a loss of {first:.2f}. A loss above "
                        f"this means the network does worse than guessing; training that "
                        f"diverges shoots far above it.")
    if abs(answer - 1 / classes) < 0.01:
        return hint(3, f"1/{classes} is the probability; the loss is minus its logarithm.")
    if abs(answer + guessing) < 0.1:
        return hint(3, "a loss is never negative: it is minus the logarithm of a probability.")
    hint(3, f"each digit gets a probability of 1/{classes}; take minus its natural logarithm, "
            f"-math.log(1/{classes}).")


def check_most_frequent_mistake(answer, confusion):
    """Exercise 4: the (known, predicted) pair the confusion matrix (a pandas DataFrame, known
    classes down, predicted across) counts most often off its diagonal."""
    if answer is None:
        return told(4, NOT_TRIED)
    counts = {(str(row), str(column)): int(confusion.loc[row, column])
              for row in confusion.index for column in confusion.columns if row != column}
    pair = tuple(map(class_name, answer)) if isinstance(answer, (tuple, list)) else ()
    if max(counts.values(), default=0) == 0:
        return told(4, "your network misread none of the test images, so there is no most "
                       "frequent mistake to find: train a narrower network, or fewer steps, "
                       "and look again.")
    if pair in counts and counts[pair] == max(counts.values()):
        return right(4, f"{counts[pair]} test images known to be {pair[0]} were read as "
                        f"{pair[1]}. The gallery of misread images shows some of them: often "
                        f"they look much like the other class.")
    hint(4, mistake_hint(pair, counts, list(confusion.index)))


def class_name(value):
    """A class as the confusion matrix names it: 7, "7" and tensor(7) are all "7"."""
    return str(value.item() if hasattr(value, "item") else value)


def mistake_hint(pair, counts, classes):
    """What is wrong with naming `pair` as the most frequent of the mistakes counted."""
    most = max(counts.values())
    if len(pair) != 2:
        return 'give two class names in brackets, (known, predicted), such as ("7", "2").'
    if pair[0] == pair[1] and pair[0] in map(str, classes):
        return "the diagonal holds the right answers: look off it."
    if pair not in counts:
        return f"name two of the classes: {', '.join(map(str, classes))}."
    if counts[pair[::-1]] == most:
        return ("that is the same pair the other way round: rows are the known class, columns "
                "what the network read.")
    return (f"you named a cell that counts {counts[pair]}; look for the largest number off the "
            f"diagonal. It is {most}.")


# (predicted, known, the percentage right): the cases a learner's accuracy is tried on.
ACCURACY_CASES = (([1, 2, 3, 4], [1, 2, 0, 0], 50.0), ([7, 7, 7], [7, 7, 7], 100.0),
                  ([0, 1, 2, 3, 4], [4, 1, 0, 3, 2], 40.0))


def check_accuracy(my_accuracy):
    """Exercise 5: a function of (predicted, known), two tensors of class numbers, that gives the
    percentage of predictions that are right, as a Python number."""
    import torch

    for predicted, known, expected in ACCURACY_CASES:
        try:
            given = my_accuracy(torch.tensor(predicted), torch.tensor(known))
        except Exception as error:  # the learner's code: any mistake becomes a hint
            return hint(5, f"for predicted={predicted} and known={known} your function "
                           f"raised {type(error).__name__}: {error}.")
        if given is None:
            return told(5, "not tried yet. Write the function's body and run this cell again.")
        if isinstance(given, torch.Tensor):
            return hint(5, "it gives a tensor; .item() makes a one-number tensor a Python "
                           "number.")
        if as_number(given) is None:
            return hint(5, f"it gives {short(given)}; it should give a number from 0 to 100.")
        if not abs(as_number(given) - expected) <= 1e-6:  # NaN is never close
            return hint(5, accuracy_hint(predicted, known, expected, as_number(given)))
    right(5, "(predicted == known) is a tensor of True and False; .float() makes them 1 and 0, "
             "and their .mean() is the share that is right, times 100 a percentage. It is "
             "the lesson's own accuracy.")


def accuracy_hint(predicted, known, expected, given):
    cases = f"predicted={predicted} and known={known}"
    if not math.isfinite(given):
        return f"for {cases} it gives {given}, which is no percentage: check the division."
    if abs(given - expected / 100) < 1e-6:
        return f"for {cases} it gives {given:g}, a share: a percentage is 100 times that."
    if abs(given - expected * len(known) / 100) < 1e-6:
        return (f"for {cases} it gives {given:g}, how many are right: divide by how many "
                f"there are.")
    return f"for {cases} it gives {given!r}, where {expected:g} are right out of 100."


def whole(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def as_number(value):
    """The answer as a float, or None where it is no number, or too large to be one."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    try:
        return float(value)
    except OverflowError:  # 10**400
        return None


def short(answer):
    """An answer as the hint quotes it: its repr, cut to a line."""
    text = repr(answer)
    return text if len(text) <= 60 else text[:57] + "..."


def check_exercise(number, answer, *against):
    """Check the answer to exercise `number` of lesson one against what the lesson made: 1, the
    network class; 2, the network's features; 3, the run's history; 4, the confusion matrix; 5,
    nothing (the answer is the learner's function). Whatever the answer is, it prints a line
    and raises nothing."""
    checks = {1: check_weights, 2: check_shape, 3: check_first_loss,
              4: check_most_frequent_mistake, 5: check_accuracy}
    try:
        return checks[number](answer, *against)
    except Exception as error:  # an answer of a form no check foresaw: a hint, not a traceback
        hint(number, f"{short(answer)} could not be checked ({type(error).__name__}): give it "
                     f"in the form the comment beside it shows.")
