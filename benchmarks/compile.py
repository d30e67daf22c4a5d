"""Does ``torch.compile`` pay for ppdgm's networks? Eager against compiled training steps.

One training step (forward, squared-error loss, backward, Adam) of the diffusion denoisers, the
U-Net on 8x8 images (batch 128) and the MLP on 2-D points (batch 100), run eagerly and through
``torch.compile`` on two copies of the same network. Rounds alternate between the two so they
share the machine's load alike. Reported: the compile time (the first compiled step, from an
empty Inductor cache, as a user's first run pays it) and the median step time of each after it.

    python benchmarks/compile.py                       # CPU, one thread
    python benchmarks/compile.py --device cuda

Writes ``compile.json`` and ``compile.md`` to ``--results``.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from ppdgm.models.denoisers import DenoisingMLP, DenoisingUNet

RESULTS = Path(__file__).resolve().parent / "results"
WORKLOADS = ("unet", "mlp")


def _network(name: str, device: torch.device) -> tuple[torch.nn.Module, torch.Tensor]:
    if name == "unet":
        net = DenoisingUNet((1, 8, 8), channels=32, multipliers=(1, 2), time_dim=128)
        x = torch.randn(128, 1, 8, 8)
    else:
        net = DenoisingMLP(2, (256, 256, 256), time_dim=64, fourier=8)
        x = torch.randn(100, 2)
    return net.to(device), x.to(device)


def _steps(net: torch.nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, n: int) -> list[float]:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        t = torch.randint(1, 1000, (x.shape[0],), device=x.device).to(x.dtype)
        eps = torch.randn_like(x)
        loss = (net(x + eps, t) - eps).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if x.device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    return times


def measure(name: str, device: torch.device, rounds: int, steps: int) -> dict[str, Any]:
    torch.manual_seed(0)
    eager, x = _network(name, device)
    twin = copy.deepcopy(eager)
    # Dynamo keeps compiled graphs per code object for the whole process, and one compiled for an
    # earlier network of the same class would be reused here: start from none.
    torch._dynamo.reset()
    compiled = torch.compile(twin)
    opt_eager = torch.optim.Adam(eager.parameters(), lr=1e-4)
    opt_compiled = torch.optim.Adam(twin.parameters(), lr=1e-4)
    compile_seconds = _steps(compiled, opt_compiled, x, 1)[0]
    _steps(eager, opt_eager, x, 1)
    times: dict[str, list[float]] = {"eager": [], "compiled": []}
    for _ in range(rounds):
        times["eager"] += _steps(eager, opt_eager, x, steps)
        times["compiled"] += _steps(compiled, opt_compiled, x, steps)
    med = {k: statistics.median(v) * 1000 for k, v in times.items()}
    return {"workload": name, "batch": x.shape[0],
            "parameters": sum(p.numel() for p in eager.parameters()),
            "compile_seconds": round(compile_seconds, 4), "median_step_ms": med,
            "speedup": med["eager"] / med["compiled"], "steps_each": rounds * steps}


def markdown(record: dict[str, Any]) -> str:
    lines = ["| workload | parameters | eager ms/step | compiled ms/step | speed-up | compile s |",
             "|---|---|---|---|---|---|"]
    for r in record["results"]:
        lines.append(f"| {r['workload']} (batch {r['batch']}) | {r['parameters'] / 1e6:.2f} M "
                     f"| {r['median_step_ms']['eager']:.2f} | {r['median_step_ms']['compiled']:.2f} "
                     f"| **{r['speedup']:.2f}x** | {r['compile_seconds']:.1f} |")
    lines += ["", f"Command: `{record['command']}` ({record['threads']} CPU thread(s), "
              f"{record['device']}; torch {record['versions']['torch']}).", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workloads", default=",".join(WORKLOADS), help="unet,mlp (default both)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--rounds", type=int, default=5, help="alternations of eager and compiled steps")
    p.add_argument("--steps", type=int, default=20, help="steps of each per round")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--results", default=str(RESULTS))
    args = p.parse_args(argv)
    workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    for w in workloads:
        if w not in WORKLOADS:
            p.error(f"--workloads: expected some of {', '.join(WORKLOADS)}, got {w!r}")
    for flag in ("rounds", "steps", "threads"):
        if getattr(args, flag) < 1:
            p.error(f"--{flag}: expected an int >= 1, got {getattr(args, flag)}")
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    # A cold cache: the compile time is what a first run pays, not a cache hit.
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="ppdgm-inductor-")
    record = {"benchmark": "compile", "device": str(device), "threads": torch.get_num_threads(),
              "results": [measure(w, device, args.rounds, args.steps) for w in workloads],
              "command": "python benchmarks/compile.py " + shlex.join(sys.argv[1:] if argv is None else argv),
              "versions": {"torch": torch.__version__, "python": platform.python_version()}}
    out = Path(args.results)
    out.mkdir(parents=True, exist_ok=True)
    (out / "compile.json").write_text(json.dumps(record, indent=2) + "\n")
    table = markdown(record)
    (out / "compile.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
