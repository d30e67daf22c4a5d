"""Diffusion benchmarks: DDIM against DDPM on one model, the engine against a hand loop, the bound.

``speed``: trains one model (``ppdgm fit diffusion`` on grid25 by default), then samples it with
DDPM (all T steps), DDIM (``--ddim-steps``, eta 0) and, where diffusers is installed, the
schedulers of ``--schedulers`` (default DPM-Solver++, UniPC and diffusers' DDIM for an
equal-step row, ``--scheduler-steps`` each),
alternating, ``--repeats`` times each; reports the median seconds, each sampler's speed-up over
DDPM and its mode coverage of the same number of points. Target: DDIM(50) >= 15x faster than
DDPM(1000).

``overhead``: the same denoiser and loss trained by ppdgm's engine (``DenoisingLoss`` on the Pyro
model/guide pair) and by a hand-written PyTorch loop (t ~ U{1..T}, x_t by the closed form, MSE on
eps, ``zero_grad``/``backward``/``step``), from the same initial weights on the same batches,
their epochs interleaved in one process; median epoch seconds after a warm-up epoch. Target:
<= 1.10x on CPU (<= 1.05x on a GPU). ``--workload`` picks the 2-D MLP or the image U-Net.

``bound``: trains on an image dataset and reports the exact bound on the test set in bits/dim.

    python benchmarks/diffusion.py speed --epochs 20            # grid25, MLP 3x256, T=1000
    python benchmarks/diffusion.py overhead --workload unet --num-train 1024
    python benchmarks/diffusion.py bound --data digits --epochs 100

Results go to ``benchmarks/results/diffusion_<part>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import pyro
import torch

from ppdgm.data import load_dataset
from ppdgm.diagnostics import plot_samples_over_density
from ppdgm.inference import Engine, TrainConfig
from ppdgm.inference.coverage import mode_coverage
from ppdgm.inference.objectives.denoising import DenoisingLoss
from ppdgm.inference.sampling.diffusion import ddim_sample, ddpm_sample
from ppdgm.inference.sampling.schedulers import diffusers_available, make_scheduler, scheduler_sample
from ppdgm.models import DenoisingMLP, DenoisingUNet, Diffusion
from ppdgm.models.diffusion import _FlatDenoiser, diffusion_config_for
from ppdgm.recipes import fit_diffusion

RESULTS = Path(__file__).resolve().parent / "results"
RUNS = Path(__file__).resolve().parent / "runs"


def _record(part: str, args: argparse.Namespace, argv: list[str], body: dict[str, Any]) -> dict:
    return {"benchmark": f"diffusion-{part}", **body,
            "threads": torch.get_num_threads(), "device": args.device,
            "command": "python benchmarks/diffusion.py " + shlex.join(argv),
            "machine": platform.processor() or platform.machine(),
            "versions": {"torch": torch.__version__, "pyro": pyro.__version__,
                         "python": platform.python_version()}}


def _train(args: argparse.Namespace, data: str, out: Path, **overrides: Any):
    ds = load_dataset(data, **({"num_train": args.num_train} if args.num_train else {}))
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=0,
                      device=args.device, out_dir=str(out), progress=False)
    return ds, fit_diffusion(ds, cfg, model_overrides=overrides, num_samples=args.num_samples,
                             bound_points=args.bound_points, figures=args.plots)


def speed(args: argparse.Namespace) -> dict[str, Any]:
    from ppdgm.recipes import load_trained_model

    ds, run = _train(args, args.data, Path(args.runs) / f"diffusion-speed-{args.data}",
                     timesteps=args.timesteps)
    model = load_trained_model(run.files["checkpoint"], device=args.device)
    samplers = {"ddpm": lambda seed: ddpm_sample(model, args.num_samples, seed=seed, progress=False),
                f"ddim{args.ddim_steps}": lambda seed: ddim_sample(
                    model, args.num_samples, steps=args.ddim_steps, seed=seed, progress=False)}
    labels = {"ddpm": f"DDPM, {args.timesteps} steps",
              f"ddim{args.ddim_steps}": f"DDIM, {args.ddim_steps} steps"}
    for name in [n for n in args.schedulers.split(",") if n] if diffusers_available() else []:
        key = f"{name}{args.scheduler_steps}"
        samplers[key] = lambda seed, name=name: scheduler_sample(
            model, args.num_samples, scheduler=name, steps=args.scheduler_steps, seed=seed, progress=False)
        labels[key] = f"{name} (diffusers), {args.scheduler_steps} steps"
    for name in [n for n in args.schedulers.split(",") if n] if diffusers_available() else []:
        make_scheduler(model, name)  # diffusers imports its schedulers lazily: not in the timings
    seconds: dict[str, list[float]] = {k: [] for k in samplers}
    coverage: dict[str, Any] = {}
    first: dict[str, torch.Tensor] = {}
    for r in range(args.repeats):
        for name, draw in samplers.items():
            started = time.perf_counter()
            x = draw(r)
            if x.is_cuda:
                torch.cuda.synchronize()
            seconds[name].append(time.perf_counter() - started)
            if r == 0 and ds.centres is not None:
                first[name] = x.cpu()
                coverage[name] = mode_coverage(x.cpu(), ds.centres, ds.scale).as_dict()
    med = {k: statistics.median(v) for k, v in seconds.items()}
    names = list(samplers)
    figure = None
    if first:
        covers = {labels[k]: mode_coverage(v, ds.centres, ds.scale) for k, v in first.items()}
        figure = plot_samples_over_density(
            {labels[k]: v for k, v in first.items()}, ds.centres, ds.scale,
            Path(args.results) / f"diffusion_speed_{args.data}.png", coverage=covers,
            title=f"One diffusion model, {len(names)} samplers")
    return {"data": args.data, "timesteps": args.timesteps, "num_samples": args.num_samples,
            "train": {k: run.metrics[k] for k in ("epochs", "steps", "train_seconds", "bound")},
            "seconds": seconds, "median_seconds": med,
            "speedup": med[names[0]] / med[names[1]],
            "speedup_over_ddpm": {k: med[names[0]] / v for k, v in med.items()}, "mode_coverage": coverage,
            "figure": None if figure is None else figure.name}


def _hand_loss(net: torch.nn.Module, sched: Any, y0: torch.Tensor, T: int) -> torch.Tensor:
    t = torch.randint(1, T + 1, (y0.shape[0],), device=y0.device)
    eps = torch.randn_like(y0)
    shape = (-1, *([1] * (y0.dim() - 1)))
    y_t = sched.sqrt_alpha_bar[t].reshape(shape) * y0 + sched.sqrt_one_minus_alpha_bar[t].reshape(shape) * eps
    return (net(y_t, t.to(y0.dtype)) - eps).pow(2).flatten(1).mean(1).sum()


def overhead(args: argparse.Namespace) -> dict[str, Any]:
    data = "grid25" if args.workload == "mlp" else args.data
    ds = load_dataset(data, **({"num_train": args.num_train} if args.num_train else {}))
    device = torch.device("cuda" if args.device == "cuda" else "cpu")
    x = ds.train.to(device)
    pyro.set_rng_seed(0)
    cfg = diffusion_config_for(ds, timesteps=args.timesteps, **_unet_overrides(args))
    diffusion = Diffusion(cfg).to(device)
    if cfg.denoiser == "unet":
        plain = DenoisingUNet(cfg.x_shape, channels=cfg.channels, multipliers=cfg.multipliers,
                              time_dim=cfg.time_dim)
    else:
        plain = _FlatDenoiser(DenoisingMLP(x[0].numel(), cfg.hidden, time_dim=cfg.time_dim,
                                           fourier=cfg.fourier), cfg.x_shape)
    plain.load_state_dict(diffusion.denoiser.state_dict())
    plain = plain.to(device)
    sched = copy.deepcopy(diffusion.schedule).to(device)
    opt = torch.optim.Adam(plain.parameters(), lr=args.lr)
    hand_seconds: list[float] = []
    hand_losses: list[float] = []

    def hand_epoch(engine: Engine, epoch: int) -> None:
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(epoch)).to(device)
        started = time.perf_counter()
        total = 0.0
        for i in range(0, len(x), args.batch_size):
            loss = _hand_loss(plain, sched, diffusion.normalize(x[order[i:i + args.batch_size]]),
                              cfg.timesteps)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item()
        if device.type == "cuda":
            torch.cuda.synchronize()
        hand_seconds.append(time.perf_counter() - started)
        hand_losses.append(total / len(x))

    train = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=0,
                        device=str(device), progress=False)
    engine = Engine(diffusion.model, diffusion.guide, DenoisingLoss(), config=train,
                    callbacks=[hand_epoch])
    history = engine.fit(x)
    ours = [row["seconds"] for row in history.epochs]
    med = {"ppdgm": statistics.median(ours[1:]), "pytorch": statistics.median(hand_seconds[1:])}
    return {"workload": args.workload, "data": data, "num_train": len(x),
            "batch_size": args.batch_size, "timesteps": args.timesteps,
            "parameters": sum(p.numel() for p in plain.parameters()),
            "epoch_seconds": {"ppdgm": ours, "pytorch": hand_seconds},
            "median_seconds_after_warmup": med, "ratio_ppdgm_over_pytorch": med["ppdgm"] / med["pytorch"],
            "final_loss_per_example": {"ppdgm": history.epochs[-1]["loss_per_example"],
                                       "pytorch": hand_losses[-1]}}


def _unet_overrides(args: argparse.Namespace) -> dict[str, Any]:
    return {} if args.channels is None else {"channels": args.channels}


def bound(args: argparse.Namespace) -> dict[str, Any]:
    ds, run = _train(args, args.data, Path(args.runs) / f"diffusion-bound-{args.data}",
                     timesteps=args.timesteps, **_unet_overrides(args))
    m = run.metrics
    return {"data": args.data, "num_train": len(ds.train), "levels": m["levels"],
            **{k: m[k] for k in ("epochs", "steps", "train_seconds", "parameters", "bound",
                                 "final_epoch_loss_per_example")},
            "run_dir": str(run.out_dir)}


def rebound(args: argparse.Namespace) -> dict[str, Any]:
    """The bound of a trained run's denoiser under another reverse variance (no retraining:
    the denoising loss does not depend on it)."""
    import dataclasses

    from ppdgm.inference.objectives.denoising import variational_bound
    from ppdgm.recipes import checkpoint_data, load_trained_model

    trained = load_trained_model(args.checkpoint, device=args.device)
    model = Diffusion(dataclasses.replace(trained.config, variance=args.variance)).to(args.device)
    model.load_state_dict(trained.state_dict())
    model.eval()
    data = checkpoint_data(args.checkpoint)
    x = load_dataset(data).test[:args.bound_points].to(args.device)
    bound = variational_bound(model, x, seed=0)
    per_step = bound.steps.double().mean(0)
    return {"data": data, "checkpoint": args.checkpoint, "variance": args.variance,
            "trained_variance": trained.config.variance, "bound": bound.summary(),
            "first_steps_nats": [round(v, 4) for v in per_step[:20].tolist()],
            "share_of_steps_2_to_21": (per_step[:20].sum() / per_step.sum()).item()}


def markdown(part: str, r: dict[str, Any]) -> str:
    cmd = f"\n\nCommand: `{r['command']}` ({r['threads']} CPU threads, {r['device']}).\n"
    if part == "speed":
        med, cov = r["median_seconds"], r["mode_coverage"]
        ups = r.get("speedup_over_ddpm", {})
        rows = [f"| {k} | {v:.3f} | " + (f"{ups[k]:.1f}x | " if k in ups else "- | ")
                + (f"{cov[k]['modes_captured']}/{cov[k]['num_modes']}, "
                   f"{cov[k]['high_quality_percent']:.1f} %" if k in cov else "-")
                + " |" for k, v in med.items()]
        return (f"| sampler ({r['num_samples']} points, {r['data']}) | median s | speed-up over DDPM "
                "| modes, high quality |\n|---|---|---|---|\n" + "\n".join(rows)
                + f"\n\nDDIM's speed-up: **{r['speedup']:.1f}x**." + cmd)
    if part == "overhead":
        s = r["median_seconds_after_warmup"]
        return (f"| workload | PyTorch loop s/epoch | ppdgm engine s/epoch | ratio |\n|---|---|---|---|\n"
                f"| {r['workload']} on {r['data']} ({r['num_train']} points, batch {r['batch_size']}) "
                f"| {s['pytorch']:.3f} | {s['ppdgm']:.3f} | **{r['ratio_ppdgm_over_pytorch']:.3f}x** |" + cmd)
    b = r["bound"]
    if part == "rebound":
        return (f"| data | reverse variance | bound (nats) | bits/dim |\n|---|---|---|---|\n"
                f"| {r['data']} ({b['num_points']} test points) | {r['variance']} | {b['nats']:.2f} ± "
                f"{b['nats_stderr']:.2f} | **{b['bits_per_dim']:.4f}** |" + cmd)
    return (f"| data | epochs | train s | bound (nats) | bits/dim |\n|---|---|---|---|---|\n"
            f"| {r['data']} ({b['num_points']} test points) | {r['epochs']} | {r['train_seconds']:.0f} "
            f"| {b['nats']:.2f} ± {b['nats_stderr']:.2f} | **{b['bits_per_dim']:.4f}** |" + cmd)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("part", choices=["speed", "overhead", "bound", "rebound"])
    p.add_argument("--checkpoint", default=None, help="rebound: a trained diffusion checkpoint")
    p.add_argument("--variance", choices=["small", "large"], default="large",
                   help="rebound: the reverse variance to score the trained denoiser under")
    p.add_argument("--data", default=None, help="speed: grid25; overhead (unet) and bound: digits")
    p.add_argument("--workload", choices=["mlp", "unet"], default="mlp")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--timesteps", type=int, default=1000)
    p.add_argument("--num-train", type=int, default=None)
    p.add_argument("--num-samples", type=int, default=2500)
    p.add_argument("--ddim-steps", type=int, default=50)
    p.add_argument("--schedulers", default="dpm-solver++,unipc,diffusers-ddim",
                   help="speed: diffusers schedulers to add, comma-separated (needs ppdgm[diffusers])")
    p.add_argument("--scheduler-steps", type=int, default=20)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--bound-points", type=int, default=None,
                   help="test points for the bound (default: fit_diffusion's, 1000 or 100 for images)")
    p.add_argument("--plots", action="store_true", help="also write the run's figures")
    p.add_argument("--channels", type=int, default=None, help="U-Net base width (default 32)")
    p.add_argument("--results", default=str(RESULTS))
    p.add_argument("--runs", default=str(RUNS), help="where trained runs go")
    args = p.parse_args(argv)
    if args.part == "rebound" and args.checkpoint is None:
        p.error("rebound: --checkpoint is needed")
    images = args.part in ("bound", "rebound") or (args.part == "overhead" and args.workload == "unet")
    args.data = args.data or ("digits" if images else "grid25")
    args.epochs = args.epochs or {"speed": 20, "overhead": 6, "bound": 50, "rebound": 1}[args.part]
    args.batch_size = args.batch_size or (128 if images else 100)
    args.lr = args.lr or (2e-4 if images else 1e-3)
    torch.set_num_threads(args.threads)
    body = {"speed": speed, "overhead": overhead, "bound": bound, "rebound": rebound}[args.part](args)
    record = _record(args.part, args, argv, body)
    out = Path(args.results)
    out.mkdir(parents=True, exist_ok=True)
    name = f"diffusion_{args.part}" + (f"_{args.workload}" if args.part == "overhead" else "") + (
        f"_{args.variance}" if args.part == "rebound" else "")
    (out / f"{name}.json").write_text(json.dumps(record, indent=2) + "\n")
    table = markdown(args.part, record)
    (out / f"{name}.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
