"""NumPyro's side of ``benchmarks/compiled.py``: the same VAE as Pyro functions, jit-compiled SVI.

Run by ``compiled.py`` with the interpreter of NumPyro's own environment
(``benchmarks/.venv-numpyro``, which it makes), so that JAX never enters ppdgm's environment. It
reads the batches and the initial weights the PyTorch contenders start from, runs ``--rounds``
rounds of its steps after one warm-up round (which pays the jit compile), blocking on each
step's loss as the other loops read theirs, and prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro.infer import SVI, Trace_ELBO


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--weights", required=True)
    p.add_argument("--batch", type=int, required=True)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--z-dim", type=int, default=20)
    args = p.parse_args()
    data = jnp.asarray(np.load(args.data))
    weights = {k: jnp.asarray(v) for k, v in np.load(args.weights).items()}
    z_dim = args.z_dim

    def mlp(prefix: str, h: jnp.ndarray) -> jnp.ndarray:
        w0 = numpyro.param(f"{prefix}.0.weight", weights[f"{prefix}.0.weight"])
        b0 = numpyro.param(f"{prefix}.0.bias", weights[f"{prefix}.0.bias"])
        w2 = numpyro.param(f"{prefix}.2.weight", weights[f"{prefix}.2.weight"])
        b2 = numpyro.param(f"{prefix}.2.bias", weights[f"{prefix}.2.bias"])
        return jax.nn.relu(h @ w0.T + b0) @ w2.T + b2

    def model(x: jnp.ndarray) -> None:
        with numpyro.plate("data", x.shape[0]):
            z = numpyro.sample("z", dist.Normal(jnp.zeros(z_dim), 1.0).to_event(1))
            numpyro.sample("x", dist.Bernoulli(logits=mlp("decoder", z)).to_event(1), obs=x)

    def guide(x: jnp.ndarray) -> None:
        with numpyro.plate("data", x.shape[0]):
            stats = mlp("encoder", x)
            loc, raw = stats[..., :z_dim], stats[..., z_dim:]
            numpyro.sample("z", dist.Normal(loc, jax.nn.softplus(raw)).to_event(1))

    svi = SVI(model, guide, numpyro.optim.Adam(1e-3), Trace_ELBO())
    batches = [data[i:i + args.batch] for i in range(0, len(data) - args.batch + 1, args.batch)]
    state = svi.init(jax.random.PRNGKey(0), batches[0])
    update = jax.jit(svi.update)
    first_loss = None
    times = []
    compile_seconds = None
    for round_ in range(args.rounds + 1):
        started = time.perf_counter()
        for x in batches:
            state, loss = update(state, x)
            loss.block_until_ready()
            if first_loss is None:
                first_loss = float(loss)
                compile_seconds = time.perf_counter() - started
        per_step = (time.perf_counter() - started) / len(batches)
        if round_:
            times.append(per_step * 1e3)
    print(json.dumps({"numpyro_jit_ms": statistics.median(times), "first_loss": first_loss,
                      "compile_seconds": compile_seconds, "jax": jax.__version__,
                      "numpyro": numpyro.__version__}))


if __name__ == "__main__":
    main()
