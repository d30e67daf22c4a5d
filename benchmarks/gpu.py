"""Throughput on an accelerator: VAE and diffusion training against plain PyTorch, Gibbs sweeps.

Runs four of the other benchmarks on one device and gathers their figures in one table:

* ``overhead.py``: the 784-400-20 VAE on binarized MNIST, ppdgm's engine against a hand-written
  PyTorch loop (and Pyro's SVI), epochs interleaved; examples per second and the ratio;
* ``diffusion.py overhead``: the diffusion denoiser (U-Net on images, MLP on grid25) and its loss,
  the engine against a hand-written loop; examples per second and the ratio;
* ``rbm.py sweeps``: block-Gibbs sweeps per second of a 784-500 RBM with ``--chains`` chains
  (1000 by default), ``gibbs_step`` and ``RBMGibbs`` under ``pyro.infer.MCMC`` against a loop;
* ``compile.py``: a denoiser training step eager against ``torch.compile`` (does compiling pay?).

Target on a GPU: engine / PyTorch <= 1.05 for both trainings. ``--quick`` shrinks every part to a
smoke test (it is how the test suite runs this script on a CPU).

    python benchmarks/gpu.py --device cuda --data-path ../shared/data/binarized_mnist.npz

Writes ``gpu.json`` and ``gpu.md`` (and each part's own files) to ``--results``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import shlex
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pyro
import torch

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "gpu"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", HERE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _read(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def run(args: argparse.Namespace) -> dict[str, Any]:
    out = Path(args.results)
    quick = args.quick
    common = ["--device", args.device, "--results", str(out)]
    vae_argv = ["--epochs", "2" if quick else "7", "--threads", str(args.threads), *common]
    if args.data_path:
        vae_argv += ["--data-path", args.data_path]
    if quick:
        vae_argv += ["--num-train", "100"]
    _load("overhead").main(vae_argv)
    diffusion = _load("diffusion")
    for workload in ("unet", "mlp"):
        argv = ["overhead", "--workload", workload, "--epochs", "2" if quick else "6",
                "--threads", str(args.threads), "--runs", str(out / "runs"), *common]
        if workload == "unet":
            argv += ["--data", args.image_data]
        if quick:
            argv += ["--num-train", "64", "--timesteps", "30", "--batch-size", "32"]
            argv += ["--channels", "8"] if workload == "unet" else []
        diffusion.main(argv)
    rbm_argv = ["sweeps", "--chains", str(args.chains), "--sweeps", "5" if quick else "200",
                "--repeats", "1" if quick else "7", "--threads", str(args.threads), *common]
    if quick:
        rbm_argv += ["--hidden", "16"]
    _load("rbm").main(rbm_argv)
    compile_argv = ["--device", args.device, "--threads", str(args.threads), "--results", str(out)]
    if quick:
        compile_argv += ["--workloads", "mlp", "--rounds", "1", "--steps", "2"]
    _load("compile").main(compile_argv)

    vae = _read(out / "overhead.json")
    rows = []
    n_vae = int(vae["data"].split("(")[1].split()[0])
    s = vae["median_seconds_after_warmup"]
    rows.append({"workload": "VAE 784-400-20, binarized MNIST", "examples": n_vae,
                 "pytorch_examples_per_s": n_vae / s["pytorch"], "ppdgm_examples_per_s": n_vae / s["ppdgm"],
                 "ratio": vae["ratio_ppdgm_over_pytorch"]})
    for workload in ("unet", "mlp"):
        d = _read(out / f"diffusion_overhead_{workload}.json")
        s = d["median_seconds_after_warmup"]
        rows.append({"workload": f"diffusion {workload} on {d['data']}", "examples": d["num_train"],
                     "pytorch_examples_per_s": d["num_train"] / s["pytorch"],
                     "ppdgm_examples_per_s": d["num_train"] / s["ppdgm"],
                     "ratio": d["ratio_ppdgm_over_pytorch"]})
    sweeps = _read(out / "rbm-sweeps.json")
    return {"benchmark": "gpu", "device": args.device,
            "device_name": torch.cuda.get_device_name() if args.device.startswith("cuda") else
            (platform.processor() or platform.machine()),
            "training": rows, "gibbs_sweeps": {"chains": sweeps["chains"], "rows": sweeps["rows"]},
            "compile": _read(out / "compile.json")["results"],
            "quick": quick,
            "versions": {"torch": torch.__version__, "pyro": pyro.__version__,
                         "python": platform.python_version()}}


def markdown(r: dict[str, Any], command: str) -> str:
    lines = [f"Device: {r['device_name']} ({r['device']}).", "",
             "| training | PyTorch loop examples/s | ppdgm examples/s | ppdgm / PyTorch time |",
             "|---|---|---|---|"]
    lines += [f"| {t['workload']} | {t['pytorch_examples_per_s']:.0f} | {t['ppdgm_examples_per_s']:.0f} "
              f"| **{t['ratio']:.3f}x** |" for t in r["training"]]
    lines += ["", f"| Gibbs, {r['gibbs_sweeps']['chains']} chains | sweeps/s | ratio to the loop |",
              "|---|---|---|"]
    lines += [f"| {row['way']} | {row['sweeps_per_s']} | {row['ratio_to_pytorch_loop']} |"
              for row in r["gibbs_sweeps"]["rows"]]
    lines += ["", "| torch.compile | eager ms/step | compiled ms/step | speed-up | compile s |",
              "|---|---|---|---|---|"]
    lines += [f"| {c['workload']} denoiser, batch {c['batch']} | {c['median_step_ms']['eager']:.2f} "
              f"| {c['median_step_ms']['compiled']:.2f} | {c['speedup']:.2f}x | {c['compile_seconds']:.1f} |"
              for c in r["compile"]]
    return "\n".join(lines + ["", f"Command: `{command}`", ""])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--data-path", default=None, help="binarized MNIST for the VAE part")
    p.add_argument("--image-data", default="digits", help="the U-Net's data (digits, fashion-mnist)")
    p.add_argument("--chains", type=int, default=1000)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quick", action="store_true", help="a smoke test of every part")
    p.add_argument("--results", default=str(RESULTS))
    args = p.parse_args(argv)
    record = run(args)
    out = Path(args.results)
    (out / "gpu.json").write_text(json.dumps(record, indent=2) + "\n")
    table = markdown(record, "python benchmarks/gpu.py " + shlex.join(argv))
    (out / "gpu.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
