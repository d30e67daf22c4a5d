"""The image grid ppdgm writes without importing torchvision is torchvision's, pixel for pixel."""

import numpy as np
import pytest
import torch
from PIL import Image

from ppdgm._images import image_grid
from ppdgm.diagnostics.figures import save_image_grid


@pytest.mark.parametrize("shape, nrow, padding, pad_value", [
    ((5, 1, 4, 6), 2, 2, 1.0),
    ((3, 3, 5, 5), 8, 0, 0.0),
    ((8, 1, 3, 3), 8, 1, 0.5),
    ((7, 3, 2, 4), 3, 3, 0.25),
])
def test_the_grid_is_torchvisions_make_grid(shape, nrow, padding, pad_value):
    make_grid = pytest.importorskip("torchvision.utils").make_grid
    images = torch.rand(*shape, generator=torch.Generator().manual_seed(0))
    expected = make_grid(images, nrow=nrow, padding=padding, pad_value=pad_value)
    assert torch.equal(image_grid(images, nrow=nrow, padding=padding, pad_value=pad_value),
                       expected)


def test_the_png_is_the_one_torchvision_writes(tmp_path):
    save_image = pytest.importorskip("torchvision.utils").save_image
    make_grid = pytest.importorskip("torchvision.utils").make_grid
    images = torch.rand(6, 1, 32, 32, generator=torch.Generator().manual_seed(1))
    ours = save_image_grid(images, tmp_path / "ours.png", nrow=4)
    save_image(make_grid(images, nrow=4, padding=2, pad_value=1.0), tmp_path / "theirs.png")
    assert np.array_equal(np.asarray(Image.open(ours)), np.asarray(Image.open(tmp_path / "theirs.png")))


def test_bad_grid_arguments_are_refused_by_name():
    with pytest.raises(ValueError, match="images"):
        image_grid(torch.rand(2, 8, 8))
    with pytest.raises(ValueError, match="nrow: expected an int >= 1"):
        image_grid(torch.rand(2, 1, 8, 8), nrow=0)
