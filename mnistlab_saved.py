"""The network, its training and the photo preparation, as the lesson defines them.

Generated from the cells of mnistlab.py that start with #@save, by
`python mnistlab_tools.py export`: edit the lesson, then run that. predict.py, the
benchmark and the tests import it, so that none of them runs or reads the lesson.
"""
import mnistlab_tools as tools
import torch
import torch.nn.functional as F
from PIL import ImageOps
from torch import nn
from torchvision.transforms.functional import pil_to_tensor


class DigitNet(nn.Module):
    def __init__(self, channels=16):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, channels, kernel_size=5, bias=False),             # 28 × 28 → 24 × 24
            nn.MaxPool2d(2),                                               # → 12 × 12
            nn.BatchNorm2d(channels),
            nn.ReLU(),
            nn.Conv2d(channels, 2 * channels, kernel_size=5, bias=False),  # → 8 × 8
            nn.MaxPool2d(2),                                               # → 4 × 4
            nn.BatchNorm2d(2 * channels),
            nn.ReLU(),
        )
        self.classify = nn.Linear(2 * channels * 4 * 4, 10)

    def forward(self, images):
        return self.classify(self.features(images).flatten(1))


def train_one_epoch(model, optimizer, scheduler, images, labels, batch_size, augment=False,
                    description="", ctrl_c=None, writer=None, steps_before=0):
    """Train on every image once; the loss of each batch. Ctrl-C ends the epoch after the batch."""
    model.train()
    losses = []
    batches = torch.randperm(len(images), device=images.device).split(batch_size)
    for batch in tools.progress(batches, description):
        if ctrl_c and ctrl_c.requested:
            break
        inputs = images[batch]
        if augment:  # digits have 4 pixels of margin: what rolls off one edge is background
            inputs = inputs.roll(torch.randint(-2, 3, (2,)).tolist(), dims=(2, 3))
        loss = F.cross_entropy(model(inputs), labels[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses.append(loss.detach())
        if writer:
            writer.add_scalar("loss/batch", loss.item(), steps_before + len(losses))
    return torch.stack(losses).tolist() if losses else []


@torch.inference_mode()
def predict(model, images):
    model.eval()
    return torch.cat([model(batch).argmax(dim=1) for batch in images.split(1000)])


def accuracy(predicted, known):
    return (predicted == known).float().mean().item() * 100


def prepare_digit(photo):
    """A 28 × 28 tensor of a photo or scan of one handwritten digit, made the way MNIST's were."""
    photo = ImageOps.exif_transpose(photo).convert("L")
    photo.thumbnail((1000, 1000))
    grey = pil_to_tensor(photo)[0].float() / 255
    if grey.median() > 0.5:
        grey = 1 - grey
    paper, ink = grey.median(), grey.quantile(0.995)
    if ink - paper < 0.15:
        raise ValueError("it looks blank: no ink stands out from the paper")
    digit = ((grey - paper) / (ink - paper)).clamp(0, 1)
    digit[digit < 0.2] = 0
    rows, columns = torch.nonzero(digit, as_tuple=True)
    digit = digit[rows.min():rows.max() + 1, columns.min():columns.max() + 1]
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
