"""RBM benchmarks: block-Gibbs sweeps per second, and the AIS test log-likelihood on MNIST.

``sweeps``: one 784-500 RBM, 100 chains, the same sweep (h ~ p(h | v), then v ~ p(v | h)) run
three ways in one process, interleaved, median of ``--repeats`` timings each:

* a hand-written PyTorch loop (two matmuls, two sigmoids, two ``bernoulli`` per sweep);
* ppdgm's pure :func:`~ppdgm.inference.mcmc.gibbs_step` in a loop (what ``RBM.sample``, CD and
  AIS run);
* the hand-written loop again, storing every draw (h and v, flattened and stacked at the end, as
  ``pyro.infer.MCMC`` stores them);
* ppdgm's :class:`~ppdgm.inference.mcmc.RBMGibbs` kernel under ``pyro.infer.MCMC``, which
  stores every draw and keeps flip-rate statistics. Its fair reference is the storing loop.

``nll``: a 784-500 RBM trained by CD-k on the static binarized MNIST (50000 training images),
log Z by AIS from the base-rate RBM with Salakhutdinov and Murray's 14,500 temperatures, and the
mean test log p(x). Their CD-25 RBM with 500 hidden units: -86.34 nats.

    python benchmarks/rbm.py sweeps
    python benchmarks/rbm.py nll --cd-k 25 --epochs 50 --out benchmarks/runs/rbm-cd25
    python benchmarks/rbm.py nll --cd-k 1 --cd-k-final 25 --lr-final 0.005 --ais-runs 1000 \
        --epochs 200 --out benchmarks/runs/rbm-cd1-25    # their schedule: sweeps 1 -> 25, lr decayed
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path

import torch
from pyro.infer import MCMC

from ppdgm._pyro import local_params
from ppdgm.data import load_dataset
from ppdgm.inference import TrainConfig
from ppdgm.inference.mcmc import RBMGibbs, gibbs_step
from ppdgm.models.rbm import RBM
from ppdgm.recipes import fit_rbm

RESULTS = Path(__file__).resolve().parent / "results"
ANCHOR = {"source": "Salakhutdinov & Murray (2008), CD-25, 500 hidden units", "test_log_px": -86.34}


def _hand_written(v, W, b, c, sweeps):
    for _ in range(sweeps):
        h = torch.bernoulli(torch.sigmoid(v @ W + c))
        v = torch.bernoulli(torch.sigmoid(h @ W.T + b))
    return v


def _hand_written_storing(v, W, b, c, sweeps):
    draws = []
    for _ in range(sweeps):
        h = torch.bernoulli(torch.sigmoid(v @ W + c))
        v = torch.bernoulli(torch.sigmoid(h @ W.T + b))
        draws.append(torch.cat([h.reshape(-1), v.reshape(-1)]))
    return torch.stack(draws)


def _pure_steps(v, W, b, c, sweeps):
    for _ in range(sweeps):
        v = gibbs_step(v, W, b, c).v
    return v


def _kernel(rbm, chains, sweeps):
    with local_params():
        mcmc = MCMC(RBMGibbs(rbm, chains=chains), num_samples=sweeps, warmup_steps=0, disable_progbar=True)
        mcmc.run(None, 1)
    return mcmc


def sweeps(args) -> dict:
    torch.manual_seed(0)
    device = torch.device(args.device)
    rbm = RBM(visible=784, hidden=args.hidden, init_scale=0.1).to(device)
    W, b, c = (t.detach() for t in (rbm.weight, rbm.visible_bias, rbm.hidden_bias))
    v0 = torch.bernoulli(torch.full((args.chains, 784), 0.5, device=device))
    ways = {"pytorch loop": lambda: _hand_written(v0, W, b, c, args.sweeps),
            "ppdgm gibbs_step": lambda: _pure_steps(v0, W, b, c, args.sweeps),
            "pytorch loop storing every draw": lambda: _hand_written_storing(v0, W, b, c, args.sweeps),
            "ppdgm RBMGibbs under pyro MCMC": lambda: _kernel(rbm, args.chains, args.sweeps)}
    times: dict[str, list[float]] = {name: [] for name in ways}
    for fn in ways.values():
        fn()  # warm-up: allocator and first-call costs
    for _ in range(args.repeats):
        for name, fn in ways.items():
            started = time.perf_counter()
            fn()
            if device.type == "cuda":
                torch.cuda.synchronize()
            times[name].append(time.perf_counter() - started)
    plain = statistics.median(times["pytorch loop"])
    storing = statistics.median(times["pytorch loop storing every draw"])
    rows = [{"way": name, "sweeps_per_s": round(args.sweeps / statistics.median(t), 1),
             "ratio_to_pytorch_loop": round(plain / statistics.median(t), 3),
             "ratio_to_storing_loop": round(storing / statistics.median(t), 3)} for name, t in times.items()]
    return {"benchmark": "rbm-sweeps", "device": args.device, "visible": 784, "hidden": args.hidden,
            "chains": args.chains,
            "sweeps": args.sweeps, "repeats": args.repeats, "rows": rows}


def nll(args) -> dict:
    data = load_dataset("binarized-mnist", path=args.data_path)
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                      device=args.device, out_dir=args.out, resume=Path(args.out, "checkpoint.pt").exists(),
                      checkpoint_every=args.checkpoint_every, progress=False)
    result = fit_rbm(data, cfg, hidden=args.hidden, cd_k=args.cd_k, persistent=args.persistent,
                     ais_runs=args.ais_runs, figures=True, cd_k_final=args.cd_k_final,
                     lr_final=args.lr_final)
    m = result.metrics
    return {"benchmark": "rbm-nll", **m, "anchor": ANCHOR}


def _nll_name(args) -> str:
    """``rbm-nll-cd25``, ``rbm-nll-cd1-25`` (sweeps grown), ``rbm-nll-pcd1``: one file a recipe."""
    sweeps = str(args.cd_k) if args.cd_k_final is None else f"{args.cd_k}-{args.cd_k_final}"
    return f"rbm-nll-{'p' if args.persistent else ''}cd{sweeps}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="what", required=True)
    s = sub.add_parser("sweeps", help="block-Gibbs sweeps per second against a PyTorch loop")
    s.add_argument("--hidden", type=int, default=500)
    s.add_argument("--chains", type=int, default=100)
    s.add_argument("--sweeps", type=int, default=200)
    s.add_argument("--repeats", type=int, default=7)
    s.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    n = sub.add_parser("nll", help="train by CD-k on binarized MNIST, AIS test log-likelihood")
    n.add_argument("--hidden", type=int, default=500)
    n.add_argument("--cd-k", type=int, default=25)
    n.add_argument("--cd-k-final", type=int, default=None,
                   help="grow the sweeps from --cd-k to this (Salakhutdinov and Murray: 1 to 25)")
    n.add_argument("--lr-final", type=float, default=None, help="geometric decay of lr to this")
    n.add_argument("--persistent", action="store_true")
    n.add_argument("--epochs", type=int, default=50)
    n.add_argument("--batch-size", type=int, default=100)
    n.add_argument("--lr", type=float, default=0.05, help="SGD step on the batch-mean gradient")
    n.add_argument("--seed", type=int, default=0)
    n.add_argument("--device", default="auto")
    n.add_argument("--ais-runs", type=int, default=100)
    n.add_argument("--checkpoint-every", type=int, default=500)
    n.add_argument("--data-path", default=None)
    n.add_argument("--out", required=True)
    for q in (s, n):
        q.add_argument("--threads", type=int, default=None)
        q.add_argument("--results", default=str(RESULTS))
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    result = sweeps(args) if args.what == "sweeps" else nll(args)
    result.update({"threads": torch.get_num_threads(), "torch": torch.__version__,
                   "machine": platform.processor() or platform.machine(),
                   "command": "python benchmarks/rbm.py "
                   + shlex.join(argv if argv is not None else sys.argv[1:])})
    results = Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    name = "rbm-sweeps" if args.what == "sweeps" else _nll_name(args)
    (results / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
