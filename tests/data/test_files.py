"""The user's own data: array files, image folders and torchvision datasets by name."""

import numpy as np
import pytest
import torch
import torchvision.datasets
from PIL import Image

from ppdgm.cli import main
from ppdgm.data import load_dataset
from ppdgm.inference import load_checkpoint


def _png_folder(folder, n=12, size=(6, 6), rgb=False, binary=True):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        shape = (*size, 3) if rgb else size
        pixels = rng.integers(0, 2, size=shape) * 255 if binary else rng.integers(0, 256, size=shape)
        Image.fromarray(pixels.astype(np.uint8)).save(folder / f"img{i:02d}.png")
    return folder


def test_an_npy_file_is_split_and_its_support_found(tmp_path):
    points = np.random.default_rng(1).normal(size=(40, 3)).astype(np.float32)
    np.save(tmp_path / "points.npy", points)
    ds = load_dataset(str(tmp_path / "points.npy"), seed=3)
    assert ds.train.shape == (36, 3) and ds.test.shape == (4, 3) and ds.support == "real"
    together = torch.cat([ds.train, ds.test])
    assert sorted(together[:, 0].tolist()) == sorted(points[:, 0].tolist())  # a permutation
    assert ds.name == str((tmp_path / "points.npy").resolve())


def test_an_npz_with_splits_keeps_them_and_uint8_images_become_unit_intervals(tmp_path):
    rng = np.random.default_rng(2)
    np.savez(tmp_path / "binary.npz", train=rng.integers(0, 2, (20, 5)),
             test=rng.integers(0, 2, (6, 5)), valid=rng.integers(0, 2, (3, 5)))
    ds = load_dataset(str(tmp_path / "binary.npz"))
    assert (ds.train.shape, ds.test.shape, ds.valid.shape) == ((20, 5), (6, 5), (3, 5))
    assert ds.support == "binary"
    np.savez(tmp_path / "images.npz", x=rng.integers(0, 256, (10, 4, 4, 3)).astype(np.uint8))
    images = load_dataset(str(tmp_path / "images.npz"))
    assert images.event_shape == (3, 4, 4) and images.support == "unit"


def test_bad_array_files_are_clear_errors(tmp_path):
    (tmp_path / "broken.npz").write_bytes(b"PK\x03\x04 broken")
    with pytest.raises(ValueError, match="not a readable .npy/.npz"):
        load_dataset(str(tmp_path / "broken.npz"))
    np.savez(tmp_path / "two.npz", a=np.zeros((3, 2)), b=np.zeros((3, 2)))
    with pytest.raises(ValueError, match="expected train and test"):
        load_dataset(str(tmp_path / "two.npz"))
    np.save(tmp_path / "nan.npy", np.full((4, 2), np.nan))
    with pytest.raises(ValueError, match="NaN"):
        load_dataset(str(tmp_path / "nan.npy"))
    with pytest.raises(FileNotFoundError, match="no file"):
        load_dataset(str(tmp_path / "missing.npz"))
    with pytest.raises(ValueError, match="torchvision:NAME"):
        load_dataset("no-such-dataset")


def test_image_folders_flat_with_classes_and_in_colour(tmp_path):
    flat = load_dataset(str(_png_folder(tmp_path / "flat")))
    assert flat.train.shape == (11, 1, 6, 6) and flat.test.shape == (1, 1, 6, 6)
    assert flat.support == "binary"
    for label in ("cats", "dogs"):
        _png_folder(tmp_path / "classes" / label, n=5)
    classes = load_dataset(str(tmp_path / "classes"))
    assert sorted(torch.cat([classes.train_labels, classes.test_labels]).tolist()) == [0] * 5 + [1] * 5
    colour = load_dataset(str(_png_folder(tmp_path / "colour", rgb=True, binary=False)))
    assert colour.event_shape == (3, 6, 6) and colour.support == "unit"
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(tmp_path / "flat" / "odd.png")
    with pytest.raises(ValueError, match="share one size"):
        load_dataset(str(tmp_path / "flat"))


class _FakeTorchvision:
    """Stands in for a torchvision dataset class (no download here): uint8 (N, H, W, C) arrays."""

    def __init__(self, root, train=True, download=False):
        n = 20 if train else 5
        self.data = np.random.default_rng(int(train)).integers(0, 256, (n, 4, 4, 3)).astype(np.uint8)
        self.targets = list(range(n))


def test_a_torchvision_dataset_by_name(monkeypatch, tmp_path):
    monkeypatch.setattr(torchvision.datasets, "FakeTen", _FakeTorchvision, raising=False)
    ds = load_dataset("torchvision:FakeTen", root=str(tmp_path))
    assert ds.train.shape == (20, 3, 4, 4) and ds.test.shape == (5, 3, 4, 4)
    assert ds.train_labels.tolist() == list(range(20)) and ds.name == "torchvision:FakeTen"
    with pytest.raises(ValueError, match="no dataset 'Nope'"):
        load_dataset("torchvision:Nope")


def test_fit_a_vae_on_a_folder_of_pngs_then_sample_and_evaluate_it(tmp_path, capsys):
    folder = _png_folder(tmp_path / "my_images", n=20)
    out = tmp_path / "run"
    assert main(["fit", "vae", "--data", str(folder), "--epochs", "2", "--batch-size", "8",
                 "--hidden", "16", "--z-dim", "2", "--no-progress", "--out", str(out)]) == 0
    spec = load_checkpoint(out / "checkpoint.pt")["model_spec"]
    assert spec["data"] == str(folder.resolve()) and spec["config"]["likelihood"] == "bernoulli"
    capsys.readouterr()
    # evaluate finds the data from the checkpoint's record
    assert main(["evaluate", str(out / "checkpoint.pt"), "--k", "5", "--device", "cpu"]) == 0
    assert f"points of {folder.resolve()}/test" in capsys.readouterr().out
    assert main(["sample", str(out / "checkpoint.pt"), "--n", "4", "--out",
                 str(tmp_path / "s.png"), "--device", "cpu"]) == 0


def test_fit_a_diffusion_model_on_an_array_file(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "arrays.npz", x=rng.normal(size=(64, 2)).astype(np.float32))
    out = tmp_path / "run"
    assert main(["fit", "diffusion", "--data", str(tmp_path / "arrays.npz"), "--epochs", "1",
                 "--timesteps", "10", "--hidden", "16", "--num-samples", "20", "--no-progress",
                 "--out", str(out)]) == 0
    assert tuple(load_checkpoint(out / "checkpoint.pt")["model_spec"]["config"]["x_shape"]) == (2,)
