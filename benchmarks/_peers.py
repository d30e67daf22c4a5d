"""The peers' environments: PyMC and NumPyro live in their own virtual environments under
benchmarks/, made by the benchmark that needs them, so the project's dependencies stay clean."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
#: peer -> (environment folder, packages pip installs there)
PEERS = {"pymc": (HERE / ".venv-pymc", ["pymc"]),
         "numpyro": (HERE / ".venv-numpyro", ["numpyro", "jax"])}


def peer_python(peer: str, make: bool) -> tuple[Path | None, str]:
    """The peer's own interpreter (its environment made here when ``make``), or ``None`` and
    why not."""
    env, packages = PEERS[peer]
    python = env / "bin" / "python"
    if not python.exists() and make:
        made = subprocess.run([sys.executable, "-m", "venv", str(env)], capture_output=True,
                              text=True)
        if made.returncode == 0:
            made = subprocess.run([str(python), "-m", "pip", "install", "-q", *packages],
                                  capture_output=True, text=True)
        if made.returncode != 0:
            return None, f"its environment could not be made ({made.stderr[-200:].strip()})"
    if not python.exists():
        return None, f"no environment at {env} (run with --{peer} make)"
    return python, ""


def run_peer(python: Path, script: str, spec: dict[str, Any], *numbers: int,
             threads: int = 1) -> dict[str, np.ndarray]:
    """Run ``script`` (a file beside this one) in the peer's interpreter on ``spec`` (saved as
    an .npz) and the ``numbers`` after it; what it saves, as arrays."""
    with tempfile.TemporaryDirectory() as folder:
        target, out = Path(folder) / "target.npz", Path(folder) / "out.npz"
        np.savez(target, **spec)
        env = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", folder),
               "OMP_NUM_THREADS": str(threads),
               "XLA_FLAGS": f"--xla_cpu_multi_thread_eigen=false "
                            f"intra_op_parallelism_threads={threads}"}
        done = subprocess.run([str(python), str(HERE / script), str(target), str(out),
                               *map(str, numbers)], capture_output=True, text=True, env=env)
        if done.returncode != 0:
            lines = done.stderr.strip().splitlines()
            raise RuntimeError(f"{script} failed: {lines[-1] if lines else done.returncode}")
        loaded = np.load(out)
        return {k: loaded[k] for k in loaded.files}
