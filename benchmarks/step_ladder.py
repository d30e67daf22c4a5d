"""Where the engine's VAE step spends its time beyond a hand-written loop, rung by rung, measured.

The 784-400-20 MLP VAE of ``benchmarks/overhead.py`` (Trace_ELBO, batch 128, Adam 1e-3) takes
its training step five ways, each adding one layer to the one before, interleaved in blocks of
``--block`` steps for ``--rounds`` rounds in one process (the medians are reported):

1. the PyTorch loop: the loss as tensor algebra (``binary_cross_entropy_with_logits`` summed);
2. the same densities as ``torch.distributions`` objects (Normal, Bernoulli, Independent), each
   site's log-density kept per data point and summed: what any program built from distributions
   pays, with Pyro's validation off as the engine has it after its first epoch;
3. Pyro's ``Trace_ELBO`` on ppdgm's model/guide pair, the networks' weights read directly
   (:mod:`ppdgm.inference.reads`), as the engine runs it;
4. the same with a ``param`` statement on every weight read, as plain ``pyro.infer.SVI`` runs it;
5. the engine's own step (rung 3 plus its NaN/Inf guards, history and bookkeeping).

From one RNG state rungs 1 to 3 compute the same loss on the same batch; the script checks it.

``--workload diffusion-mlp`` climbs the same ladder for the 0.2 M-parameter denoiser of
``benchmarks/diffusion.py overhead`` on grid25 (batch 100, one thread there): the hand loop of that
benchmark, then ppdgm's ``DenoisingLoss`` on the Diffusion model/guide pair (it has no density
rung: the loss is a squared error, written the same way on both sides).

    python benchmarks/step_ladder.py          # writes benchmarks/results/step-ladder.{json,md}
    python benchmarks/step_ladder.py --workload diffusion-mlp --threads 1   # step-ladder-diffusion-mlp.*
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import statistics
import sys
import time
from pathlib import Path

import pyro
import torch
import torch.distributions as td
from pyro.infer import Trace_ELBO

sys.path.insert(0, str(Path(__file__).resolve().parent))
from overhead import BATCH, LR, Z_DIM, HandVAE  # noqa: E402  (the same networks and loss)

from ppdgm._pyro import local_params  # noqa: E402
from ppdgm.inference import Engine, TrainConfig  # noqa: E402
from ppdgm.inference.reads import DirectReads  # noqa: E402
from ppdgm.models import VAE  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
RUNGS = {
    "pytorch": "PyTorch loop (hand-written loss)",
    "distributions": "+ the densities as torch.distributions objects",
    "pyro": "+ Pyro's Trace_ELBO on the model/guide (weights read directly)",
    "pyro_statements": "Pyro with a param statement per weight read (as plain SVI)",
    "engine": "+ the engine's step (guards, history): ppdgm",
}
BELOW = {"distributions": "pytorch", "pyro": "distributions", "pyro_statements": "pyro",
         "engine": "pyro"}


def _distributions_loss(vae: VAE, x: torch.Tensor) -> torch.Tensor:
    loc, scale = vae._encode(x)  # noqa: SLF001 - the model's own networks, without Pyro
    q = td.Independent(td.Normal(loc, scale), 1)
    z = q.rsample()
    prior = td.Independent(td.Normal(vae._prior_loc, vae._prior_scale).expand([len(x), Z_DIM]), 1)  # noqa: SLF001
    likelihood = td.Independent(td.Bernoulli(logits=vae.decoder(z)), 1)
    return -(likelihood.log_prob(x).sum() + prior.log_prob(z).sum() - q.log_prob(z).sum())


def _vae_rungs(threads_note: str) -> tuple[dict, Engine, list[torch.Tensor], dict]:
    torch.manual_seed(0)
    x = (torch.rand(BATCH * 40, 784) < 0.3).float()
    pyro.set_rng_seed(0)
    engine_vae = VAE(x_shape=(784,), z_dim=Z_DIM, hidden=(400,))
    copies = {name: VAE(x_shape=(784,), z_dim=Z_DIM, hidden=(400,))
              for name in ("distributions", "pyro", "pyro_statements")}
    hand = HandVAE()
    for vae in copies.values():
        vae.load_state_dict(engine_vae.state_dict())
    hand.encoder.load_state_dict(engine_vae.encoder.state_dict())
    hand.decoder.load_state_dict(engine_vae.decoder.state_dict())
    same = _same_loss(hand, copies["distributions"], copies["pyro"], x[:BATCH])
    engine = Engine(engine_vae.model, engine_vae.guide, Trace_ELBO(), config=TrainConfig(
        epochs=1, batch_size=BATCH, lr=LR, device="cpu", progress=False, seed=0))
    engine.fit(x[: BATCH * 4])  # its first step finds the parameters; validation off afterwards
    reads = DirectReads([copies["pyro"]], list(copies["pyro"].parameters()))
    elbo = Trace_ELBO()

    def pyro_loss(name: str):
        vae = copies[name]

        def loss(batch: torch.Tensor) -> torch.Tensor:
            with local_params(), reads if name == "pyro" else contextlib.nullcontext():
                return elbo.differentiable_loss(vae.model, vae.guide, batch)
        return vae, loss

    rungs = {"pytorch": (hand, hand.loss),
             "distributions": (copies["distributions"],
                               lambda b: _distributions_loss(copies["distributions"], b)),
             "pyro": pyro_loss("pyro"), "pyro_statements": pyro_loss("pyro_statements")}
    what = f"ms per training step, 784-400-20 MLP VAE, Trace_ELBO, batch 128, Adam(1e-3), {threads_note}"
    return rungs, engine, list(x.split(BATCH)), {"what": what, "same_loss_check": same}


def _diffusion_rungs(threads_note: str) -> tuple[dict, Engine, list[torch.Tensor], dict]:
    from diffusion import _hand_loss  # noqa: PLC0415 - the diffusion benchmark's own hand loop

    from ppdgm.data import load_dataset  # noqa: PLC0415
    from ppdgm.inference.objectives.denoising import DenoisingLoss  # noqa: PLC0415
    from ppdgm.models import Diffusion  # noqa: PLC0415
    from ppdgm.models.denoisers import DenoisingMLP  # noqa: PLC0415
    from ppdgm.models.diffusion import _FlatDenoiser, diffusion_config_for  # noqa: PLC0415

    ds = load_dataset("grid25", num_train=4000)
    cfg = diffusion_config_for(ds)
    pyro.set_rng_seed(0)
    models = {name: Diffusion(cfg) for name in ("engine", "pyro", "pyro_statements", "pytorch")}
    for model in models.values():
        model.load_state_dict(models["engine"].state_dict())
    plain = models.pop("pytorch")
    objective = DenoisingLoss()
    engine = Engine(models["engine"].model, models["engine"].guide, objective, config=TrainConfig(
        epochs=1, batch_size=100, lr=LR, device="cpu", progress=False, seed=0))
    engine.fit(ds.train[:400])
    reads = DirectReads([models["pyro"]], list(models["pyro"].parameters()))

    def pyro_loss(name: str):
        model = models[name]

        def loss(batch: torch.Tensor) -> torch.Tensor:
            with local_params(), reads if name == "pyro" else contextlib.nullcontext():
                return objective(model.model, model.guide, batch)
        return model, loss

    # The hand loop runs the same denoiser as plain modules, as benchmarks/diffusion.py does.
    hand_net = _FlatDenoiser(DenoisingMLP(2, cfg.hidden, time_dim=cfg.time_dim, fourier=cfg.fourier),
                             cfg.x_shape)
    hand_net.load_state_dict(plain.denoiser.state_dict())
    schedule = plain.schedule
    rungs = {"pytorch": (hand_net, lambda b: _hand_loss(hand_net, schedule, plain.normalize(b),
                                                          cfg.timesteps)),
             "pyro": pyro_loss("pyro"), "pyro_statements": pyro_loss("pyro_statements")}
    what = f"ms per training step, diffusion MLP (0.2 M) on grid25, batch 100, Adam(1e-3), {threads_note}"
    labels = {"pyro": "+ Pyro: ppdgm's DenoisingLoss on the model/guide (weights read directly)"}
    return rungs, engine, list(ds.train.split(100)), {"what": what, "labels": labels}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workload", choices=["vae", "diffusion-mlp"], default="vae")
    p.add_argument("--block", type=int, default=50, help="steps of one rung before the next")
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--results", default=str(RESULTS))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    pyro.clear_param_store()
    note = f"{args.threads} CPU thread{'s' if args.threads > 1 else ''}"
    build = _vae_rungs if args.workload == "vae" else _diffusion_rungs
    rungs, engine, batches, extra = build(note)
    optimizers = {name: torch.optim.Adam(module.parameters(), lr=LR) for name, (module, _) in rungs.items()}
    position = type("Position", (), {"step": 0, "epoch": 1, "batch": 0})()

    def step(name: str, batch: torch.Tensor) -> None:
        if name == "engine":
            engine._step((batch,), position)  # noqa: SLF001 - a benchmark times the engine's step
            return
        opt = optimizers[name]
        opt.zero_grad(set_to_none=True)
        loss = rungs[name][1](batch)
        loss.backward()
        opt.step()
        loss.item()

    names = [*rungs, "engine"]
    times: dict[str, list[float]] = {name: [] for name in names}
    with pyro.validation_enabled(False):
        for _ in range(args.rounds):
            for name in names:
                started = time.perf_counter()
                for i in range(args.block):
                    step(name, batches[i % len(batches)])
                times[name].append(1e3 * (time.perf_counter() - started) / args.block)
    medians = {name: statistics.median(values[1:] or values) for name, values in times.items()}
    labels = {**RUNGS, **extra.pop("labels", {})}
    record = {
        "benchmark": "step ladder", "workload": args.workload, **extra,
        "rungs": {k: labels[k] for k in names},
        "median_ms_per_step": medians,
        "ratio_to_pytorch": {k: v / medians["pytorch"] for k, v in medians.items()},
        "ms_per_step": times, "block": args.block, "rounds": args.rounds, "threads": args.threads,
        "versions": {"torch": torch.__version__, "pyro": pyro.__version__},
        "command": "python benchmarks/step_ladder.py " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    stem = "step-ladder" if args.workload == "vae" else f"step-ladder-{args.workload}"
    out = Path(args.results)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(record, indent=2) + "\n")
    (out / f"{stem}.md").write_text(markdown(record))
    print(markdown(record))
    return 0


def _same_loss(hand: HandVAE, dists: VAE, pyro_vae: VAE, batch: torch.Tensor) -> dict[str, float]:
    # One noise draw for all three: each side draws eps ~ N(0, I) first from the same seed.
    out = {}
    with torch.no_grad(), pyro.validation_enabled(False):
        torch.manual_seed(1)
        out["pytorch"] = hand.loss(batch, torch.empty(len(batch), Z_DIM).normal_()).item()
        torch.manual_seed(1)
        out["distributions"] = _distributions_loss(dists, batch).item()
        torch.manual_seed(1)
        with local_params():
            out["pyro"] = Trace_ELBO().loss(pyro_vae.model, pyro_vae.guide, batch)
    spread = max(out.values()) - min(out.values())
    if not spread <= 1e-4 * max(1.0, abs(out["pytorch"])) or not math.isfinite(spread):
        raise RuntimeError(f"the rungs compute different losses on the same batch and noise: {out}")
    return out


def markdown(r: dict) -> str:
    m, ratio = r["median_ms_per_step"], r["ratio_to_pytorch"]
    lines = [f"| {r['what']} | ms/step | / PyTorch | step over the rung above (ms) |",
             "|---|---|---|---|"]
    for name, label in r["rungs"].items():
        below = BELOW.get(name)
        below = below if below in m else "pytorch"
        delta = f"{m[name] - m[below]:+.3f}" if name != "pytorch" else ""
        lines.append(f"| {label} | {m[name]:.3f} | {ratio[name]:.3f}x | {delta} |")
    same = r.get("same_loss_check")
    return ("\n".join(lines) + f"\n\nMedians of {r['rounds'] - 1} rounds of {r['block']} steps "
            f"per rung (after one warm-up round), interleaved, {r['threads']} threads; torch "
            f"{r['versions']['torch']}, Pyro {r['versions']['pyro']}. The last column compares "
            "each row with the one it adds to (the statements row and the engine row with the "
            "Pyro row). " + (f"Same loss on one batch and noise: {same}. " if same else "")
            + f"Command: `{r['command']}`.\n")


if __name__ == "__main__":
    sys.exit(main())
