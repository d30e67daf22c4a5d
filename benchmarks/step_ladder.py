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

    python benchmarks/step_ladder.py          # writes benchmarks/results/step-ladder.{json,md}
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--block", type=int, default=50, help="steps of one rung before the next")
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--results", default=str(RESULTS))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = (torch.rand(BATCH * 40, 784) < 0.3).float()
    batches = x.split(BATCH)

    pyro.clear_param_store()
    pyro.set_rng_seed(0)
    engine_vae = VAE(x_shape=(784,), z_dim=Z_DIM, hidden=(400,))
    copies = {name: VAE(x_shape=(784,), z_dim=Z_DIM, hidden=(400,))
              for name in ("distributions", "pyro", "pyro_statements")}
    hand = HandVAE()
    for vae in copies.values():
        vae.load_state_dict(engine_vae.state_dict())
    hand.encoder.load_state_dict(engine_vae.encoder.state_dict())
    hand.decoder.load_state_dict(engine_vae.decoder.state_dict())
    same = _same_loss(hand, copies["distributions"], copies["pyro"], batches[0])

    engine = Engine(engine_vae.model, engine_vae.guide, Trace_ELBO(), config=TrainConfig(
        epochs=1, batch_size=BATCH, lr=LR, device="cpu", progress=False, seed=0))
    engine.fit(x[: BATCH * 4])  # its first step finds the parameters; validation off afterwards
    position = type("Position", (), {"step": 0, "epoch": 1, "batch": 0})()
    optimizers = {name: torch.optim.Adam(m.parameters(), lr=LR) for name, m in copies.items()}
    optimizers["pytorch"] = torch.optim.Adam(hand.parameters(), lr=LR)
    reads = DirectReads([copies["pyro"]], list(copies["pyro"].parameters()))
    elbo = Trace_ELBO()

    def loss_of(name: str, batch: torch.Tensor) -> torch.Tensor:
        if name == "pytorch":
            return hand.loss(batch)
        vae = copies[name]
        if name == "distributions":
            return _distributions_loss(vae, batch)
        with local_params(), reads if name == "pyro" else contextlib.nullcontext():
            return elbo.differentiable_loss(vae.model, vae.guide, batch)

    def step(name: str, batch: torch.Tensor) -> None:
        if name == "engine":
            engine._step((batch,), position)  # noqa: SLF001 - a benchmark times the engine's step
            return
        opt = optimizers[name]
        opt.zero_grad(set_to_none=True)
        loss = loss_of(name, batch)
        loss.backward()
        opt.step()
        loss.item()

    times: dict[str, list[float]] = {name: [] for name in RUNGS}
    with pyro.validation_enabled(False):
        for _ in range(args.rounds):
            for name in RUNGS:
                started = time.perf_counter()
                for i in range(args.block):
                    step(name, batches[i % len(batches)])
                times[name].append(1e3 * (time.perf_counter() - started) / args.block)
    medians = {name: statistics.median(values[1:] or values) for name, values in times.items()}
    record = {
        "benchmark": "step ladder",
        "what": "ms per training step, 784-400-20 MLP VAE, Trace_ELBO, batch 128, Adam(1e-3)",
        "rungs": RUNGS, "median_ms_per_step": medians,
        "ratio_to_pytorch": {k: v / medians["pytorch"] for k, v in medians.items()},
        "ms_per_step": times, "same_loss_check": same, "block": args.block,
        "rounds": args.rounds, "threads": args.threads,
        "versions": {"torch": torch.__version__, "pyro": pyro.__version__},
        "command": "python benchmarks/step_ladder.py " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    out = Path(args.results)
    out.mkdir(parents=True, exist_ok=True)
    (out / "step-ladder.json").write_text(json.dumps(record, indent=2) + "\n")
    (out / "step-ladder.md").write_text(markdown(record))
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
        delta = f"{m[name] - m[BELOW[name]]:+.3f}" if name in BELOW else ""
        lines.append(f"| {label} | {m[name]:.3f} | {ratio[name]:.3f}x | {delta} |")
    return ("\n".join(lines) + f"\n\nMedians of {r['rounds'] - 1} rounds of {r['block']} steps "
            f"per rung (after one warm-up round), interleaved, {r['threads']} threads; torch "
            f"{r['versions']['torch']}, Pyro {r['versions']['pyro']}. The last column compares "
            f"each row with the one it adds to: {', '.join(f'{k} with {v}' for k, v in BELOW.items())}. "
            f"Same loss on one batch and noise: {r['same_loss_check']}. "
            f"Command: `{r['command']}`.\n")


if __name__ == "__main__":
    sys.exit(main())
