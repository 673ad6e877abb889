"""Other hands, other pens: training on digits redrawn with other pens, slants and sizes; photos
given MNIST's pen; and a reading that says when the network is unsure."""

import matplotlib
import pytest
import torch
import torch.nn.functional as F
from conftest import network_trained_on_sample
from fake_data import held_out_digits
from run_outputs import colours_drawn

import mnistlab_saved as saved
import mnistlab_tools as tools
from benchmarks.photo_like import photos_read_back, thicker, thinner

matplotlib.use("Agg")


def test_a_thicker_pen_is_a_max_pool_that_keeps_the_size():
    images = torch.rand(6, 1, 28, 28)
    for size in (3, 5):
        expected = F.max_pool2d(images, size, stride=1, padding=size // 2)
        assert torch.equal(saved.brightest_nearby(images, size), expected)
    darkest_of_four = -F.max_pool2d(F.pad(-images, (0, 1, 0, 1), value=-torch.inf), 2, stride=1)
    assert torch.equal(-saved.brightest_nearby(-images, 2), darkest_of_four)


def test_other_pens_keep_each_image_in_its_place():
    digits = (held_out_digits(count_per_class=1)[0].float() / 255)[:8, None]
    redrawn = saved.other_pens(digits)
    assert redrawn.shape == digits.shape
    ink = (redrawn > 0.5).sum(dim=(1, 2, 3))
    before = (digits > 0.5).sum(dim=(1, 2, 3))
    # Quarters of two: thinner, as they are, one and two pixels thicker.
    assert (ink[:2] < before[:2]).all() and torch.equal(redrawn[2:4], digits[2:4])
    assert (ink[4:6] > before[4:6]).all() and (ink[6:] > ink[4:6].min()).all()


def test_another_hand_with_no_slant_scale_shift_or_bend_leaves_the_images_as_they_are():
    images = torch.rand(5, 1, 28, 28)
    same = saved.in_another_hand(images, slant=0, scales=(1, 1), shift=0, bend=0)
    assert torch.allclose(same, images, atol=1e-5)
    moved = saved.in_another_hand(images)
    assert moved.shape == images.shape and not torch.allclose(moved, images)


@pytest.mark.parametrize("batch_size", [1, 2, 3, 5])
def test_training_with_other_pens_works_for_any_batch_size(batch_size):
    images, labels = torch.randn(7, 1, 28, 28), torch.randint(0, 10, (7,))
    model = saved.fresh_network(4, 0, torch.device("cpu"))
    optimizer, scheduler = saved.one_cycle_adam(model, 0.02, 10)
    batches = saved.with_other_pens(saved.shuffled_batches(images, labels, batch_size))
    losses = saved.train_one_epoch(model, optimizer, scheduler, batches)
    assert len(losses) == -(-7 // batch_size) and all(loss == loss for loss in losses)


def test_with_other_pens_redraws_the_first_half_of_each_batch_and_keeps_its_labels():
    images, labels = torch.rand(8, 1, 28, 28), torch.arange(8)
    (redrawn, kept_labels), = list(saved.with_other_pens([(images, labels)]))
    assert torch.equal(kept_labels, labels) and redrawn.shape == images.shape
    assert torch.equal(redrawn[4:], images[4:]) and not torch.allclose(redrawn[:4], images[:4])


def test_a_photo_is_given_strokes_nearer_mnists():
    """Photos written with a thin pen come out with wider strokes than the pen drew, and photos
    written with a broad pen with narrower ones (as stroke_width measures them, in MNIST's
    pixels: its thin strokes are 1.5 wide, its broad ones 3)."""
    digits = held_out_digits(count_per_class=2)[0].float() / 255

    def mean_width(images):
        return sum(saved.stroke_width(image) for image in images) / len(images)

    thin, broad = thinner(digits), thicker(digits, 2)
    assert mean_width(thin) < 1.5 < 1.6 < mean_width(photos_read_back(saved.prepare_digit, thin))
    assert mean_width(photos_read_back(saved.prepare_digit, broad)) < mean_width(broad) - 1


# Measured on the committed sample (DigitNet trained 5 epochs on its 2,000 digits, seeds 0, 1 and
# 2), the share read right of its 500 test digits with strokes two pixels thicker (5 × 5 max):
# 87.2, 83.0 and 85.8 % when trained with other pens, 69.0, 63.0 and 68.6 % without; of the 100
# held-out digits below as photos written with a thin pen (2 × 2 min): 91, 93 and 94 with other
# pens, 82, 81 and 84 without. The bars sit between the two: chance cannot pass them.
THICK_BAR, THIN_PHOTO_BAR = 78, 87


def test_a_network_trained_with_other_pens_reads_a_broad_and_a_thin_pen(sample_network):
    model, mean, std = sample_network
    without_pens, _, _ = network_trained_on_sample(augment=False)
    test = held_out_digits(count_per_class=50)
    digits, labels = test[0].float() / 255, test[1]
    broad = thicker(digits, 2)
    read = {name: saved.accuracy(saved.read_digits(network, broad, mean, std).argmax(1), labels)
            for name, network in [("with", model), ("without", without_pens)]}
    assert read["with"] >= THICK_BAR > read["without"], read

    held_out, held_out_labels = held_out_digits()
    thin_photos = photos_read_back(saved.prepare_digit, thinner(held_out.float() / 255))
    right = saved.read_digits(model, thin_photos, mean, std).argmax(1) == held_out_labels
    assert int(right.sum()) >= THIN_PHOTO_BAR, f"{int(right.sum())} of 100 thin-pen photos"


def test_an_unsure_reading_names_the_two_likeliest_digits():
    sure = torch.tensor([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.985, 0.015, 0.0])
    unsure = torch.tensor([0.0, 0.0, 0.0, 0.05, 0.48, 0.0, 0.0, 0.06, 0.0, 0.41])
    assert tools.reading(sure) == "7 (98.5 %)"
    assert tools.reading(unsure) == "4 or 9 (48 %, 41 %)"
    digits = torch.zeros(2, 28, 28)
    # As the learner sees them, drawn: the best guess's bar red, a close second's orange.
    assert {"firebrick", "darkorange"} <= colours_drawn(
        tools.readings_figure(digits[:1], unsure[None], ["b.jpg"]))
    assert "darkorange" not in colours_drawn(tools.readings_figure(digits[:1], sure[None], ["a"]))
    grid = tools.readings_figure(torch.zeros(6, 28, 28), torch.stack([sure, unsure] * 3),
                                 [f"{i}.jpg" for i in range(6)])
    captions = [(text.get_text(), text.get_color()) for text in grid.axes[0].texts]
    assert captions[:2] == [("7 (99 %)", "black"), ("4 or 9?", "darkorange")]
