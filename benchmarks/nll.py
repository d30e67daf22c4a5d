"""Test NLL on static binarized MNIST: VAE and IWAE(k=50) with Burda et al.'s networks, and the
sigmoid belief net 200-200-200 trained by wake-sleep, RWS, VIMCO and NVIL.

VAE/IWAE (Burda, Grosse and Salakhutdinov 2015, one stochastic layer): encoder
784-200-200-(50 means, 50 scales) and decoder 50-200-200-784, tanh hidden units, Bernoulli
pixels. SBN (Mnih and Gregor 2014; Mnih and Rezende 2016): three layers of 200 binary units with
linear sigmoid conditionals and a bottom-up recognition network of the same shape. Adam (eps
1e-4) with the learning rate decaying exponentially from --lr to --lr-final over the run.
Trained on the 50000 training images. Every --valid-every epochs the 10000 validation images are
scored with the bound the run trains (the ELBO, or IWAE(k) for k > 1) and the parameters with the
best score are kept in ``best.pt``. The reported figure is the test NLL of those
parameters (``--select last`` takes the last epoch's), importance-sampled with K = 5000 proposals
from the guide.

The run checkpoints every epoch (and every --checkpoint-every steps) and resumes where it stopped
when started again with the same arguments, so a long run may span several sittings and still
end with the parameters of one uninterrupted run.

    python benchmarks/nll.py --model vae --epochs 1000 --out benchmarks/runs/nll-vae
    python benchmarks/nll.py --model iwae --epochs 300 --batch-size 20 --out benchmarks/runs/nll-iwae
    python benchmarks/nll.py --model sbn-vimco --epochs 300 --out benchmarks/runs/nll-sbn-vimco

Writes ``benchmarks/results/nll-<model>.json`` and rewrites ``benchmarks/results/nll.md``, the
table of every model evaluated so far beside the published anchors. ``--eval-only`` evaluates the
last checkpoint of a run that has not finished (the table then says after how many epochs).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import shlex
import sys
import time
from pathlib import Path

import pyro
import torch
from pyro.infer import TraceGraph_ELBO

from ppdgm.data import load_dataset
from ppdgm.inference import (
    CHECKPOINT_NAME,
    Engine,
    History,
    Player,
    TrainConfig,
    adam,
    load_checkpoint,
    save_checkpoint,
)
from ppdgm.inference.evaluate import estimate_log_likelihood
from ppdgm.inference.objectives import build_objective
from ppdgm.inference.objectives.registry import build_player_objective
from ppdgm.models import VAE, DeepVAE, DeepVAEConfig, SBNConfig, SigmoidBeliefNet, VAEConfig
from ppdgm.recipes.sbn import NVIL_BASELINE_HIDDEN

RESULTS = Path(__file__).resolve().parent / "results"
ANCHORS = {
    "vae": {"target": 89.5, "published": 89.9, "reproduced": 89.78},
    # The same VAE with a zuko flow as its prior (MAF) or its guide (IAF): rows beside a plain VAE
    # trained for as many epochs (--name), not against a paper's architecture.
    "vae-maf-prior": {"target": None, "published": None, "reproduced": None},
    "vae-iaf-guide": {"target": None, "published": None, "reproduced": None},
    "iwae": {"target": 86.8, "published": 87.10, "reproduced": 86.82},
    # Burda et al. (2016), two stochastic layers, on dynamically binarized MNIST.
    "vae-2layer": {"target": None, "published": 85.33, "reproduced": None},
    "iwae-2layer": {"target": None, "published": 82.90, "reproduced": None},
    "sbn-vimco": {"target": 93.6, "published": 93.6, "reproduced": None},
    "sbn-nvil": {"target": 93.6, "published": 96.7, "reproduced": None},
    "sbn-nvil-tracegraph": {"target": 93.6, "published": 96.7, "reproduced": None},
    "sbn-wake-sleep": {"target": 93.6, "published": 101.0, "reproduced": None},
    "sbn-rws": {"target": 93.6, "published": None, "reproduced": None},
}
SBN_LAYERS = (200, 200, 200)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", choices=tuple(ANCHORS), required=True)
    p.add_argument("--k", type=int, default=50,
                   help="particles of IWAE, RWS and VIMCO (the VAE, wake-sleep and NVIL use 1)")
    p.add_argument("--epochs", type=int, default=1000)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--lr-final", type=float, default=1e-4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--data-path", default=None, help="binarized MNIST (.npz or .amat folder)")
    p.add_argument("--out", required=True, help="run directory (checkpoint, history)")
    p.add_argument("--checkpoint-every", type=int, default=200)
    p.add_argument("--valid-every", type=int, default=10)
    p.add_argument("--eval-k", type=int, default=5000)
    p.add_argument("--test-points", type=int, default=None,
                   help="evaluate on N test images drawn uniformly (seed 0) (default: all 10000)")
    p.add_argument("--eval-only", action="store_true",
                   help="evaluate the run's last checkpoint as it is, without training further")
    p.add_argument("--select", choices=("best-valid", "last"), default="best-valid",
                   help="evaluate the parameters with the best validation bound, or the last ones")
    p.add_argument("--results", default=str(RESULTS))
    p.add_argument("--name", default=None,
                   help="the result's name, nll-NAME.json (default: the model's); to keep a shorter "
                   "run beside a full one")
    p.add_argument("--flow-transforms", type=int, default=2, help="vae-maf-prior, vae-iaf-guide")
    p.add_argument("--flow-hidden", type=int, nargs="+", default=[200, 200],
                   help="vae-maf-prior, vae-iaf-guide: hidden widths of each flow step")
    return p.parse_args(argv)


def build(args: argparse.Namespace, x_shape: tuple[int, ...]) -> dict:
    """The model, objective, players and validation bound of ``args.model``."""
    gamma = (args.lr_final / args.lr) ** (1.0 / args.epochs)

    def player(name: str, owns: str = "all") -> Player:
        return Player(name, owns=owns, optimizer=adam(args.lr, eps=1e-4),
                      scheduler=lambda opt: torch.optim.lr_scheduler.ExponentialLR(opt, gamma))

    if args.model in ("vae", "iwae", "vae-maf-prior", "vae-iaf-guide"):
        flow = {"flow_transforms": args.flow_transforms, "flow_hidden": tuple(args.flow_hidden)}
        flow |= {"vae-maf-prior": {"prior": "maf"}, "vae-iaf-guide": {"posterior": "iaf"}}.get(args.model, {})
        config = VAEConfig(x_shape=x_shape, z_dim=50, hidden=(200, 200), activation="tanh",
                           likelihood="bernoulli", **flow)
        k = args.k if args.model == "iwae" else 1
        flows = f", {args.flow_transforms} steps of {'-'.join(map(str, args.flow_hidden))}"
        label = {"iwae": f"IWAE(k={k})", "vae": "VAE, ELBO (Trace_ELBO, 1 sample)",
                 "vae-maf-prior": f"VAE, ELBO, MAF prior (zuko{flows})",
                 "vae-iaf-guide": f"VAE, ELBO, IAF guide (zuko{flows})"}[args.model]
        return {"model": VAE(config), "players": [player("svi")], "k": k,
                "objective": build_objective("iwae" if args.model == "iwae" else "elbo", k=k),
                "bound": f"iwae-{k}" if args.model == "iwae" else "elbo", "label": label,
                "architecture": "784-200-200-50 (tanh), Bernoulli decoder 50-200-200-784",
                "spec": {"name": "vae", "config": dataclasses.asdict(config)}}
    if args.model in ("vae-2layer", "iwae-2layer"):
        config = DeepVAEConfig(x_shape=x_shape)  # 784-100-100-z1(100)-50-50-z2(50), tanh
        k = args.k if args.model.startswith("iwae") else 1
        objective = "iwae" if k > 1 else "elbo"
        return {"model": DeepVAE(config), "players": [player("svi")], "k": k,
                "objective": build_objective(objective, k=k),
                "bound": f"iwae-{k}" if k > 1 else "elbo",
                "label": f"IWAE(k={k}), two stochastic layers" if k > 1
                else "VAE, ELBO, two stochastic layers",
                "architecture": "784-100-100-z1(100)-50-50-z2(50) (tanh), mirrored decoder",
                "spec": {"name": "deep-vae", "config": dataclasses.asdict(config)}}
    name = args.model.removeprefix("sbn-")
    config = SBNConfig(x_shape=x_shape, layers=SBN_LAYERS,
                       baseline_hidden=NVIL_BASELINE_HIDDEN if name.startswith("nvil") else 0)
    k = args.k if name in ("rws", "vimco") else 1
    if name == "nvil-tracegraph":  # what --model sbn-nvil ran before NVIL was written as published
        objective, registry_players = TraceGraph_ELBO(), [Player("svi")]
    else:
        objective, registry_players = build_player_objective(name, k=k, lr=args.lr)
    labels = {"wake-sleep": "wake-sleep", "rws": f"RWS(k={k})", "vimco": f"VIMCO(k={k})",
              "nvil": "NVIL (local signals, neural baselines, running centring and normalisation)",
              "nvil-tracegraph": "NVIL-style (TraceGraph_ELBO, neural baselines)"}
    return {"model": SigmoidBeliefNet(config), "objective": objective, "k": k,
            "players": [player(p.name, p.owns) for p in registry_players],
            "bound": f"iwae-{k}" if k > 1 else "elbo", "label": f"SBN, {labels[name]}",
            "architecture": "SBN 200-200-200 (linear sigmoid layers), recognition 784-200-200-200",
            "spec": {"name": "sbn", "config": dataclasses.asdict(config)}}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cli_args = sys.argv[1:] if argv is None else argv
    if args.threads:
        torch.set_num_threads(args.threads)
    data = load_dataset("binarized-mnist", path=args.data_path)
    pyro.set_rng_seed(args.seed)
    setup = build(args, tuple(data.event_shape))
    model, objective, players, k, bound = (setup[key] for key in
                                           ("model", "objective", "players", "k", "bound"))
    out = Path(args.out)
    train = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                        device=args.device, out_dir=str(out), checkpoint_every=args.checkpoint_every,
                        resume=(out / CHECKPOINT_NAME).exists(), progress=None)
    log = out / "valid.jsonl"
    best_path = out / "best.pt"  # the parameters with the best validation bound so far
    spec = {**setup["spec"], "data": data.name}

    def validate(engine: Engine, epoch: int) -> None:
        if (epoch + 1) % args.valid_every and epoch + 1 != args.epochs:
            return
        valid = data.valid.to(engine.device)
        # The bound the run trains: the ELBO (k = 1) or the IWAE(k) bound.
        est = estimate_log_likelihood(model.model, model.guide, valid, num_samples=k,
                                      batch_size=1000 // k or 1, seed=epoch).log_px
        row = {"epoch": epoch + 1, "valid_bound": est.mean, "bound": bound, "stderr": est.stderr,
               "train_loss": engine.history.epochs[-1]["loss_per_example"], "time": time.time()}
        best = load_checkpoint(best_path)["valid_bound"] if best_path.exists() else -float("inf")
        if est.mean > best:
            # With the model's spec, so `ppdgm sample|evaluate best.pt` can rebuild it.
            save_checkpoint({"epoch": epoch + 1, "valid_bound": est.mean, "model_spec": spec,
                             "modules": [model.state_dict()]}, best_path)
            row["best"] = True
        with log.open("a") as f:
            f.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)

    engine = Engine(model.model, model.guide, objective, players, train, callbacks=[validate],
                    model_spec=spec)
    if args.eval_only:
        state = load_checkpoint(out / CHECKPOINT_NAME, map_location=engine.device)
        model.load_state_dict(state["modules"][0])
        model.to(engine.device)
        history = History.from_state_dict(state["history"])
    else:
        history = engine.fit(data.train)
    epochs_done = len({r["epoch"] for r in history.epochs})
    train_seconds = history.wall_seconds()
    selected = {"rule": "last epoch", "epoch": epochs_done}
    if args.select == "best-valid" and best_path.exists():
        best = load_checkpoint(best_path, map_location=engine.device)
        model.load_state_dict(best["modules"][0])
        selected = {"rule": f"best validation {bound}, checked every {args.valid_every} epochs",
                    "epoch": best["epoch"], "valid_bound": best["valid_bound"]}

    started = time.perf_counter()
    test = data.test
    if args.test_points is not None and args.test_points < len(test):
        # A uniform subset, fixed by seed 0: the file's first images are not typical (more ink).
        pick = torch.randperm(len(test), generator=torch.Generator().manual_seed(0))[: args.test_points]
        test = test[pick.sort().values]
    test = test.to(engine.device)
    result = estimate_log_likelihood(model.model, model.guide, test, num_samples=args.eval_k,
                                     batch_size=100, seed=args.seed)
    eval_seconds = time.perf_counter() - started
    record = {
        "benchmark": "nll",
        "model": args.model,
        "objective": setup["label"],
        "architecture": setup["architecture"],
        "data": "binarized-mnist (static, Larochelle & Murray): train 50000, test 10000",
        "test_nll_nats": -result.log_px.mean,
        "test_nll_stderr": result.log_px.stderr,
        "test_elbo_nats": result.elbo.mean,
        "eval_k": args.eval_k,
        "test_points": len(test),
        "epochs": epochs_done,
        "selected": selected,
        "planned_epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": [args.lr, args.lr_final],
        "train_seconds": round(train_seconds, 1),
        "eval_seconds": round(eval_seconds, 1),
        "device": str(engine.device),
        "threads": torch.get_num_threads(),
        # A shorter run kept under its own name is not held to the full run's published figures.
        "anchors": ANCHORS[args.model] if args.name in (None, args.model)
        else dict.fromkeys(ANCHORS[args.model]),
        "command": "python benchmarks/nll.py " + " ".join(map(shlex.quote, cli_args)),
        "versions": {"torch": torch.__version__, "pyro": pyro.__version__,
                     "python": platform.python_version()},
    }
    results = Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    path = results / f"nll-{args.name or args.model}.json"
    path.write_text(json.dumps(record, indent=2) + "\n")
    (results / "nll.md").write_text(markdown_table(results))
    print(json.dumps(record, indent=2))
    return 0


def markdown_table(results: Path) -> str:
    """The NLL table from every ``nll-*.json`` in ``results``, with the published anchors."""
    lines = [
        "| model | test NLL, nats | K | test ELBO | epochs trained (selected) "
        "| train time | device | target | published | reproduced |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    commands = []
    records = {path.stem.removeprefix("nll-"): json.loads(path.read_text())
               for path in results.glob("nll-*.json")}
    order = list(ANCHORS)
    # A run kept under its own --name sits right after the full run of the same model.
    names = sorted((n for n, r in records.items() if r.get("model") in ANCHORS),
                   key=lambda n: (order.index(records[n]["model"]), n != records[n]["model"], n))
    for name in names:
        r = records[name]
        if r["objective"].startswith("ELBO"):  # records written before the label named the model
            r["objective"] = "VAE, " + r["objective"]
        a = r["anchors"]
        epochs = f"{r['epochs']}" + ("" if r["epochs"] == r["planned_epochs"]
                                     else f" of {r['planned_epochs']} planned")
        epochs += f" ({r['selected']['epoch']})"
        hours = r["train_seconds"] / 3600
        points = r.get("test_points", 10000)
        k_cell = f"{r['eval_k']}" + ("" if points == 10000 else f" ({points} test images drawn uniformly)")
        lines.append(
            f"| {r['objective']} | **{r['test_nll_nats']:.2f}** ± {r['test_nll_stderr']:.2f} "
            f"| {k_cell} | {r['test_elbo_nats']:.2f} | {epochs} | {hours:.1f} h | {r['device']}, "
            f"{r['threads']} thread(s) | {'<= ' + str(a['target']) if a['target'] else '-'} "
            f"| {a['published'] or '-'} "
            f"| {a['reproduced'] or '-'} |"
        )
        commands.append(f"- {name}: `{r['command']}`")
    return "\n".join(lines + ["", "Commands:", *commands]) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
