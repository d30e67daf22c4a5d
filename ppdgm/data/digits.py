"""scikit-learn's bundled 8x8 digits: the library's default dataset, available offline."""

from __future__ import annotations

import torch

from .base import Dataset, head_rows, to_binary

__all__ = ["DIGITS_NUM_TRAIN", "load_digits"]

# 1500 / 297 of the 1797 images: a test set large enough for a stable NLL, the rest to train.
DIGITS_NUM_TRAIN: int = 1500


def load_digits(
    *, seed: int, num_train: int | None, num_test: int | None, binarize: bool
) -> Dataset:
    """Stratified split of ``sklearn.datasets.load_digits`` scaled to [0, 1], shape (N, 1, 8, 8)."""
    # Imported here so that `import ppdgm` does not pay for scikit-learn.
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    images, labels = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, train_size=DIGITS_NUM_TRAIN, random_state=seed, stratify=labels
    )

    def to_images(a: object) -> torch.Tensor:
        # Pixel values are the integers 0..16 (counts of set pixels in 4x4 blocks).
        return torch.as_tensor(a, dtype=torch.float32).div_(16.0).reshape(-1, 1, 8, 8)

    train, test = to_images(x_train), to_images(x_test)
    train_labels = torch.as_tensor(y_train, dtype=torch.int64)
    test_labels = torch.as_tensor(y_test, dtype=torch.int64)
    if binarize:
        train, test = to_binary(train), to_binary(test)
    return Dataset(
        name="digits-binarized" if binarize else "digits",
        train=head_rows(train, num_train, "num_train"),
        test=head_rows(test, num_test, "num_test"),
        train_labels=head_rows(train_labels, num_train, "num_train"),
        test_labels=head_rows(test_labels, num_test, "num_test"),
        support="binary" if binarize else "unit",
    )
