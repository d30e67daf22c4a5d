"""Images tiled into one: shared by the figures and the TensorBoard logger."""

from __future__ import annotations

import torch

from ._validation import check_positive_int, check_tensor

__all__ = ["image_grid"]


def image_grid(images: torch.Tensor, *, nrow: int = 8, padding: int = 2,
               pad_value: float = 0.0) -> torch.Tensor:
    """Tile images (N, C, H, W) into one image (C, H', W'), ``nrow`` to a row, ``padding`` pixels
    of ``pad_value`` around each; one-channel images become gray RGB (C = 3). The layout is
    torchvision's ``make_grid``, written here because importing torchvision loads torch's
    compiler stack, about 2 s of every command that writes an image.

    Examples:
        >>> image_grid(torch.ones(3, 1, 4, 4), nrow=2).shape
        torch.Size([3, 14, 14])
    """
    check_tensor("images", images, ndim=4)
    check_positive_int("nrow", nrow)
    check_positive_int("padding", padding, minimum=0)
    n, channels, height, width = images.shape
    if channels == 1:
        images = images.expand(n, 3, height, width)
    columns = min(nrow, n)
    rows = -(-n // columns)
    step_y, step_x = height + padding, width + padding
    grid = images.new_full((images.shape[1], rows * step_y + padding, columns * step_x + padding),
                           pad_value)
    for k in range(n):
        y, x = divmod(k, columns)
        grid[:, y * step_y + padding:(y + 1) * step_y, x * step_x + padding:(x + 1) * step_x] = images[k]
    return grid
