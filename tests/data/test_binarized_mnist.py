"""Binarized MNIST from the shared .npz and from .amat files in both published forms."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch

from ppdgm.data import load_dataset

SHARED_NPZ = Path(__file__).resolve().parents[2].parent / "shared/data/binarized_mnist.npz"


@pytest.fixture(scope="module")
def full():
    if not SHARED_NPZ.is_file():
        pytest.skip(f"the shared binarized MNIST file is absent ({SHARED_NPZ})")
    return load_dataset("binarized-mnist", path=SHARED_NPZ)


def test_shared_npz_matches_the_published_split(full) -> None:
    assert full.support == "binary" and full.event_shape == (1, 28, 28)
    assert full.train.shape == (50000, 1, 28, 28)
    assert full.valid.shape == (10000, 1, 28, 28) and full.test.shape == (10000, 1, 28, 28)
    assert full.train.dtype == torch.float32
    # Pixel means from ../shared/data/README.md.
    means = {"train": 0.13056, "valid": 0.13113, "test": 0.13251}
    for which, mean in means.items():
        assert full.split(which).double().mean().item() == pytest.approx(mean, abs=1e-4)
    assert full.train_labels is None


def test_num_train_num_test_take_the_first_rows(full, monkeypatch) -> None:
    monkeypatch.setenv("PPDGM_BINARIZED_MNIST", str(SHARED_NPZ))
    small = load_dataset("binarized-mnist", num_train=100, num_test=10)
    assert torch.equal(small.train, full.train[:100]) and torch.equal(small.test, full.test[:10])
    assert small.valid.shape == (10000, 1, 28, 28)
    with pytest.raises(ValueError, match="num_test: expected at most 10000"):
        load_dataset("binarized-mnist", num_test=10001)


def _arrays(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        k: (rng.random((n, 784)) < 0.3).astype(np.uint8)
        for k, n in (("train", 5), ("valid", 3), ("test", 4))
    }


def _write_text(folder: Path, arrays: dict[str, np.ndarray]) -> None:
    for key, a in arrays.items():
        np.savetxt(folder / f"binarized_mnist_{key}.amat", a, fmt="%d")


def _write_loose_text(folder: Path, arrays: dict[str, np.ndarray]) -> None:
    # Decimals, CRLF and ragged spacing: not the published layout, read by the general parser.
    for key, a in arrays.items():
        np.savetxt(folder / f"binarized_mnist_{key}.amat", a, fmt="%.1f", newline="  \r\n")
        with open(folder / f"binarized_mnist_{key}.amat", "a") as f:
            f.write("\n")


def _write_matlab(folder: Path, arrays: dict[str, np.ndarray]) -> None:
    for key, a in arrays.items():
        scipy.io.savemat(folder / f"binarized_mnist_{key}.amat", {"X": a})


@pytest.mark.parametrize("writer", [_write_text, _write_loose_text, _write_matlab])
def test_amat_directory_in_text_and_matlab_form(tmp_path: Path, writer) -> None:
    arrays = _arrays()
    writer(tmp_path, arrays)
    if writer is _write_matlab:
        assert (tmp_path / "binarized_mnist_train.amat").read_bytes().startswith(b"MATLAB")
    ds = load_dataset("binarized-mnist", path=str(tmp_path))
    for key, a in arrays.items():
        expected = torch.from_numpy(a).float().reshape(-1, 1, 28, 28)
        assert torch.equal(ds.split(key), expected)


def test_npz_with_wrong_content_names_the_key(tmp_path: Path) -> None:
    arrays = _arrays()
    bad_shape = dict(arrays, valid=np.zeros((3, 28, 28), np.uint8))
    np.savez(tmp_path / "shape.npz", **bad_shape)
    with pytest.raises(ValueError, match=r"valid: expected shape \(N, 784\), got \(3, 28, 28\)"):
        load_dataset("binarized-mnist", path=tmp_path / "shape.npz")
    bad_values = dict(arrays, test=arrays["test"] * 255)
    np.savez(tmp_path / "values.npz", **bad_values)
    with pytest.raises(
        ValueError, match=r"test: expected values in \{0, 1\}, got values in \[0, 255\]"
    ):
        load_dataset("binarized-mnist", path=tmp_path / "values.npz")
    np.savez(tmp_path / "keys.npz", train=arrays["train"], test=arrays["test"])
    with pytest.raises(ValueError, match=r"path: expected keys \['train', 'valid', 'test'\]"):
        load_dataset("binarized-mnist", path=tmp_path / "keys.npz")


def test_bad_amat_files_are_named(tmp_path: Path) -> None:
    _write_text(tmp_path, _arrays())
    (tmp_path / "binarized_mnist_test.amat").write_text("0 1 0\n1 1 1\n")
    with pytest.raises(ValueError, match=r"test: expected shape \(N, 784\), got \(2, 3\)"):
        load_dataset("binarized-mnist", path=tmp_path)
    (tmp_path / "binarized_mnist_test.amat").write_text("")
    with pytest.raises(ValueError, match=r"test: expected shape \(N, 784\)"):
        load_dataset("binarized-mnist", path=tmp_path)
    (tmp_path / "binarized_mnist_test.amat").write_text("0 1 0\n1 1\n")
    with pytest.raises(ValueError, match="binarized_mnist_test.amat: expected rows of 784"):
        load_dataset("binarized-mnist", path=tmp_path)
    scipy.io.savemat(tmp_path / "binarized_mnist_test.amat", {"Y": np.zeros((1, 784))})
    with pytest.raises(
        ValueError, match=r"binarized_mnist_test.amat: expected a MATLAB variable 'X'"
    ):
        load_dataset("binarized-mnist", path=tmp_path)


def test_missing_files_and_paths(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("PPDGM_BINARIZED_MNIST", raising=False)
    with pytest.raises(
        ValueError, match=r"path: .*path=\.\.\..*larocheh/public/datasets/binarized_mnist"
    ):
        load_dataset("binarized-mnist")
    missing = tmp_path / "nothing.npz"
    with pytest.raises(FileNotFoundError, match=f"path: no such file or directory: {missing}"):
        load_dataset("binarized-mnist", path=missing)
    monkeypatch.setenv("PPDGM_BINARIZED_MNIST", str(missing))
    with pytest.raises(FileNotFoundError, match="nothing.npz"):
        load_dataset("binarized-mnist")
    with pytest.raises(FileNotFoundError, match="path: expected binarized_mnist_train.amat in"):
        load_dataset("binarized-mnist", path=tmp_path)
    (tmp_path / "x.txt").write_text("0 1\n")
    with pytest.raises(ValueError, match="path: expected an .npz file or a directory"):
        load_dataset("binarized-mnist", path=tmp_path / "x.txt")
