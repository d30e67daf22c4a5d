"""Mode coverage on ring8 and grid25 over seeds: VAE, GAN, PacGAN(m=2), VAE-GAN and diffusion, beside
the numbers of the PacGAN paper (Lin et al. 2018, Table 1; the VEEGAN mixtures and metrics).

Each seed is one :func:`ppdgm.recipes.compare.compare_models` run: a fresh training set drawn with
that seed (``--num-train`` points, 100,000 as in PacGAN), every model initialized, trained and
sampled with it, ``--num-samples`` (2500) samples scored by
:func:`ppdgm.inference.coverage.coverage_for_dataset` (high quality: within 3 std of a centre).
Reported: the mean and standard error over seeds of the modes captured, the percentage of
high-quality samples and the reverse KL (:func:`~ppdgm.inference.coverage.summarize_coverage`),
and the training time.

Protocol, as far as :func:`ppdgm.recipes.gan.fit_gan` offers it: non-saturating loss, z ~ N(0, I_2),
generator and discriminator MLPs of 4 hidden layers of 400 ReLU units, Adam lr 1e-4 with betas
(0.5, 0.999) for both players, one discriminator step per generator step, 100 points (or 100
groups of m points for PacGAN) per step. Every model takes ``--steps`` steps, so PacGAN(m) sees m
times the points of the GAN, as in PacGAN's code. The VAE (Gaussian likelihood, learned std, z_dim
2, MLP 128-128, Adam 1e-3, batch 100) takes as many steps; its samples are draws x ~ p(x | z),
observation noise included. The VAE-GAN (z_dim 2, Adam 1e-4) and the diffusion model (T = 1000,
linear schedule, eps-prediction MLP 3 x 256 SiLU on 8 octaves of Fourier features, Adam 1e-3,
batch 100; DDPM samples, noise-free last step) take as many steps too. Where this differs from
PacGAN's code, ``deviations`` in the JSON says.

    python benchmarks/mode_coverage.py                     # 5 seeds, both mixtures, 20,000 steps
    python benchmarks/mode_coverage.py --data grid25 --models gan,gan-pack2,gan-pack4 \\
        --steps 400000 --device cuda                     # PacGAN's full budget (400 epochs)

A model that a seed's ``compare.json`` already holds with the same settings is read back, not
retrained, so a long benchmark may span several sittings and gain models later; the first seed's
figure (``compare.png``) is redrawn with every model, from the checkpoints, with the scored draws.
Writes ``benchmarks/results/mode_coverage.json`` and ``mode_coverage.md``.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import pyro
import torch

from ppdgm.data import load_dataset
from ppdgm.diagnostics import plot_samples_over_density
from ppdgm.inference.coverage import ModeCoverage, summarize_coverage
from ppdgm.recipes import load_trained_model
from ppdgm.recipes.compare import CONTENDERS, _draw, compare_models, get_contender

RESULTS = Path(__file__).resolve().parent / "results"
RUNS = Path(__file__).resolve().parent / "runs" / "mode-coverage"
DATASETS = ("ring8", "grid25")
MODELS = ("vae", "gan", "gan-pack2", "vae-gan", "diffusion")
#: Contenders whose scored samples are their decoder's noise-free output (see runs_compare).
SAMPLE_MEANS = {"diffusion"}

#: PacGAN (Lin et al. 2018), Table 1: mean over 10 runs of 400 epochs of 100,000 points.
ANCHORS: dict[str, dict[str, dict[str, float]]] = {
    "grid25": {"GAN": {"modes": 17.3, "high_quality_percent": 94.8},
               "PacGAN4": {"modes": 24.8, "high_quality_percent": 93.6},
               "ALI": {"modes": 24.1, "high_quality_percent": 95.7}},
    "ring8": {"GAN": {"modes": 6.3, "high_quality_percent": 98.2}},
}
TARGETS: dict[str, dict[str, float]] = {
    "grid25": {"modes": 25, "high_quality_percent": 95.0},
    "ring8": {"modes": 8, "high_quality_percent": 98.0},
}
DEVIATIONS = [
    "generator without batch normalization (PacGAN: batch norm after each hidden layer, no biases)",
    "discriminator 4 x 400 ReLU like the generator, as fit_gan builds it (PacGAN: 3 x 200 "
    "LinearMaxout with 5 pieces)",
    "Adam betas (0.5, 0.999), fit_gan's fixed GAN_BETAS (PacGAN's code: beta1 = 0.8)",
    "PyTorch's default weight initialization (PacGAN: N(0, 0.02^2) weights, zero biases)",
    "ring8 has radius 2 and std 0.02 (VEEGAN's; PacGAN's code: radius 1, std 0.01, the same ratio)",
    "the budget is --steps steps per model (PacGAN: 400 epochs of 1000 steps = 400,000)",
]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    def names(text: str) -> list[str]:
        return [n.strip() for n in text.split(",") if n.strip()]

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=names, default=list(DATASETS), help="ring8,grid25 (default both)")
    p.add_argument("--models", type=names, default=list(MODELS),
                   help=f"comma-separated, of {', '.join(CONTENDERS)} (default {','.join(MODELS)})")
    p.add_argument("--seeds", type=int, default=5, help="seeds per model and mixture")
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=20_000, help="optimizer steps per model")
    p.add_argument("--num-train", type=int, default=100_000)
    p.add_argument("--num-samples", type=int, default=2500)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (1: small nets run fastest on one)")
    p.add_argument("--out", default=str(RUNS), help="run directories, one per mixture and seed")
    p.add_argument("--fresh", action="store_true", help="retrain seeds that have a compare.json")
    p.add_argument("--results", default=str(RESULTS))
    args = p.parse_args(argv)
    for name in args.data:
        if name not in DATASETS:
            p.error(f"--data: expected some of {', '.join(DATASETS)}, got {name!r}")
    for name in args.models:
        try:
            get_contender(name)
        except ValueError as err:
            p.error(f"--models: {err}")
    for flag in ("seeds", "steps", "num_train", "num_samples", "threads"):
        if getattr(args, flag) < 1:
            p.error(f"--{flag.replace('_', '-')}: expected an int >= 1, got {getattr(args, flag)}")
    return args


def _budget(args: argparse.Namespace) -> dict[str, int]:
    # Enough epochs for --steps batches; max_steps stops the run there.
    return {m: math.ceil(args.steps * get_contender(m).batch_size / args.num_train)
            for m in args.models}


def _settings(args: argparse.Namespace, data: str, seed: int) -> dict[str, Any]:
    return {"data": data, "seed": seed, "num_train": args.num_train,
            "num_samples": args.num_samples, "models": list(args.models)}


def _done_rows(args: argparse.Namespace, path: Path, data: str, seed: int) -> dict[str, Any]:
    # The models of an earlier compare.json run with the same data, seed and budget.
    if not path.exists() or args.fresh:
        return {}
    old = json.loads(path.read_text())
    if {k: old.get(k) for k in ("data", "seed", "num_train", "num_samples")} != {
            k: v for k, v in _settings(args, data, seed).items() if k != "models"}:
        return {}
    return {m: r for m, r in old["models"].items() if r.get("max_steps") == args.steps}


def _run_seed(args: argparse.Namespace, data: str, seed: int) -> dict[str, Any]:
    run = Path(args.out) / data / f"seed{seed}"
    path = run / "compare.json"
    done = _done_rows(args, path, data, seed)
    missing = [m for m in args.models if m not in done]
    if not missing:
        print(f"{data} seed {seed}: read back {path}", flush=True)
        record = json.loads(path.read_text())
        if seed == args.first_seed:
            _figure(args, data, seed, run, record)  # the figure shows exactly the listed models
        return {**record, "models": {m: done[m] for m in args.models}}
    started = time.perf_counter()
    epochs = {m: e for m, e in _budget(args).items() if m in missing}
    result = compare_models(data, run, models=missing, epochs=epochs, max_steps=args.steps,
                            seed=seed, num_samples=args.num_samples, num_train=args.num_train,
                            device=args.device, figure=False, progress=False)
    print(f"{data} seed {seed}: trained {', '.join(missing)} in "
          f"{time.perf_counter() - started:.0f} s", flush=True)
    # Earlier models stay in compare.json beside the new ones (a later sitting may add models).
    merged = {**result.metrics, "models": {**done, **result.metrics["models"]}}
    path.write_text(json.dumps(merged, indent=2, allow_nan=False) + "\n")
    if seed == args.first_seed:
        _figure(args, data, seed, run, merged)
    return {**merged, "models": {m: merged["models"][m] for m in args.models}}


def _figure(args: argparse.Namespace, data: str, seed: int, run: Path, record: dict[str, Any]) -> Path:
    """Every model's samples over the density, redrawn from the checkpoints exactly as scored."""
    dataset = load_dataset(data, seed=seed, num_train=args.num_train)
    samples, coverage = {}, {}
    for name in args.models:
        model = load_trained_model(run / name / "checkpoint.pt", device=args.device)
        label = record["models"][name]["label"]
        samples[label] = _draw(model, args.num_samples, seed, mean=name in SAMPLE_MEANS)
        coverage[label] = _coverage(record["models"][name])
    return plot_samples_over_density(samples, dataset.centres, dataset.scale, run / "compare.png",
                                     title=f"{data}, seed {seed}: {args.num_samples} samples per model",
                                     coverage=coverage)


def _coverage(row: dict[str, Any]) -> ModeCoverage:
    kl = row["reverse_kl"]
    return ModeCoverage(modes_captured=row["modes_captured"], num_modes=row["num_modes"],
                        high_quality=row["high_quality"], counts=tuple(row["counts"]),
                        reverse_kl=math.nan if kl is None else kl, num_samples=row["num_samples"])


def _estimate(values: list[float]) -> dict[str, float | None]:
    t = torch.tensor(values, dtype=torch.float64)
    stderr = t.std().item() / math.sqrt(len(values)) if len(values) > 1 else math.nan
    return {"mean": _finite(t.mean().item()), "stderr": _finite(stderr)}


def _finite(v: float) -> float | None:
    return v if math.isfinite(v) else None


def summarize(per_seed: list[dict[str, Any]], model: str) -> dict[str, Any]:
    """Mean ± standard error over seeds of one model's rows of ``compare.json``."""
    rows = [m["models"][model] for m in per_seed]
    summary = summarize_coverage([_coverage(r) for r in rows])
    steps = [r["steps"] for r in rows]
    out: dict[str, Any] = {
        "label": rows[0]["label"], "description": rows[0]["description"],
        "num_modes": rows[0]["num_modes"], "seeds": [m["seed"] for m in per_seed],
        **{k: {"mean": _finite(e.mean), "stderr": _finite(e.stderr)} for k, e in summary.items()},
        "train_seconds": _estimate([r["train_seconds"] for r in rows]),
        "steps": steps[0] if len(set(steps)) == 1 else steps,
        "seconds_per_step": _finite(sum(r["train_seconds"] for r in rows) / max(1, sum(steps))),
        "batch_size": rows[0]["batch_size"], "lr": rows[0]["lr"],
        "per_seed": [{"seed": m["seed"], "modes_captured": r["modes_captured"],
                      "high_quality_percent": r["high_quality_percent"],
                      "reverse_kl": r["reverse_kl"], "train_seconds": r["train_seconds"],
                      "steps": r["steps"],
                      **({"extra_samples": r["extra_samples"]} if r["extra_samples"] else {})}
                     for m, r in zip(per_seed, rows)],
    }
    return out


def _pm(e: dict[str, float | None], fmt: str, unit: str = "") -> str:
    if e["mean"] is None:
        return "undefined"
    se = "" if e["stderr"] is None else f" ± {e['stderr']:{fmt}}"
    return f"{e['mean']:{fmt}}{se}{unit}"


def _training_hours(record: dict[str, Any]) -> float:
    return sum(row["train_seconds"] for models in record["results"].values()
               for s in models.values() for row in s["per_seed"]) / 3600


def markdown(record: dict[str, Any]) -> str:
    """The benchmark's tables: ppdgm's models beside PacGAN's anchors and the targets."""
    lines = [f"# Mode coverage ({record['num_samples']} samples, high quality within 3 std)", ""]
    for data, models in record["results"].items():
        k = next(iter(models.values()))["num_modes"]
        t = TARGETS[data]
        lines += [f"## {data}: target {t['modes']:g}/{k} modes with >= {t['high_quality_percent']:g} % "
                  "high-quality samples", "",
                  f"| model | modes captured (of {k}) | high-quality samples | reverse KL (nats) "
                  "| train time per seed | steps | seeds |",
                  "|---|---|---|---|---|---|---|"]
        for s in models.values():
            lines.append(f"| {s['label']} | **{_pm(s['modes_captured'], '.1f')}** "
                         f"| {_pm(s['high_quality_percent'], '.1f', ' %')} "
                         f"| {_pm(s['reverse_kl'], '.3f')} | {_pm(s['train_seconds'], '.0f', ' s')} "
                         f"| {s['steps']} | {len(s['seeds'])} |")
        for label, a in ANCHORS.get(data, {}).items():
            lines.append(f"| *PacGAN paper: {label}* | {a['modes']:g} | {a['high_quality_percent']:g} % "
                         "| - | - | 400,000 | 10 |")
        lines.append("")
    lines += ["Setup: " + "; ".join(f"{s['label']}: {s['description']}"
                                   for s in next(iter(record["results"].values())).values()) + ".",
              f"{record['num_train']} training points per seed; {record['device']}, "
              f"{record['threads']} thread(s); {_training_hours(record):.2f} h of training in all "
              "(seeds read back from earlier sittings included).", "",
              "Differences from PacGAN's code:", *[f"- {d}" for d in record["deviations"]], "",
              f"Command: `{record['command']}`", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cli_args = sys.argv[1:] if argv is None else argv
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    results: dict[str, dict[str, Any]] = {}
    for data in args.data:
        per_seed = [_run_seed(args, data, seed) for seed in seeds]
        results[data] = {m: summarize(per_seed, m) for m in args.models}
    record = {
        "benchmark": "mode-coverage",
        "protocol": "PacGAN / VEEGAN 2-D mixtures: see benchmarks/mode_coverage.py",
        "data": args.data, "models": args.models, "seeds": seeds, "steps": args.steps,
        "num_train": args.num_train, "num_samples": args.num_samples,
        "results": results, "anchors": ANCHORS, "targets": TARGETS, "deviations": DEVIATIONS,
        "device": args.device, "threads": torch.get_num_threads(),
        "total_seconds": round(time.perf_counter() - started, 1),
        "command": "python benchmarks/mode_coverage.py " + shlex.join(cli_args),
        "versions": {"torch": torch.__version__, "pyro": pyro.__version__,
                     "python": platform.python_version()},
    }
    out = Path(args.results)
    out.mkdir(parents=True, exist_ok=True)
    (out / "mode_coverage.json").write_text(json.dumps(record, indent=2, allow_nan=False) + "\n")
    table = markdown(record)
    (out / "mode_coverage.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
