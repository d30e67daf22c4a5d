"""Input checks shared by every public function: errors name the argument, the expected and the got."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

__all__: list[str] = []


def check_tensor(
    name: str,
    value: object,
    *,
    ndim: int | None = None,
    event_shape: Sequence[int] | None = None,
    floating: bool = False,
    finite: bool = True,
    support: str | None = None,
    nonempty: bool = False,
) -> torch.Tensor:
    """Validate ``value`` as a tensor and return it.

    ``event_shape`` checks the trailing dimensions (the leading one is the batch, which must
    hold at least one data point; ``nonempty=True`` asks that of any tensor); ``support`` is
    ``"binary"`` ({0, 1}), ``"unit"`` ([0, 1]) or ``None``.
    """
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(value).__name__}")
    if floating and not value.is_floating_point():
        raise TypeError(f"{name}: expected a floating-point tensor, got dtype {value.dtype}")
    if ndim is not None and value.dim() != ndim:
        raise ValueError(
            f"{name}: expected {ndim} dimensions, got shape {tuple(value.shape)}"
        )
    if event_shape is not None:
        event_shape = tuple(event_shape)
        k = len(event_shape)
        if value.dim() != k + 1 or tuple(value.shape[1:]) != event_shape:
            raise ValueError(
                f"{name}: expected shape (batch, {', '.join(map(str, event_shape))}), "
                f"got {tuple(value.shape)}"
            )
        if value.shape[0] == 0:  # a batch of nothing has no mean, no bound, no sample to score
            raise ValueError(f"{name}: expected at least one data point, got an empty batch "
                             f"of shape {tuple(value.shape)}")
    if nonempty and value.numel() == 0:
        raise ValueError(f"{name}: expected at least one data point, got an empty tensor of "
                         f"shape {tuple(value.shape)}")
    if finite and value.is_floating_point() and not bool(torch.isfinite(value).all()):
        raise ValueError(f"{name}: contains NaN or Inf values")
    if support == "binary":
        if not bool(((value == 0) | (value == 1)).all()):
            raise ValueError(
                f"{name}: a Bernoulli likelihood needs values in {{0, 1}}, "
                f"got values in [{value.min().item():g}, {value.max().item():g}] "
                "(binarize the data, e.g. the 'digits-binarized' dataset)"
            )
    elif support == "unit":
        if bool((value < 0).any()) or bool((value > 1).any()):
            raise ValueError(
                f"{name}: expected values in [0, 1], got values in "
                f"[{value.min().item():g}, {value.max().item():g}]"
            )
    elif support is not None:
        raise ValueError(f"support: expected 'binary', 'unit' or None, got {support!r}")
    return value


def check_instance(name: str, value: object, cls: type, what: str | None = None, *,
                   reason: str | None = None) -> object:
    """Check that argument ``name`` is a ``cls``: the error says "expected ``what``" (default
    "a ``cls``"), or ``reason`` instead when given.

    Examples:
        >>> check_instance("n", "3", int)
        Traceback (most recent call last):
        ...
        TypeError: n: expected a int, got str
    """
    if not isinstance(value, cls):
        expected = reason or f"expected {what or 'a ' + cls.__name__}"
        raise TypeError(f"{name}: {expected}, got {type(value).__name__}")
    return value


#: The most weights one layer may have (2^28, 1 GiB of float32; the largest layer of any model
#: here is under 2^24): anything larger is a typo in a size, refused by name before the allocator
#: is asked for it or a minute goes into initialising it.
MAX_LAYER_WEIGHTS = 2**28


def check_layer_size(name: str, fan_in: int, fan_out: int) -> None:
    """Refuse a ``fan_in`` x ``fan_out`` weight matrix beyond :data:`MAX_LAYER_WEIGHTS`.

    Examples:
        >>> try:
        ...     check_layer_size("hidden", 10**6, 10**6)
        ... except ValueError as err:
        ...     print(str(err)[:51])
        hidden: a 1000000 x 1000000 layer has 1e+12 weights
    """
    if fan_in * fan_out > MAX_LAYER_WEIGHTS:
        raise ValueError(f"{name}: a {fan_in} x {fan_out} layer has {float(fan_in * fan_out):.4g} "
                         f"weights, more than the {float(MAX_LAYER_WEIGHTS):.4g} a layer may have; "
                         "is a size mistyped?")


def check_positive_int(name: str, value: object, *, minimum: int = 1,
                       maximum: int | None = None) -> int:
    """Validate an integer count (bools are rejected), at least ``minimum``, at most ``maximum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name}: expected an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name}: expected an int <= {maximum}, got {value}")
    return value


def check_number(name: str, value: object, *, above: float | None = None,
                 minimum: float | None = None) -> float:
    """Validate a finite real number (bools are rejected), greater than ``above`` or at least
    ``minimum`` when given; returns it as a float.

    Examples:
        >>> check_number("lr", 1e-3, above=0)
        0.001
        >>> check_number("lr", float("nan"), above=0)
        Traceback (most recent call last):
        ...
        ValueError: lr: expected a finite number > 0, got nan
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name}: expected a number, got {type(value).__name__}")
    bound = (f" > {above:g}" if above is not None else "") + (
        f" >= {minimum:g}" if minimum is not None else "")
    if (not math.isfinite(value) or (above is not None and not value > above)
            or (minimum is not None and not value >= minimum)):
        raise ValueError(f"{name}: expected a finite number{bound}, got {value!r}")
    return float(value)


def check_flag(name: str, value: object) -> bool:
    """Validate a ``True``/``False`` switch (``0``, ``1`` and strings are refused: ``"False"``
    would be true).

    Examples:
        >>> check_flag("metropolized", "no")
        Traceback (most recent call last):
        ...
        TypeError: metropolized: expected True or False, got str
    """
    if not isinstance(value, bool):
        raise TypeError(f"{name}: expected True or False, got {type(value).__name__}")
    return value


def check_program(name: str, value: object) -> None:
    """Refuse a ``model`` or ``guide`` that is not a Pyro program (a callable).

    Examples:
        >>> check_program("model", "vae")
        Traceback (most recent call last):
        ...
        TypeError: model: expected a Pyro program (a callable such as vae.model), got str
    """
    if not callable(value):
        raise TypeError(f"{name}: expected a Pyro program (a callable such as vae.model), got "
                        f"{type(value).__name__}")


def check_label(name: str, value: object) -> str:
    """Validate a non-empty name (a plate's, a site's, a player's).

    Examples:
        >>> check_label("data_plate", "")
        Traceback (most recent call last):
        ...
        ValueError: data_plate: expected a non-empty name, got ''
    """
    if not isinstance(value, str):
        raise TypeError(f"{name}: expected a name (a str), got {type(value).__name__}")
    if not value:
        raise ValueError(f"{name}: expected a non-empty name, got ''")
    return value


def check_labels(name: str, value: object) -> list[str]:
    """Validate a sequence of site names (a lone string, whose letters would pass for names,
    is refused).

    Examples:
        >>> check_labels("sites", ["z1", "z2"])
        ['z1', 'z2']
        >>> check_labels("sites", "z1")
        Traceback (most recent call last):
        ...
        TypeError: sites: expected a sequence of site names, got the str 'z1' (write ['z1'])
    """
    if isinstance(value, str):
        raise TypeError(f"{name}: expected a sequence of site names, got the str {value!r} "
                        f"(write [{value!r}])")
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"{name}: expected a sequence of site names, got {type(value).__name__}")
    for item in value:
        check_label(name, item)
    return list(value)


def check_choice(name: str, value: object, choices: Sequence[str]) -> str:
    """Validate that ``value`` is one of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name}: expected one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def check_int_tuple(name: str, value: object, *, allow_empty: bool = False,
                    length: int | None = None) -> tuple[int, ...]:
    """Check that ``value`` is a tuple (or list) of positive ints; returns it as a tuple.

    Examples:
        >>> check_int_tuple("hidden", [8, 4])
        (8, 4)
    """
    if not isinstance(value, (tuple, list)):
        raise TypeError(f"{name}: expected a tuple of ints, got {type(value).__name__}")
    if not value and not allow_empty:
        raise ValueError(f"{name}: expected at least one entry, got {tuple(value)}")
    if length is not None and len(value) != length:
        raise ValueError(f"{name}: expected {length} entries, got {tuple(value)}")
    if any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in value):
        raise ValueError(f"{name}: expected positive ints, got {tuple(value)}")
    return tuple(value)


def check_program_call(*, seed: object, args: object, kwargs: object) -> dict[str, object]:
    """Refuse a bad seed, or arguments that cannot be passed on to a Pyro program, naming the
    argument; returns ``kwargs`` as a dict.

    Examples:
        >>> check_program_call(seed=0, args=(), kwargs=None)
        {}
        >>> check_program_call(seed=0, args=[1], kwargs=None)
        Traceback (most recent call last):
        ...
        TypeError: args: expected a tuple, got list
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise ValueError(f"seed: expected an int in [0, 2**32), got {seed!r}")
    if not isinstance(args, tuple):
        raise TypeError(f"args: expected a tuple, got {type(args).__name__}")
    if kwargs is not None and not isinstance(kwargs, dict):
        raise TypeError(f"kwargs: expected a dict or None, got {type(kwargs).__name__}")
    return dict(kwargs or {})
