import pytest
import torch

from ppdgm.device import loader_kwargs, move_to_device, resolve_device


def test_resolve_known_devices():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type in (expected, "mps")
    assert resolve_device(None).type == resolve_device("auto").type


@pytest.mark.parametrize("spec", ["gpu", "cuda:x", "auto:1", "", "cpu:0:1"])
def test_unknown_device_names_the_argument(spec):
    with pytest.raises(ValueError, match="device"):
        resolve_device(spec)


def test_device_type_errors():
    with pytest.raises(TypeError, match="device"):
        resolve_device(0)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_absent_cuda_is_an_error_not_a_fallback():
    with pytest.raises(ValueError, match="CUDA is not available"):
        resolve_device("cuda:0")


def test_move_nested_batches():
    out = move_to_device({"a": (torch.zeros(1), [torch.ones(1)]), "b": 3}, torch.device("cpu"))
    assert out["b"] == 3 and isinstance(out["a"], tuple) and isinstance(out["a"][1], list)
    assert loader_kwargs(torch.device("cpu")) == {"pin_memory": False}
