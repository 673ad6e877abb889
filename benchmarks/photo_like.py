"""Turn an MNIST digit into what a phone photo of it on paper looks like, to test reading your
own handwriting."""

import torch
import torch.nn.functional as F
from PIL import Image


def photo_of(digit, seed, scale=8, canvas=(300, 340), quality=80):
    """Dark ink on light, unevenly lit paper, several times larger, off-centre, with sensor noise:
    a PIL image.

    digit: a 28 × 28 uint8 tensor, light ink on black, as MNIST stores it. Save the result as JPEG
    to complete it."""
    generator = torch.Generator().manual_seed(seed)
    height, width = canvas
    ink = F.interpolate(
        digit[None, None].float() / 255, scale_factor=scale, mode="bilinear", align_corners=False
    )[0, 0]
    top = int(torch.randint(0, height - ink.shape[0], (1,), generator=generator))
    left = int(torch.randint(0, width - ink.shape[1], (1,), generator=generator))
    darkness = torch.zeros(height, width)
    darkness[top : top + ink.shape[0], left : left + ink.shape[1]] = ink
    rows, columns = torch.meshgrid(
        torch.linspace(0, 1, height), torch.linspace(0, 1, width), indexing="ij"
    )
    paper = 0.92 - 0.12 * (0.6 * rows + 0.4 * columns)  # light falling off across the sheet
    photo = paper * (1 - 0.8 * darkness) + 0.02 * torch.randn(height, width, generator=generator)
    return Image.fromarray((photo.clamp(0, 1) * 255).round().to(torch.uint8).numpy()).convert("RGB")
