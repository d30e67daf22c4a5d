"""The example scripts run end to end on a tiny slice of their data."""

from __future__ import annotations

import importlib.util
import json
import shlex
from pathlib import Path
from types import ModuleType

from PIL import Image

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _load_example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_dcgan_fashion_mnist_writes_grids_and_results(tmp_path, device, monkeypatch):
    # Reading Fashion-MNIST's 70000 images takes seconds; 64 random images of its shape stand
    # in for them, so the test runs anywhere and fast. The real data is the example's own run.
    import torch

    from ppdgm.data import Dataset

    example = _load_example("dcgan_fashion_mnist")
    asked = {}

    def fake_load(name, *, num_train=None):
        asked.update(name=name, num_train=num_train)
        g = torch.Generator().manual_seed(0)
        return Dataset(name, train=torch.rand(num_train, 1, 28, 28, generator=g),
                       test=torch.rand(8, 1, 28, 28, generator=g), support="unit")

    monkeypatch.setattr(example, "load_dataset", fake_load)
    out = tmp_path / "run"
    argv = ["--num-train", "64", "--epochs", "1", "--batch-size", "32", "--device", str(device),
            "--out", str(out), "--seed", "1"]
    results = example.main(argv)

    assert asked == {"name": "fashion-mnist", "num_train": 64}
    for name in ("samples.png", "real.png", "results.json", "checkpoint.pt", "metrics.json"):
        assert (out / name).is_file(), name
    assert json.loads((out / "results.json").read_text()) == results
    assert results["num_train"] == 64 and results["epochs"] == 1
    assert results["steps"] == results["generator_steps"] == 2  # 64 images in batches of 32
    assert sorted(results["final_loss"]) == ["discriminator", "generator"]
    assert results["command"] == "python examples/dcgan_fashion_mnist.py " + shlex.join(argv)
    assert results["wall_seconds"] >= results["train_seconds"] > 0
    # 64 images of 28x28, enlarged x2 by save_image_grid to 56x56, 8 per row, 2-pixel padding:
    # 8 * (56 + 2) + 2 = 466 pixels each way.
    for name in ("samples.png", "real.png"):
        with Image.open(out / name) as image:
            assert image.size == (466, 466), name
