# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson two: reading your own handwriting
#
# Lesson one's network reads 99 % of MNIST's test digits right. Write a
# digit on paper, photograph it, and ask that network: it often fails. Not
# because the network is bad, but because a photo is not an MNIST digit,
# and because the network learned MNIST's pen along with its digits. This
# lesson mends both: it trains a network on digits redrawn with other pens,
# slants and sizes, then prepares your photos the way MNIST's digits were
# made, and reads them. It takes about ten minutes to read, and half a
# minute to a minute to train on two CPU cores.
#
# It runs three ways, as lesson one does: cell by cell in VS Code, **Run
# All** in `handwriting.ipynb`, or `.venv/bin/python handwriting.py` in a terminal. It
# uses lesson one's network and training functions, from `mnistlab_saved.py`.

# %% [markdown]
# ## Parameters
#
# As in lesson one: edit a value and run the cells again, or override it
# with an option (`.venv/bin/python handwriting.py --no-augment`; `--help` lists
# them), a variable (`MNISTLAB_PHOTOS=my_7.jpg`) or papermill's `-p`.

# %% tags=["parameters"]
epochs = 5                # passes over the training data; other hands take longer to learn
batch_size = 128          # images per training step
lr = 0.02                 # peak learning rate of the one-cycle schedule
seed = 0                  # the same seed gives the same result on the same machine
channels = 16             # feature maps of the first convolution; the second has twice as many
augment = True            # train on digits redrawn with other pens, slants, sizes and bends
device_name = "auto"      # where to train: "auto", "cpu", "cuda", "cuda:1" (a GPU by index), "mps"
threads = 0               # CPU threads to train with; 0: every core this job may use
data_dir = "data"         # MNIST goes in MNIST/raw/ in this folder, downloaded if missing
mirror = ""               # where to download MNIST from, if not the official address
sample = False            # True: train and test on the small sample in sample/, in seconds
out_dir = "outputs"       # where the figures and the trained network are saved
photos = ["sample/photo_of_a_7.jpg"]  # photos of handwritten digits to read
resume = False            # True: go on with the run cut short in out_dir, after its last epoch

# %% [markdown]
# The package checks the values, and the run owns `out_dir`, as in lesson one.

# %% tags=["setup"]
import mnistlab_tools as tools

tools.set_up_terminal()  # in a terminal: Ctrl-C ends in one line, and figures go to files
settings = tools.settings_or_stop(globals(), lesson="handwriting")
print(settings)
run = tools.Run(settings)  # this run and its folder, out_dir

# %% [markdown]
# ## Why a photo is not an MNIST digit
#
# MNIST's digits were scanned from forms, and each was made the same way:
# light strokes on black, scaled to fit a 20 × 20 box, and centred in a
# 28 × 28 frame. Most of its writers used much the same pen. A photo is dark
# ink on grey paper, thousands of pixels across, unevenly lit, with the
# digit anywhere in it, in whatever pen was at hand. So two things are
# needed: the photo must be made into an MNIST digit, and the network must
# not care about the pen. We start with the second, on MNIST itself.

# %% [markdown]
# ## The data and the device
#
# The same MNIST files as lesson one's, found or downloaded the same way.

# %%
data = tools.find_data(settings)

# %% [markdown]
# Lesson one's network and training functions come from `mnistlab_saved.py`,
# where its cells marked `#@save` are copied.

# %%
import pandas as pd
import torch
import torch.nn.functional as F
from PIL import ImageOps
from torchvision.transforms.functional import pil_to_tensor

from mnistlab_saved import (DigitNet, accuracy, fresh_network, one_cycle_adam,
                            pixel_mean_and_std, predict, shuffled_batches, steps_in_an_epoch,
                            to_tensors, train_one_epoch)

# %% [markdown]
# The digits as tensors on the device, scaled as in lesson one.

# %%
train_set = data.torchvision_class(data.folder, train=True)
test_set = data.torchvision_class(data.folder, train=False)
device, why = tools.pick_device(settings.device_name, settings.threads)
print(tools.describe_device(device, why))
mean, std = pixel_mean_and_std(train_set)
train_images, train_labels = to_tensors(train_set, mean, std, device)
test_images, test_labels = to_tensors(test_set, mean, std, device)
print(f"{len(train_images):,} training digits and {len(test_images):,} test digits of {data}")

# %% [markdown]
# ## Other hands, other pens
#
# A network that only ever sees MNIST's digits learns its pen too: strokes
# about two pixels wide become part of what an 8 looks like. Write with a
# marker and the strokes come out two or three times as wide, the loops of
# an 8 fill in, and the network reads it as a 1 or a 3. On MNIST's own test
# digits with strokes two pixels wider on every side, lesson one's network
# reads only about 70 % right.
#
# The cure is to show the network other pens while it learns: *data
# augmentation*. Half of each batch is redrawn before the network sees it: a
# quarter of that half with thinner strokes, a quarter as it is, and a
# quarter each one and two pixels thicker; then each image is slanted by up
# to 15°, scaled to between 60 % and 125 %, moved by up to 2 pixels, and
# bent. A thicker pen is a max-pool that keeps the image's size: each pixel
# takes the brightest value around it; a thinner pen takes the darkest. The
# bend is Simard, Steinkraus and Platt's *elastic distortion* (2003): random
# noise, blurred until it is smooth, says how far each pixel moves, about a
# pixel and a half, so that loops open or close, tails curl and strokes
# wander as another writer's would. The other half of the batch stays as
# MNIST has it, so that one epoch still learns MNIST's own digits as well as
# lesson one does.

# %%
#@save
def brightest_nearby(images, size):
    """Each pixel replaced by the brightest in the size × size square around it: a max-pool that
    keeps the image's size, done across and then down, which a CPU does several times faster."""
    before, after = (size - 1) // 2, size // 2
    rows = images.flatten(0, 1)
    for _ in range(2):  # across; then, transposed, down; then transposed back
        rows = F.max_pool1d(F.pad(rows, (before, after), value=-torch.inf), size, stride=1)
        rows = rows.transpose(1, 2)
    return rows.reshape(images.shape)


def other_pens(images):
    """A quarter of the images with thinner strokes, a quarter as they are, and a quarter each
    with strokes 1 and 2 pixels thicker on every side."""
    thin, same, thick, thicker = images.tensor_split(4)
    return torch.cat([-brightest_nearby(-thin, 2), same, brightest_nearby(thick, 3),
                      brightest_nearby(thicker, 5)])


def in_another_hand(images, slant=15, scales=(0.6, 1.25), shift=2, bend=2.5):
    """Each image slanted by up to `slant` degrees, scaled, moved by up to `shift` pixels, and
    bent: each point of a 4 × 4 grid moved by up to `bend` pixels, and the pixels between them
    moved smoothly with them, as another hand might have written it."""
    def uniform(low, high, *shape):  # numbers for each image, shaped to go with its pixels
        return torch.empty(len(images), *shape, device=images.device).uniform_(low, high)

    zoom, tilt = uniform(*scales, 1, 1), uniform(-slant, slant, 1, 1).deg2rad().tan()
    centres = torch.linspace(-27 / 28, 27 / 28, 28, device=images.device)  # -1 to 1 across
    across, down = centres.view(1, 1, 28), centres.view(1, 28, 1)
    read_across = (across + tilt * down) / zoom + uniform(-shift, shift, 1, 1) / 14
    read_down = down / zoom + uniform(-shift, shift, 1, 1) / 14
    where = torch.stack(torch.broadcast_tensors(read_across, read_down), dim=-1)
    bends = F.interpolate(uniform(-bend, bend, 2, 4, 4), size=(28, 28), mode="bicubic") / 14
    return F.grid_sample(images, where + bends.permute(0, 2, 3, 1), padding_mode="border",
                         align_corners=False)


def with_other_pens(batches):
    """The batches, each with its first half redrawn: other pens, then other hands."""
    for images, labels in batches:
        changed, kept = images.tensor_split(2)
        yield torch.cat([in_another_hand(other_pens(changed)), kept]), labels

# %% [markdown]
# Here are the first training digits as one batch of them looks to the
# network: the top rows redrawn, the bottom rows as MNIST has them.

# %%
torch.manual_seed(settings.seed)
redrawn, redrawn_labels = next(with_other_pens([(train_images[:40], train_labels[:40])]))
pens_shown = tools.image_grid(redrawn[:, 0].cpu(), [str(label) for label in
                                                    redrawn_labels.tolist()],
                              "A batch as the network sees it: 20 redrawn, 20 as they are")
run.show(pens_shown, "a_batch_with_other_pens")

# %% [markdown]
# ## Training with other pens
#
# This lesson trains a network of its own, from scratch, rather than going
# on training lesson one's: an epoch takes seconds, and a fresh network that
# sees other pens from its first step learns them as part of what a digit
# is. It is lesson one's recipe, with `with_other_pens` between the batches
# and the network (`augment = False` leaves it out, to compare), and five
# epochs instead of one: other hands are more to learn than MNIST's. On
# digits in 27 handwriting fonts, bent and photographed, one epoch reads
# about 88 % right, five about 92 %
# ([`benchmarks/other_writers.py`](benchmarks/other_writers.py)). Its
# training state is saved as `handwriting_training.pt`, beside lesson one's.

# %% tags=["training"]
model = fresh_network(settings.channels, settings.seed, device)
steps_per_epoch = steps_in_an_epoch(train_images, settings.batch_size)
optimizer, scheduler = one_cycle_adam(model, settings.lr, settings.epochs * steps_per_epoch)
settings.note_unread_edits(globals())  # a parameters cell run again, but not read yet
with run.training(model, optimizer, scheduler, train_images, steps_per_epoch):
    for epoch in run.epochs():
        batches = shuffled_batches(train_images, train_labels, settings.batch_size)
        if settings.augment:
            batches = with_other_pens(batches)
        losses = train_one_epoch(model, optimizer, scheduler, run.watched(batches, epoch))
        test_accuracy = accuracy(predict(model, test_images), test_labels)
        run.end_epoch(epoch, losses, test_accuracy)  # says the epoch's loss and accuracy

# %% [markdown]
# ## Before and after
#
# Now read MNIST's test digits redrawn with other pens, and with them
# smaller, with this network and, if lesson one saved one in `out_dir`, with
# lesson one's, which saw MNIST's pen only. The digits as MNIST has them
# should read about as well with both; the others show the cure.

# %%
pens = {"as MNIST has it": test_images, "thinner": -brightest_nearby(-test_images, 2),
        "1 pixel thicker": brightest_nearby(test_images, 3),
        "2 pixels thicker": brightest_nearby(test_images, 5),
        "70 % of the size": in_another_hand(test_images, 0, (0.7, 0.7), 0, 0)}
networks = {"this lesson's": model}
lesson_one = run.network_path("mnist")
try:
    networks["lesson one's"] = tools.load_checkpoint(lesson_one, DigitNet, device)[0]
except tools.CheckpointError as error:  # none there, or one that no longer fits DigitNet
    print(f"{error} Lesson one's network is left out of the comparison: run "
          f"{tools.PYTHON} mnistlab.py{' --sample' * data.on_sample} first, with the same "
          f"out_dir.")
read_right = pd.DataFrame({name: {pen: accuracy(predict(network, images), test_labels)
                                  for pen, images in pens.items()}
                           for name, network in networks.items()})
print("Test digits read right, %:", read_right.round(2), sep="\n")

# %% [markdown]
# Measured over 5 seeds on full MNIST, with one digit shown here four ways:
#
# ![The same 8 with four pens, read before and after](figures/other_pens.png)
#
# `benchmarks/handwriting.py` measures more of the ways other writers differ,
# and `benchmarks/other_writers.py` reads the digits of 27 handwriting fonts,
# digit by digit: the curled 9 is still the hardest (`docs/beyond.md` holds
# their tables).

# %% [markdown]
# ## Saving the network
#
# The network is saved as `handwriting_cnn.pt` in `out_dir`, with how well
# it did, and loaded back, as lesson one saves its own; a better one saved
# before is kept. `predict.py` reads photos with this network when it is
# there.

# %% tags=["save"]
saved = run.save_network(data.class_names, mean, std, channels=settings.channels)
if saved:
    restored = run.load_network(DigitNet, device)
    print(f"Loaded back into a fresh DigitNet, it scores "
          f"{accuracy(predict(restored, test_images), test_labels):.2f} % on the test digits")

# %% [markdown]
# ## Preparing a photo
#
# `prepare_digit` makes a photo into an MNIST digit, the way MNIST's digits
# were made:
#
# 1. **Greyscale**, from 0 (black) to 1 (white), and turned upright if the
#    phone stored it on its side. (`tools.prepare_photos`, which opens it,
#    has shrunk it to at most a million pixels.)
# 2. **Inverted** when the ink is darker than the paper: MNIST's digits are
#    light strokes on black.
# 3. **Paper removed**: the typical grey of the image (its median) becomes
#    0 and the ink 1; shadows fainter than a fifth of the ink become 0. A
#    photo where nothing stands out from the paper's own grain, not even a
#    faint pencil, is said to look blank.
# 4. **Cropped** to the ink, without the lines of ruled or squared paper
#    (rows or columns inked nearly all the way across, two bands or more,
#    as no digit's strokes are). Ink in groups side by side, as in "2026", is several
#    digits: the network reads one, so the photo is refused with a word.
# 5. **Given MNIST's pen**, which MNIST's makers did not need: strokes
#    thinner than MNIST's thin ones (1.5 of its pixels) are spread, and
#    strokes broader than its broad ones (3 pixels) are thinned, as the
#    other pens are made in training. `stroke_width` measures a stroke as its
#    ink over half the length of its edges: a stroke 3 pixels wide and 20
#    long has 60 pixels of ink and about 40 of edge.
# 6. **Scaled** so that the longer side is 20 pixels, keeping its shape.
# 7. **Centred** in a 28 × 28 frame by its centre of mass (the average
#    position of the ink), as MNIST's digits were.
#
# `read_digits` then scales the pixels with the training images' mean and
# std, as in training, and turns the network's scores into probabilities.
# When even the likeliest digit is under 60 %, the network is unsure, and
# the reading names the two likeliest: `4 or 9 (48 %, 41 %)`.

# %%
#@save
def stroke_width(digit):
    """How wide a digit's strokes are, in pixels: its ink over half the length of its edges."""
    framed = F.pad(digit, (1, 1, 1, 1))  # ink that meets the crop's border has an edge there too
    edges = framed.diff(dim=0).abs().sum() + framed.diff(dim=1).abs().sum()
    return 2 * digit.sum().item() / max(edges.item(), 1e-6)


def with_pen(digit, narrowest, widest):
    """The digit with strokes from `narrowest` to `widest` pixels wide: the brightest pixel
    nearby spreads the ink, the darkest thins it, by `reach` pixels on every side."""
    width = stroke_width(digit)
    reach = round((min(max(width, narrowest), widest) - width) / 2)
    sign, padded = (1 if reach >= 0 else -1), F.pad(digit, (abs(reach),) * 4)[None, None]
    return sign * brightest_nearby(sign * padded, 2 * abs(reach) + 1)[0, 0]


def cropped(digit):
    """The digit cropped to its ink."""
    rows, columns = torch.nonzero(digit, as_tuple=True)
    return digit[rows.min():rows.max() + 1, columns.min():columns.max() + 1]


def lines_across(inked, dim):
    """The rows (dim=1) or columns (dim=0) inked nearly all the way across, where they come in
    two bands or more, as ruled paper's lines do and a digit's strokes do not."""
    across = inked.float().mean(dim=dim) > 0.85
    bands = int(across[0]) + int((across[1:] & ~across[:-1]).sum())
    return across if bands >= 2 else torch.zeros_like(across)


def without_paper_lines(ink):
    """The ink without the lines of ruled or squared paper."""
    inked = ink > 0
    return ink * ~lines_across(inked, 1)[:, None] * ~lines_across(inked, 0)[None, :]


def groups_side_by_side(digit):
    """How many groups of ink stand side by side in the cropped digit, apart by blank columns
    at least a tenth of its height wide, each a tenth of its ink or more (a speck is none): one
    for a digit, four for "2026"."""
    ink, gap = digit.sum(dim=0).tolist(), max(2, digit.shape[0] // 10)
    groups, blank = [0.0], 0
    for column in ink:
        if column and blank >= gap:
            groups.append(0.0)
        groups[-1] += column
        blank = 0 if column else blank + 1
    return sum(group >= 0.1 * sum(ink) for group in groups)


def prepare_digit(photo):
    """A 28 × 28 tensor of a photo or scan of one handwritten digit, made the way MNIST's were."""
    photo = ImageOps.exif_transpose(photo).convert("L")
    grey = pil_to_tensor(photo)[0].float() / 255
    if grey.median() > 0.5:
        grey = 1 - grey
    paper, ink = grey.median(), grey.quantile(0.999)  # a thin pen may ink 0.1 % of a photo
    grain = (grey - paper).abs().median()  # how much the paper itself varies
    if ink - paper < max(0.05, 10 * grain):  # a faint pencil stands out from clean paper
        raise ValueError("it looks blank: no ink stands out from the paper")
    digit = ((grey - paper) / (ink - paper)).clamp(0, 1)
    digit[digit < 0.2] = 0
    digit = cropped(without_paper_lines(digit))
    if groups_side_by_side(digit) > 1:
        raise ValueError(f"it seems to hold {groups_side_by_side(digit)} digits side by side, "
                         f"and the network reads one at a time: crop it to one digit, or take a "
                         f"photo of each")
    pixels = max(digit.shape) / 20  # of the photo's, to one of MNIST's
    digit = cropped(with_pen(digit, 1.5 * pixels, 3 * pixels))  # MNIST's thin and broad pens
    height, width = (max(1, round(side * 20 / max(digit.shape))) for side in digit.shape)
    digit = F.interpolate(digit[None, None], size=(height, width), mode="bilinear",
                          antialias=True)[0, 0]
    centre_row = (digit.sum(dim=1) * torch.arange(height)).sum() / digit.sum()
    centre_column = (digit.sum(dim=0) * torch.arange(width)).sum() / digit.sum()
    top = int((14 - centre_row).round().clamp(0, 28 - height))
    left = int((14 - centre_column).round().clamp(0, 28 - width))
    frame = torch.zeros(28, 28)
    frame[top:top + height, left:left + width] = digit
    return frame


@torch.inference_mode()
def read_digits(model, digits, mean, std):
    """The network's ten probabilities for each prepared digit."""
    model.eval()
    scores = model(((digits - mean) / std)[:, None].to(next(model.parameters()).device))
    return scores.softmax(dim=1).cpu()

# %% [markdown]
# ## Reading your photos
#
# Write a digit on paper with a dark pen, a few centimetres tall, and take a
# photo of it. Put it beside the lesson (drag it into VS Code's Explorer) and
# list it in `photos` at the top. Later, `.venv/bin/python predict.py my_7.jpg` reads
# photos with the saved network, without training again.

# %%
if not run.learned:
    print("The network did not learn, so its readings would mean nothing: train it again.")
elif settings.photos:
    digits, photos_read = tools.prepare_photos(settings.photos, prepare_digit)
    probabilities = read_digits(model, digits, mean, std)
    for path, chances in zip(photos_read, probabilities, strict=True):
        print(f"{tools.readable(path)}: {tools.reading(chances)}")
    run.show(tools.readings_figure(digits, probabilities, photos_read), "your_digits")

# %% [markdown]
# ## Drawing instead
#
# Quicker than a photo: draw a digit with the mouse. Both networks read it
# side by side, this lesson's and lesson one's (if it saved one), after
# `prepare_digit` made it an MNIST digit, just as it does a photo. **Save as
# PNG** keeps a drawing in `out_dir`, which `predict.py` reads.

# %% tags=["pad"]
tools.drawing_pad(networks, prepare_digit, mean, std, run.folder)

# %% [markdown]
# If the network still misreads your digit, look at the prepared image: a
# shadow, a second digit or the edge of the sheet ends up in it too; crop
# the photo to the one digit.
#
# ## Result

# %%
test_accuracy = accuracy(predict(model, test_images), test_labels)
print(f"Result: {run.seconds:.2f} s of training on {device}, test accuracy {test_accuracy:.2f} % "
      f"on {len(test_labels):,} {data.name} test digits, "
      f"{'with' if settings.augment else 'without'} other pens")
run.exit_if_interrupted()  # in a terminal, the exit status says that the run was cut short

# %% [markdown]
# ## Where to go next
#
# - Run it with `augment = False` and compare the table of other pens.
# - Photograph digits written by other people, with other pens, and read
#   them all at once: `.venv/bin/python predict.py photos/*.jpg`.
# - `docs/beyond.md` measures how other writers' digits are read, and says
#   where the network still fails.
