"""MNIST/Fashion-MNIST through torchvision, from its own layout or a plain folder of idx files."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from ppdgm.data import load_dataset
from ppdgm.data.mnist import DEBIAN_FASHION_MNIST

_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")
_TEST_FILES = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
    }


def _write_idx(folder: Path, n_train: int, n_test: int, *, compress: bool) -> np.ndarray:
    """Tiny idx files (the format of the official ones); returns the train images."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    train_images = None
    for (images_name, labels_name), n in ((_FILES, n_train), (_TEST_FILES, n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        train_images = images if train_images is None else train_images
        blobs = {
            images_name: struct.pack(">IIII", 0x803, n, 28, 28) + images.tobytes(),
            labels_name: struct.pack(">II", 0x801, n) + labels.tobytes(),
        }
        for name, blob in blobs.items():
            if compress:
                (folder / f"{name}.gz").write_bytes(gzip.compress(blob))
            else:
                (folder / name).write_bytes(blob)
    return train_images


@pytest.fixture
def cache(tmp_path: Path, monkeypatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("PPDGM_DATA", str(folder))
    return folder


@pytest.mark.parametrize("compress", [True, False])
def test_flat_folder_is_staged_into_the_cache(tmp_path: Path, cache: Path, compress: bool) -> None:
    flat = tmp_path / "flat"
    images = _write_idx(flat, 6, 4, compress=compress)
    before = _snapshot(flat)
    ds = load_dataset("mnist", root=flat)
    assert ds.train.shape == (6, 1, 28, 28) and ds.test.shape == (4, 1, 28, 28)
    assert ds.support == "unit" and ds.train.dtype == torch.float32
    assert torch.equal(ds.train, torch.from_numpy(images).float().div(255).unsqueeze(1))
    assert ds.train_labels.dtype == torch.int64 and ds.test_labels.shape == (4,)
    assert _snapshot(flat) == before
    assert sorted(p.name for p in (cache / "MNIST" / "raw").iterdir()) == sorted(
        _FILES + _TEST_FILES
    )

    # A staged copy whose size does not match its source (an interrupted copy) is redone.
    staged = cache / "MNIST" / "raw" / _FILES[0]
    staged.write_bytes(b"\0" * 10)
    small = load_dataset("mnist", root=flat, num_train=2, binarize=True)
    assert small.support == "binary" and small.train.shape == (2, 1, 28, 28)
    assert torch.equal(small.train, (ds.train[:2] > 0.5).float())


def test_torchvision_layout_is_read_in_place(tmp_path: Path, cache: Path) -> None:
    _write_idx(tmp_path / "MNIST" / "raw", 3, 2, compress=False)
    assert load_dataset("mnist", root=tmp_path).train.shape == (3, 1, 28, 28)
    assert not cache.exists()
    with pytest.raises(ValueError, match="num_train: expected at most 3 .*, got 4"):
        load_dataset("mnist", root=tmp_path, num_train=4)


def test_fashion_mnist_without_root_falls_back_on_the_debian_folder(
    tmp_path: Path, cache: Path, monkeypatch
) -> None:
    debian = tmp_path / "usr-share-datasets-fashion-mnist"
    _write_idx(debian, 5, 3, compress=True)
    monkeypatch.setattr("ppdgm.data.mnist.DEBIAN_FASHION_MNIST", debian)
    before = _snapshot(debian)
    assert load_dataset("fashion-mnist").train.shape == (5, 1, 28, 28)
    assert (cache / "FashionMNIST" / "raw" / _FILES[0]).is_file()
    assert _snapshot(debian) == before
    # The fallback is Fashion-MNIST's only.
    with pytest.raises(FileNotFoundError, match="root: no MNIST idx files"):
        load_dataset("mnist")


def test_missing_files_say_how_to_get_them(tmp_path: Path, cache: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"root: no MNIST idx files .*download=True"):
        load_dataset("mnist", root=tmp_path)
    with pytest.raises(FileNotFoundError, match=f"root: no MNIST idx files found in {cache}"):
        load_dataset("mnist")


@pytest.fixture(scope="module")
def debian_fashion(tmp_path_factory):
    if not (DEBIAN_FASHION_MNIST / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(
            f"Fashion-MNIST idx files absent from {DEBIAN_FASHION_MNIST} "
            "(apt-get install dataset-fashion-mnist)"
        )
    cache = tmp_path_factory.mktemp("fashion-cache")
    before = _snapshot(DEBIAN_FASHION_MNIST)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PPDGM_DATA", str(cache))
        ds = load_dataset("fashion-mnist", root=DEBIAN_FASHION_MNIST)
    return ds, cache, before


def test_fashion_mnist_from_the_debian_folder(debian_fashion) -> None:
    ds, cache, before = debian_fashion
    assert ds.name == "fashion-mnist" and ds.support == "unit"
    assert ds.train.shape == (60000, 1, 28, 28) and ds.test.shape == (10000, 1, 28, 28)
    assert ds.train.min() == 0.0 and ds.train.max() == 1.0
    # Fashion-MNIST is balanced: 6000 train and 1000 test images per class.
    assert torch.bincount(ds.train_labels).tolist() == [6000] * 10
    assert torch.bincount(ds.test_labels).tolist() == [1000] * 10
    assert _snapshot(DEBIAN_FASHION_MNIST) == before
    assert (cache / "FashionMNIST" / "raw" / "train-images-idx3-ubyte").stat().st_size == 47040016


def test_fashion_mnist_reuses_the_staged_cache(debian_fashion, monkeypatch) -> None:
    ds, cache, _ = debian_fashion
    staged = cache / "FashionMNIST" / "raw" / "t10k-images-idx3-ubyte"
    mtime = staged.stat().st_mtime_ns
    monkeypatch.setenv("PPDGM_DATA", str(cache))
    again = load_dataset("fashion-mnist", num_train=10, num_test=5, binarize=True)
    assert again.support == "binary"
    assert torch.equal(again.test, (ds.test[:5] > 0.5).float())
    assert staged.stat().st_mtime_ns == mtime


class _Offline:
    """A torchvision dataset class on a machine without internet: every download fails."""

    def __init__(self, root, train=True, download=False):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz: (network unreachable)")


def test_a_failed_download_says_it_failed_not_to_pass_download(tmp_path: Path, cache: Path,
                                                               monkeypatch) -> None:
    import torchvision

    monkeypatch.setattr(torchvision.datasets, "MNIST", _Offline)
    with pytest.raises(FileNotFoundError, match=r"download: could not download MNIST .*internet"):
        load_dataset("mnist", root=tmp_path, download=True)
    monkeypatch.setattr(torchvision.datasets, "KMNIST", _Offline)
    with pytest.raises(FileNotFoundError, match=r"data: could not download KMNIST .*internet") as err:
        load_dataset("torchvision:KMNIST", root=tmp_path, download=True)
    assert "pass --download" not in str(err.value)
    with pytest.raises(FileNotFoundError, match=r"data: KMNIST is not under .*pass --download"):
        load_dataset("torchvision:KMNIST", root=tmp_path)
