"""How ppdgm takes bad input and damaged files: counts for the README and the issue tracker.

Three measurements, written to ``benchmarks/results/robustness.json``:

1. **Bad inputs.** ``--inputs`` random calls of the public API (``TrainConfig``, every model's
   config, ``load_dataset``, ``estimate_log_likelihood``, ``to_inference_data``) with values drawn
   from a pool of odd ones (negative, zero, huge, NaN, Inf, strings, wrong types), each with a
   time limit. Each ends as: accepted; a clean error (ValueError, TypeError, FileNotFoundError or
   FloatingPointError whose message starts with an argument's name); another error (a raw
   traceback from deep inside); or a hang (past the limit).
2. **Byte flips.** Every byte of a trained VAE checkpoint flipped in turn: refused with a
   ``CheckpointError``, loaded with identical contents, or loaded with different contents.
3. **Known-bad inputs.** ``--known-bad`` draws from the cases of ``_bad_inputs.py``, one
   generator per kind of mistake (sizes that cannot fit, empty batches, data outside a model's
   support, out-of-range arguments, unsound checkpoints, bad paths), every case at least once.
   Each must end in a clean error naming its argument: a call that returns is counted as
   *accepted silently*, any other exception as *raw*.

    python benchmarks/robustness.py --inputs 2000 --known-bad 10000
"""

from __future__ import annotations

import argparse
import json
import math
import random
import signal
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results"
ODD = [None, True, -1, 0, 1, 2, 3, 10**12, -(10**9), 0.5, -0.5, math.nan, math.inf, -math.inf,
       1e40, "", "x", "relu", (), (0,), (2,), (-1, 4), (10**10,), (1, 8, 8), [3, 3], {"a": 1}]
CLEAN = (ValueError, TypeError, FileNotFoundError, FloatingPointError)


class _Hang(Exception):
    pass


def _alarm(signum, frame):
    raise _Hang


def _targets():
    from ppdgm import (
        GAN,
        RBM,
        VAE,
        VAEGAN,
        Diffusion,
        DiffusionConfig,
        GANConfig,
        MixtureConfig,
        RBMConfig,
        SBNConfig,
        SigmoidBeliefNet,
        TrainConfig,
        VAEConfig,
        VAEGANConfig,
        estimate_log_likelihood,
        load_dataset,
        to_inference_data,
    )
    from ppdgm.models import GaussianMixture

    def config_target(cls, config_cls):
        fields = [f for f in config_cls.__dataclass_fields__]
        return lambda field, value: cls(config_cls(**{field: value})), fields

    vae = VAE(VAEConfig(x_shape=(4,), z_dim=2, hidden=(8,)))
    targets = {
        "TrainConfig": (lambda f, v: TrainConfig(**{"device": "cpu", f: v}),
                        list(TrainConfig.__dataclass_fields__)),
        "VAE": config_target(VAE, VAEConfig), "SBN": config_target(SigmoidBeliefNet, SBNConfig),
        "RBM": config_target(RBM, RBMConfig), "GAN": config_target(GAN, GANConfig),
        "VAEGAN": config_target(VAEGAN, VAEGANConfig),
        "Diffusion": config_target(Diffusion, DiffusionConfig),
        "GaussianMixture": config_target(GaussianMixture, MixtureConfig),
        "load_dataset": (lambda f, v: load_dataset("ring8", **{f: v}),
                         ["num_train", "num_test", "seed", "path", "binarize"]),
        "estimate_log_likelihood": (
            lambda f, v: estimate_log_likelihood(vae.model, vae.guide, **{
                "x": torch.rand(3, 4), "num_samples": 4, **{f: v}}),
            ["x", "num_samples", "batch_size", "max_draws", "seed"]),
        "to_inference_data": (lambda f, v: to_inference_data(**{"prior": {"z": torch.zeros(5)},
                                                                 f: v}),
                              ["coords", "dims", "prior", "chains", "num_samples", "seed"]),
    }
    return targets


def bad_inputs(n: int, seed: int, limit: int) -> dict:
    rng = random.Random(seed)
    targets = _targets()
    counts = {"accepted": 0, "clean_error": 0, "other_error": 0, "hang": 0}
    examples: dict[str, list[str]] = {"other_error": [], "hang": []}
    signal.signal(signal.SIGALRM, _alarm)
    started = time.perf_counter()
    for _ in range(n):
        name = rng.choice(sorted(targets))
        call, fields = targets[name]
        field, value = rng.choice(fields), rng.choice(ODD)
        signal.alarm(limit)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                call(field, value)
            counts["accepted"] += 1
        except _Hang:
            counts["hang"] += 1
            examples["hang"].append(f"{name}({field}={value!r})")
        except CLEAN as err:
            named = str(err).split(":", 1)[0].strip()
            ok = named and " " not in named
            counts["clean_error" if ok else "other_error"] += 1
            if not ok:
                examples["other_error"].append(f"{name}({field}={value!r}): {str(err)[:120]}")
        except Exception as err:  # noqa: BLE001 - what is being counted
            counts["other_error"] += 1
            examples["other_error"].append(f"{name}({field}={value!r}): {type(err).__name__}: "
                                           f"{str(err)[:100]}")
        finally:
            signal.alarm(0)
    errors = counts["clean_error"] + counts["other_error"] + counts["hang"]
    return {"inputs": n, **counts, "clean_share_of_errors": counts["clean_error"] / max(errors, 1),
            "seconds": round(time.perf_counter() - started, 1), "limit_seconds": limit,
            "examples": {k: sorted(set(v))[:20] for k, v in examples.items()}}


def known_bad(n: int, seed: int, limit: int) -> dict:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _bad_inputs import KINDS, all_cases, draw, outcome

    cases = all_cases()
    counts = {kind: {"cases": 0, "clean": 0, "accepted": 0, "raw": 0, "hang": 0} for kind in KINDS}
    examples: list[str] = []
    signal.signal(signal.SIGALRM, _alarm)
    started = time.perf_counter()
    for case in draw(cases, n, seed):
        counts[case.kind]["cases"] += 1
        signal.alarm(limit)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result, message = outcome(case)
        except _Hang:
            result, message = "hang", ""
        finally:
            signal.alarm(0)
        counts[case.kind][result] += 1
        if result != "clean":
            examples.append(f"{case.name}: {result} {message[:120]}")
    total = {key: sum(c[key] for c in counts.values()) for key in ("cases", "clean", "accepted",
                                                                  "raw", "hang")}
    return {"draws": n, "distinct_cases": len(cases), "by_kind": counts, "total": total,
            "seconds": round(time.perf_counter() - started, 1),
            "examples": sorted(set(examples))[:40]}


def byte_flips(stride: int) -> dict:
    from pyro.infer import Trace_ELBO

    from ppdgm import VAE, CheckpointError, Engine, TrainConfig, VAEConfig, load_checkpoint

    folder = Path(tempfile.mkdtemp())
    vae = VAE(VAEConfig(x_shape=(16,), z_dim=2, hidden=(8,)))
    cfg = TrainConfig(epochs=1, batch_size=8, device="cpu", progress=False, out_dir=str(folder))
    Engine(vae.model, vae.guide, Trace_ELBO(), config=cfg).fit((torch.rand(32, 16) < 0.5).float())
    path = folder / "checkpoint.pt"
    original, reference = path.read_bytes(), load_checkpoint(path)
    damaged = folder / "damaged.pt"
    counts = {"refused": 0, "identical": 0, "changed": 0}
    for position in range(0, len(original), stride):
        flipped = bytearray(original)
        flipped[position] ^= 0xFF
        damaged.write_bytes(bytes(flipped))
        try:
            state = load_checkpoint(damaged)
        except CheckpointError:
            counts["refused"] += 1
            continue
        counts["identical" if _same(state, reference) else "changed"] += 1
    return {"file_bytes": len(original), "flips": sum(counts.values()), **counts}


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(map(_same, a, b))
    return a == b


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=20, help="seconds before an input counts as hung")
    parser.add_argument("--stride", type=int, default=1, help="flip every STRIDE-th byte")
    parser.add_argument("--known-bad", type=int, default=10000,
                        help="draws from the known-bad cases of _bad_inputs.py")
    parser.add_argument("--results", default=str(RESULTS))
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    record = {"command": "python benchmarks/robustness.py " + " ".join(argv or sys.argv[1:]),
              "bad_inputs": bad_inputs(args.inputs, args.seed, args.limit),
              "byte_flips": byte_flips(args.stride),
              "known_bad": known_bad(args.known_bad, args.seed, args.limit),
              "torch": torch.__version__}
    out = Path(args.results)
    out.mkdir(parents=True, exist_ok=True)
    (out / "robustness.json").write_text(json.dumps(record, indent=2) + "\n")
    b, f = record["bad_inputs"], record["byte_flips"]
    print(f"{b['inputs']} bad inputs: {b['accepted']} accepted, {b['clean_error']} clean errors, "
          f"{b['other_error']} other errors, {b['hang']} hangs ({b['seconds']} s)")
    print(f"{f['flips']} byte flips of a {f['file_bytes']}-byte checkpoint: {f['refused']} refused, "
          f"{f['identical']} identical, {f['changed']} changed")
    k = record["known_bad"]["total"]
    print(f"{k['cases']} known-bad inputs ({record['known_bad']['distinct_cases']} distinct): "
          f"{k['clean']} clean errors, {k['accepted']} accepted silently, {k['raw']} raw errors, "
          f"{k['hang']} hangs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
