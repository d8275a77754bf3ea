"""compiled_step: graphgrad eager, graphgrad compiled (``gg.compile``), torch eager and ``jax.jit``
on the same training steps, in the same run.

Workloads (``--only NAME`` runs one):

- ``small``:  MLP 64-100-10, batch 32, SGD with momentum 0.9
- ``medium``: MLP 784-256-10, batch 128, SGD with momentum 0.9
- ``large``:  MLP 784-1024-1024-10, batch 512, SGD with momentum 0.9
- ``adam``:   MLP 784-256-10, batch 128, Adam
- ``chain``:  1,000 elementwise ops on a 10-element float32 leaf (the cycle of
  ``op_overhead.chain``), ``.sum().backward()``; reported in ops/s
- ``memory``: peak memory of one step of the large MLP

The MLP step is PyTorch's usual four lines (``zero_grad``, ``nn.CrossEntropyLoss`` of an
``nn.Sequential`` of ``nn.Linear`` and ``nn.ReLU``, ``backward``, ``optimizer.step``), written
once and run on graphgrad and torch; the compiled contender is the same function passed through
``gg.compile``. graphgrad's weights are copied from torch's initial ones, the batch is built in
NumPy. The jax contender is one ``jax.jit`` function of ``(params, opt_state, x, y)`` returning
the new parameters, optimiser state and loss: the same loss and torch's update rules written in
``jax.numpy``; each step waits for its result (``block_until_ready``), as the other contenders'
steps are done when they return. jax is optional: without it, its column and targets are skipped.

Before timing, every contender runs a few steps from the same start: each one's losses must agree
with torch's (rtol 1e-4), and compiled graphgrad's losses and parameters (for the chain: the sum
and ``x.grad``) must be bit-identical to eager graphgrad's; otherwise the script stops.

Timing: a sample is a block of steps; the contenders are measured in alternating blocks, each
after a warm-up (``_timing.compare``); reported is the speed of the best sample (median in
brackets) and its ratio to torch eager, checked against the targets, which are printed at the end
as met / NOT met.

Peak memory (``memory``) is, for each contender, the most memory its allocations held at any
moment of one steady-state training step (the third), above what was held before the first step
(model, optimiser and batch built): so it counts the gradients, the optimiser's state and any
buffers a compiled plan keeps between steps, and the step's transient activations. Each library
is measured by the counter that sees all of its tensor memory:

- graphgrad: ``tracemalloc``, started before the model is built. NumPy reports every array's data
  buffer to it, and it also counts graphgrad's Python objects (graph nodes and the like), which
  torch's counter below does not see for torch's C++ ones: the comparison is, if anything, biased
  against graphgrad.
- torch: its own allocator counter, read through ``torch.profiler`` with ``profile_memory=True``:
  every CPU allocation and free of tensor storage is an event with its size (the running sum is
  the allocator's ``total_allocated``); the peak is the highest running sum during the step,
  which is marked with ``record_function``.

Neither counter sees BLAS's internal work buffers (OpenBLAS under NumPy, torch's BLAS), nor
allocator slack. Process RSS (``ru_maxrss``) is not used: it is a high-water mark of the whole
process, so after a warm-up step it no longer moves on the measured step, and the first step
mixes in one-off costs (lazy imports, thread pools, allocator arenas).

Run: ``python benchmarks/compiled_step.py [--quick] [--only NAME]`` (~2-3 minutes; ``--quick``
~30 s)
"""

from __future__ import annotations

import argparse
import functools
import gc
import time
import tracemalloc
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from _timing import compare, environment, speedup, verdict
from op_overhead import CYCLES, N_OPS, chain, make_inputs
from torch.profiler import ProfilerActivity, profile, record_function

import graphgrad as gg
from graphgrad.compiler import CompileWarning

try:
    import jax
    import jax.numpy as jnp
except ImportError:
    jax = None

SGD_LR, MOMENTUM = 0.01, 0.9
ADAM_LR, BETAS, ADAM_EPS = 1e-3, (0.9, 0.999), 1e-8  # torch.optim.Adam's defaults
CHECK_STEPS = 5  # the first runs eagerly and records, the other four replay the plan
RTOL = 1e-4  # against torch (float32)
MEMORY_STEPS = 3  # the last one is measured
TORCH = "torch eager"


@dataclass(frozen=True)
class Mlp:
    name: str
    sizes: tuple[int, ...]
    batch: int
    optimizer: str  # "sgd" (momentum) or "adam"
    steps_per_sample: int  # enough for a sample of a few milliseconds, well above timer noise

    @property
    def title(self) -> str:
        optimizer = f"SGD momentum {MOMENTUM}" if self.optimizer == "sgd" else "Adam"
        return f"MLP {'-'.join(map(str, self.sizes))}, batch {self.batch}, {optimizer}"


MLPS = {
    "small": Mlp("small", (64, 100, 10), 32, "sgd", steps_per_sample=20),
    "medium": Mlp("medium", (784, 256, 10), 128, "sgd", steps_per_sample=4),
    "large": Mlp("large", (784, 1024, 1024, 10), 512, "sgd", steps_per_sample=1),
    "adam": Mlp("adam", (784, 256, 10), 128, "adam", steps_per_sample=4),
}
WORKLOADS = (*MLPS, "chain", "memory")


@dataclass(frozen=True)
class Contender:
    step: Callable[[], Any]  # one training step (one chain iteration); returns the loss
    values: Callable[[], list[np.ndarray]]  # what else must match: parameters, or x.grad


@dataclass(frozen=True)
class Timing:
    rounds: int
    samples: int
    warmup_seconds: float


# Warm-up of 0.2 s: longer than OpenBLAS's, OpenMP's and XLA's idle threads spin before sleeping.
FULL, QUICK = Timing(rounds=8, samples=8, warmup_seconds=0.2), Timing(2, 3, 0.05)


# --- the MLP workloads -------------------------------------------------------------------------

def training_step(model, optimizer, loss_fn):
    """The step every library runs; ``gg.compile`` of it is the compiled contender."""
    def step(x, y):
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        return loss

    return step


def mlp_of(lib, sizes: tuple[int, ...]):
    layers = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        layers += [lib.nn.Linear(n_in, n_out), lib.nn.ReLU()]
    return lib.nn.Sequential(*layers[:-1])


def optimizer_of(lib, spec: Mlp, params):
    if spec.optimizer == "sgd":
        return lib.optim.SGD(params, lr=SGD_LR, momentum=MOMENTUM)
    return lib.optim.Adam(params, lr=ADAM_LR, betas=BETAS, eps=ADAM_EPS)


def initial_state(spec: Mlp) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """torch's initial weights (seed 0) as NumPy, an input batch and integer class labels."""
    torch.manual_seed(0)
    model = mlp_of(torch, spec.sizes)
    weights = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    rng = np.random.default_rng(0)
    x = rng.standard_normal((spec.batch, spec.sizes[0])).astype(np.float32)
    y = rng.integers(0, spec.sizes[-1], spec.batch)
    return weights, x, y


def library_contender(lib, spec: Mlp, weights, x, y, *, compiled: bool = False) -> Contender:
    model = mlp_of(lib, spec.sizes)
    model.load_state_dict({k: lib.tensor(v) for k, v in weights.items()})
    step = training_step(model, optimizer_of(lib, spec, model.parameters()),
                         lib.nn.CrossEntropyLoss())
    if compiled:
        step = gg.compile(step)
    x, y = lib.tensor(x), lib.tensor(y)
    return Contender(step=lambda: step(x, y),
                     values=lambda: [p.detach().numpy() for p in model.parameters()])


def mlp_contenders(spec: Mlp) -> dict[str, Contender]:
    weights, x, y = initial_state(spec)
    contenders = {
        "graphgrad eager": library_contender(gg, spec, weights, x, y),
        "graphgrad compiled": library_contender(gg, spec, weights, x, y, compiled=True),
        TORCH: library_contender(torch, spec, weights, x, y),
    }
    if jax is not None:
        contenders["jax.jit"] = jax_mlp_contender(spec, weights, x, y)
    return contenders


# --- the MLP in jax ----------------------------------------------------------------------------

def jax_mlp_contender(spec: Mlp, weights, x, y) -> Contender:
    params = [jnp.asarray(w) for w in weights.values()]  # weight, bias, weight, bias, ...
    def zeros():  # a fresh list each time: jax refuses to donate one buffer twice
        return [jnp.zeros_like(p) for p in params]

    state = {"params": params,
             "opt": zeros() if spec.optimizer == "sgd" else (jnp.zeros(()), zeros(), zeros())}
    update = _jax_sgd if spec.optimizer == "sgd" else _jax_adam
    x, y = jnp.asarray(x), jnp.asarray(y)

    def step():
        new = _jitted_train_step()(update, state["params"], state["opt"], x, y)
        state["params"], state["opt"], loss = jax.block_until_ready(new)
        return loss

    return Contender(step=step, values=lambda: [np.asarray(p) for p in state["params"]])


def _jax_loss(params, x, y):
    h = x
    for i in range(0, len(params), 2):
        h = h @ params[i].T + params[i + 1]  # nn.Linear's layout: weight is (out, in)
        if i + 2 < len(params):
            h = jax.nn.relu(h)
    log_p = jax.nn.log_softmax(h, axis=1)
    return -jnp.take_along_axis(log_p, y[:, None], axis=1).mean()


def _jax_sgd(params, buffers, grads):
    """torch's SGD with momentum (no dampening): ``b = mu * b + g``, ``p -= lr * b``."""
    buffers = [MOMENTUM * b + g for b, g in zip(buffers, grads)]
    return [p - SGD_LR * b for p, b in zip(params, buffers)], buffers


def _jax_adam(params, state, grads):
    """torch's Adam: bias-corrected moments, ``eps`` added after the corrected square root."""
    t, means, squares = state
    t = t + 1
    beta1, beta2 = BETAS
    means = [beta1 * m + (1 - beta1) * g for m, g in zip(means, grads)]
    squares = [beta2 * v + (1 - beta2) * g * g for v, g in zip(squares, grads)]
    step_size = ADAM_LR / (1 - beta1 ** t)
    root_correction = jnp.sqrt(1 - beta2 ** t)
    params = [p - step_size * m / (jnp.sqrt(v) / root_correction + ADAM_EPS)
              for p, m, v in zip(params, means, squares)]
    return params, (t, means, squares)


@functools.cache
def _jitted_train_step():
    def train_step(update, params, opt_state, x, y):
        loss, grads = jax.value_and_grad(_jax_loss)(params, x, y)
        params, opt_state = update(params, opt_state, grads)
        return params, opt_state, loss

    # The old parameters and state are dead after the step: XLA may write the new ones over them.
    return jax.jit(train_step, static_argnums=0, donate_argnums=(1, 2))


# --- the op chain ------------------------------------------------------------------------------

def chain_contenders() -> dict[str, Contender]:
    contenders = {
        "graphgrad eager": library_chain(gg),
        "graphgrad compiled": library_chain(gg, compiled=True),
        TORCH: library_chain(torch),
    }
    if jax is not None:
        contenders["jax.jit"] = jax_chain_contender()
    return contenders


def library_chain(lib, *, compiled: bool = False) -> Contender:
    x, w = make_inputs(lib)

    def chain_step(x):
        out = chain(x, w).sum()
        out.backward()
        return out

    if compiled:
        chain_step = gg.compile(chain_step)

    def step():
        x.grad = None  # a fresh gradient each iteration; ~0.1 us against milliseconds
        return chain_step(x)

    return Contender(step=step, values=lambda: [x.grad.numpy()])


def jax_chain_contender() -> Contender:
    x, w = (jnp.asarray(v.detach().numpy()) for v in make_inputs(torch))
    sum_and_grad = jax.jit(jax.value_and_grad(functools.partial(_jax_chain_sum, w=w)))
    grad = {}

    def step():
        out, grad["x"] = jax.block_until_ready(sum_and_grad(x))
        return out

    return Contender(step=step, values=lambda: [np.asarray(grad["x"])])


def _jax_chain_sum(x, w):
    """``op_overhead.chain(x, w).sum()`` in jax.numpy (jax arrays have no ``.tanh()`` and the
    like); the check against torch's gradient keeps the two the same function."""
    y = x
    for _ in range(CYCLES):
        y = y * 1.0001
        y = y + 0.001
        y = jnp.tanh(y)
        y = jnp.exp(y)
        y = y * w
        y = jnp.log(y)
        y = jax.nn.sigmoid(y)
        y = y - 0.5
        y = y * y
        y = y + x
    return y.sum()


# --- checks and timing -------------------------------------------------------------------------

def check(contenders: dict[str, Contender], *, values_against_torch: bool) -> None:
    """A few steps of each contender from the same start. Losses must agree with torch's;
    compiled graphgrad must be bit-identical to eager graphgrad in losses and values."""
    losses = {name: [float(c.step().item()) for _ in range(CHECK_STEPS)]
              for name, c in contenders.items()}
    values = {name: c.values() for name, c in contenders.items()}
    for name in contenders:
        if name != TORCH:
            _require_close(f"{name} losses", losses[name], losses[TORCH])
            if values_against_torch:
                for mine, theirs in zip(values[name], values[TORCH]):
                    _require_close(f"{name} x.grad", mine, theirs)
    eager, compiled = "graphgrad eager", "graphgrad compiled"
    if losses[compiled] != losses[eager]:
        raise AssertionError(f"compiled and eager graphgrad losses differ:\n  compiled "
                             f"{losses[compiled]}\n  eager    {losses[eager]}")
    for i, (a, b) in enumerate(zip(values[compiled], values[eager])):
        if a.dtype != b.dtype or a.shape != b.shape or a.tobytes() != b.tobytes():
            raise AssertionError(f"compiled and eager graphgrad differ in value {i} after "
                                 f"{CHECK_STEPS} steps (max |diff| {np.abs(a - b).max():g})")
    shown = ", ".join(f"{v:.5f}" for v in losses[eager])
    print(f"  check: {CHECK_STEPS} steps, losses agree with torch's to rtol {RTOL:g}; compiled "
          f"= eager graphgrad bit for bit ({shown})")


def _require_close(what: str, actual, expected) -> None:
    try:
        np.testing.assert_allclose(actual, expected, rtol=RTOL)
    except AssertionError as error:
        raise AssertionError(f"{what} do not match torch's:\n{error}") from None


def block_trial(step: Callable[[], Any], steps: int):
    def trial() -> dict[str, float]:
        start = time.perf_counter()
        for _ in range(steps):
            step()
        return {"step": (time.perf_counter() - start) / steps}

    return trial


def time_contenders(contenders: dict[str, Contender], steps: int, timing: Timing,
                    unit: str, per_step: int = 1) -> dict[str, float]:
    """Best seconds per step of each contender; prints speeds (``per_step`` units a step)."""
    trials = {name: block_trial(c.step, steps) for name, c in contenders.items()}
    results = compare(trials, rounds=timing.rounds, samples=timing.samples,
                      warmup_seconds=timing.warmup_seconds)
    best = {name: phases["step"].best for name, phases in results.items()}
    print(f"  {'':<20}{unit:>12}   {'us per step, best (median)':<28}{'vs torch':>8}")
    for name, phases in results.items():
        s = phases["step"]
        us = f"{s.best * 1e6:.1f} ({s.median * 1e6:.1f})"
        print(f"  {name:<20}{per_step / s.best:>12,.0f}   {us:<28}"
              f"{speedup(s.best, best[TORCH]):>7.2f}x")
    if jax is None:
        print("  jax: not installed")
    return best


def run_mlp(spec: Mlp, timing: Timing) -> dict[str, float]:
    print(f"\n{spec.name}: {spec.title} ({spec.steps_per_sample} steps per sample)")
    contenders = mlp_contenders(spec)
    check(contenders, values_against_torch=False)
    return time_contenders(contenders, spec.steps_per_sample, timing, "steps/s")


def run_chain(timing: Timing) -> dict[str, float]:
    print(f"\nchain: {N_OPS} elementwise ops on a 10-element float32 leaf, .sum().backward() "
          f"(1 iteration per sample)")
    contenders = chain_contenders()
    check(contenders, values_against_torch=True)
    return time_contenders(contenders, 1, timing, "ops/s", per_step=N_OPS)


# --- peak memory -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Footprint:
    held: int  # bytes held between steps, above the state before the first step
    peak: int  # most bytes held during the measured step, same baseline


def graphgrad_footprint(spec: Mlp, *, compiled: bool) -> Footprint:
    weights, x, y = initial_state(spec)
    gc.collect()
    tracemalloc.start()
    try:
        contender = library_contender(gg, spec, weights, x, y, compiled=compiled)
        base = tracemalloc.get_traced_memory()[0]
        for _ in range(MEMORY_STEPS - 1):
            contender.step()
        held = tracemalloc.get_traced_memory()[0] - base
        tracemalloc.reset_peak()
        contender.step()
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    return Footprint(held, peak)


def torch_footprint(spec: Mlp) -> Footprint:
    contender = library_contender(torch, spec, *initial_state(spec))
    mark = "measured step"
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        for _ in range(MEMORY_STEPS - 1):
            contender.step()
        with record_function(mark):
            contender.step()
    events = prof.profiler.kineto_results.events()
    measured = next(e for e in events if e.name() == mark)
    allocations = sorted((e for e in events if e.name() == "[memory]"), key=lambda e: e.start_ns())
    live, held, peak = 0, None, 0
    for event in allocations:  # nbytes > 0 for an allocation, < 0 for a free
        if held is None and event.start_ns() >= measured.start_ns():
            held = peak = live
        live += event.nbytes()
        if measured.start_ns() <= event.start_ns() <= measured.end_ns():
            peak = max(peak, live)
    if held is None:  # no allocation at all in the measured step
        held = peak = live
    return Footprint(held, peak)


def run_memory() -> dict[str, int]:
    spec = MLPS["large"]
    print(f"\nmemory: one step of the {spec.title}: bytes above the model, optimiser and batch "
          f"(graphgrad: tracemalloc; torch: its allocator's counter via torch.profiler)")
    footprints = {"graphgrad eager": graphgrad_footprint(spec, compiled=False),
                  "graphgrad compiled": graphgrad_footprint(spec, compiled=True),
                  TORCH: torch_footprint(spec)}
    print(f"  {'':<20}{'held between steps':>20}{'peak in step':>14}{'vs torch':>10}")
    for name, f in footprints.items():
        print(f"  {name:<20}{f.held / 2**20:>17.2f} MiB{f.peak / 2**20:>10.2f} MiB"
              f"{f.peak / footprints[TORCH].peak:>9.2f}x")
    return {name: f.peak for name, f in footprints.items()}


# --- targets -----------------------------------------------------------------------------------

SPEED_TARGETS = (  # (workload, contender, target ratio of speeds to torch eager)
    ("small", "graphgrad compiled", 2.5),
    ("medium", "graphgrad compiled", 1.2),
    ("large", "graphgrad compiled", 1.0),
    ("adam", "graphgrad compiled", 1.3),
    ("chain", "graphgrad eager", 2.0),
    ("small", "graphgrad eager", 2.0),
    ("adam", "graphgrad eager", 1.1),
)


def report_targets(results: dict[str, dict]) -> None:
    print("\ntargets")
    for workload, name, target in SPEED_TARGETS:
        if workload in results:
            best = results[workload]
            ratio = speedup(best[name], best[TORCH])
            print(f"  {workload:<7}{name} / torch eager: {ratio:5.2f}x   {verdict(ratio, target)}")
    if "small" in results:
        best = results["small"]
        if "jax.jit" in best:
            ratio = speedup(best["graphgrad compiled"], best["jax.jit"])
            met = "met" if ratio > 1 else "NOT met"
            print(f"  small  graphgrad compiled / jax.jit: {ratio:5.2f}x   target > 1x: {met}")
        else:
            print("  small  graphgrad compiled / jax.jit: jax: not installed, skipped")
    if "memory" in results:
        peaks = results["memory"]
        for name in ("graphgrad eager", "graphgrad compiled"):
            met = "met" if peaks[name] <= peaks[TORCH] else "NOT met"
            print(f"  memory {name} peak {peaks[name] / 2**20:.2f} MiB <= torch eager "
                  f"{peaks[TORCH] / 2**20:.2f} MiB: {met}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="few samples: a smoke run")
    parser.add_argument("--only", choices=WORKLOADS, metavar="NAME",
                        help=f"run one workload: {', '.join(WORKLOADS)}")
    args = parser.parse_args()
    timing = QUICK if args.quick else FULL
    # A function gg.compile cannot trust runs eagerly after a warning: here that must stop the
    # run, or the "compiled" figures would be eager ones.
    warnings.simplefilter("error", CompileWarning)

    print("compiled_step: graphgrad eager and compiled, torch eager, jax.jit; float32")
    print(environment())
    print(f"jax {jax.__version__}" if jax is not None else "jax: not installed")
    print(f"best of {timing.rounds * timing.samples} samples (median in brackets); "
          f"vs torch = speed / torch eager's speed (> 1: faster)")
    results: dict[str, dict] = {}
    for workload in (args.only,) if args.only else WORKLOADS:
        if workload in MLPS:
            results[workload] = run_mlp(MLPS[workload], timing)
        elif workload == "chain":
            results[workload] = run_chain(timing)
        else:
            results[workload] = run_memory()
    report_targets(results)


if __name__ == "__main__":
    main()
