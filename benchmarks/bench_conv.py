"""Benchmark: naive vs fast (pure NumPy) vs PyTorch CPU for conv, max pool and a ThreeLayerConvNet step.

All in float32, all in one run, so that the ratios compare like with like on the
same machine state. For every case it prints the median forward and backward
times, the fast/torch ratios, and the peak extra memory of one fast
forward + backward (tracemalloc) next to the size of the im2col matrix.

    python benchmarks/bench_conv.py            # full run (a few minutes)
    python benchmarks/bench_conv.py --quick    # fewer repeats, smaller naive budget
    python benchmarks/bench_conv.py --repeats 21

Threads: NumPy's BLAS and PyTorch should use the same number of threads. With
threadpoolctl installed the BLAS count is read and torch is set to match;
without it the script says so and leaves torch at ``torch.get_num_threads()``
(OpenBLAS also defaults to one thread per core unless OPENBLAS_NUM_THREADS or
OMP_NUM_THREADS says otherwise). Element-wise NumPy work is single-threaded
either way.
"""

import argparse
import os
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deep_learning_suite.cnn_model import ThreeLayerConvNet  # noqa: E402
from deep_learning_suite.conv_layers import (  # noqa: E402
    conv_backward_naive,
    conv_forward_naive,
    max_pool_backward_naive,
    max_pool_forward_naive,
)
from deep_learning_suite.fast_layers import (  # noqa: E402
    clear_workspace,
    conv_backward_fast,
    conv_forward_fast,
    max_pool_backward_fast,
    max_pool_forward_fast,
)

CONV_CASES = [
    # x shape, w shape, stride, pad
    ((100, 3, 31, 31), (25, 3, 3, 3), 2, 1),
    ((128, 3, 32, 32), (32, 3, 7, 7), 1, 3),
    ((64, 64, 32, 32), (64, 64, 3, 3), 1, 1),
]
POOL_CASES = [
    # x shape, pool size, stride
    ((128, 32, 32, 32), 2, 2),
    ((64, 64, 33, 33), 3, 2),
]
NAIVE_LIMIT_S = 60.0  # a single naive forward+backward slower than this is skipped


def setup_threads(torch):
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        n = torch.get_num_threads()
        env = os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS")
        return (f"threadpoolctl not installed: NumPy's BLAS thread count cannot be read; torch left at "
                f"torch.get_num_threads() = {n} (OpenBLAS default = {env or os.cpu_count()} from "
                f"{'the environment' if env else 'os.cpu_count()'})")
    blas = [d for d in threadpool_info() if d.get("user_api") == "blas"]
    n = blas[0]["num_threads"] if blas else torch.get_num_threads()
    torch.set_num_threads(n)
    return f"NumPy BLAS ({blas[0]['internal_api'] if blas else '?'}) threads = {n}; torch.set_num_threads({n})"


def median_ms(samples):
    return 1e3 * statistics.median(samples)


def _one_step(forward, backward):
    """Seconds of one forward and of one backward on that forward's cache (as a training loop runs them)."""
    t0 = time.perf_counter()
    out, cache = forward()
    t1 = time.perf_counter()
    backward(out, cache)
    return t1 - t0, time.perf_counter() - t1


def time_interleaved(steps, repeats):
    """Median forward and backward ms of each ``name -> (forward, backward)``, run in turns.

    ``forward()`` returns ``(out, cache)`` and ``backward(out, cache)`` consumes them, as a
    training loop does. Each round runs every implementation once, in an order that rotates
    from round to round, so that a machine slowing down or speeding up during the run moves
    every implementation's samples alike and the ratios of the medians stay fair.
    """
    names = list(steps)
    samples = {name: ([], []) for name in names}
    for name in names:  # warm-up: buffers, caches, thread pools
        _one_step(*steps[name])
    for r in range(repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:
            tf, tb = _one_step(*steps[name])
            samples[name][0].append(tf)
            samples[name][1].append(tb)
    return {name: (median_ms(f), median_ms(b)) for name, (f, b) in samples.items()}


def time_naive(forward, backward, repeats, budget_s, check_first):
    """Median forward and backward ms of slow code: one call decides how many more fit in ``budget_s``.

    ``check_first(out, grads)`` gets that call's forward output and backward result and raises
    SystemExit if they are wrong, so that wrong naive code is refused, never timed.
    """
    results = []
    first = _one_step(forward, lambda out, cache: results.append((out, backward(out, cache))))
    check_first(*results[0])
    if sum(first) > NAIVE_LIMIT_S:
        return None, f"skipped: one call took {sum(first):.0f} s"
    extra = max(0, min(repeats - 1, int(budget_s / sum(first))))
    tf, tb = zip(first, *(_one_step(forward, backward) for _ in range(extra)))
    return (median_ms(tf), median_ms(tb)), f"{len(tf)} run(s)"


def peak_mb(fn):
    """Peak memory (MB) allocated during ``fn()`` above what was allocated before it.

    The spare column buffers that the fast conv keeps between calls are freed
    first, so that the peak counts every array the call needs.
    """
    clear_workspace()
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return (peak - base) / 2**20


def fmt(v):
    return "-" if v is None else f"{v:9.2f}"


def row(case, impl, times, torch_times=None, note=""):
    if times is None:
        print(f"{case:<38} {impl:<6} {'-':>9} {'-':>9} {'-':>9} {'':>20}  {note}")
        return
    f, b = times
    ratio = ""
    if torch_times is not None:
        tf, tb = torch_times
        ratio = f"{f / tf:6.2f} {b / tb:6.2f} {(f + b) / (tf + tb):6.2f}"
    print(f"{case:<38} {impl:<6} {fmt(f)} {fmt(b)} {fmt(f + b)} {ratio:>20}  {note}")


def speedup(t_naive, t_fast):
    """'naive/fast = 12x, ' (forward + backward medians), or '' when naive was skipped."""
    if t_naive is None:
        return ""
    return f"naive/fast {sum(t_naive) / sum(t_fast):.0f}x, "


def check(name, mine, ref, tol=2e-3, pair="fast and torch"):
    err = np.max(np.abs(mine - ref)) / max(1e-12, np.max(np.abs(ref)))
    if not err < tol:
        raise SystemExit(f"{name}: {pair} disagree (max error {err:.2e} relative to the largest value)")


def check_naive(kind, fast_results):
    """``check_first`` for ``time_naive``: the naive output and gradients against the fast ones
    (which have been checked against torch), names as in ``fast_results``, ``{name: array}``."""
    def check_first(out, grads):
        grads = grads if isinstance(grads, tuple) else (grads,)
        for (name, ref), mine in zip(fast_results.items(), (out,) + grads):
            check(f"{kind} {name}", np.asarray(mine), ref, pair="naive and fast")
    return check_first


def bench_conv(torch, rng, x_shape, w_shape, stride, pad, repeats, naive_budget):
    F = torch.nn.functional
    x = rng.standard_normal(x_shape, dtype=np.float32)
    w = (0.1 * rng.standard_normal(w_shape)).astype(np.float32)
    b = rng.standard_normal(w_shape[0], dtype=np.float32)
    cp = {"stride": stride, "pad": pad}
    out, cache = conv_forward_fast(x, w, b, cp)
    dout = rng.standard_normal(out.shape, dtype=np.float32)
    dx, dw, db = conv_backward_fast(dout, cache)

    tx = torch.from_numpy(x).requires_grad_(True)
    tw = torch.from_numpy(w).requires_grad_(True)
    tb = torch.from_numpy(b).requires_grad_(True)
    tdout = torch.from_numpy(dout)
    tout = F.conv2d(tx, tw, tb, stride=stride, padding=pad)
    tout.backward(tdout)
    check("conv out", out, tout.detach().numpy())
    for name, mine, t in (("dx", dx, tx), ("dw", dw, tw), ("db", db, tb)):
        check(f"conv {name}", mine, t.grad.numpy())

    def t_forward():
        return F.conv2d(tx, tw, tb, stride=stride, padding=pad), None

    def t_backward(o, _):
        tx.grad = tw.grad = tb.grad = None
        o.backward(tdout)

    label = f"conv x{x_shape} w{w_shape[0]}x{w_shape[2]}x{w_shape[3]} s{stride} p{pad}"
    t = time_interleaved({"torch": (t_forward, t_backward),
                          "fast": (lambda: conv_forward_fast(x, w, b, cp), lambda o, c: conv_backward_fast(dout, c))},
                         repeats)
    t_torch, t_fast = t["torch"], t["fast"]
    t_naive, note = time_naive(lambda: conv_forward_naive(x, w, b, cp), lambda o, c: conv_backward_naive(dout, c),
                               repeats, naive_budget,
                               check_naive("conv", {"out": out, "dx": dx, "dw": dw, "db": db}))
    N, C = x_shape[:2]
    H_out, W_out = out.shape[2:]
    cols_mb = N * C * w_shape[2] * w_shape[3] * H_out * W_out * 4 / 2**20
    mem = peak_mb(lambda: conv_backward_fast(dout, conv_forward_fast(x, w, b, cp)[1]))
    row(label, "naive", t_naive, t_torch, note)
    row("", "fast", t_fast, t_torch, f"{speedup(t_naive, t_fast)}peak {mem:.0f} MB, im2col {cols_mb:.0f} MB, "
                                     f"x {x.nbytes / 2**20:.0f} MB")
    row("", "torch", t_torch)
    return t_fast, t_torch


def bench_pool(torch, rng, x_shape, size, stride, repeats, naive_budget):
    F = torch.nn.functional
    # Distinct values: no ties, so every implementation routes the gradient identically.
    x = (rng.permutation(int(np.prod(x_shape))).reshape(x_shape) / 1e3).astype(np.float32)
    pp = {"pool_height": size, "pool_width": size, "stride": stride}
    out, cache = max_pool_forward_fast(x, pp)
    dout = rng.standard_normal(out.shape, dtype=np.float32)
    dx = max_pool_backward_fast(dout, cache)
    tx = torch.from_numpy(x).requires_grad_(True)
    tdout = torch.from_numpy(dout)
    tout = F.max_pool2d(tx, size, stride=stride)
    tout.backward(tdout)
    check("pool out", out, tout.detach().numpy())
    check("pool dx", dx, tx.grad.numpy())

    def t_backward(o, _):
        tx.grad = None
        o.backward(tdout)

    label = f"maxpool x{x_shape} {size}x{size}/{stride}"
    t = time_interleaved({"torch": (lambda: (F.max_pool2d(tx, size, stride=stride), None), t_backward),
                          "fast": (lambda: max_pool_forward_fast(x, pp), lambda o, c: max_pool_backward_fast(dout, c))},
                         repeats)
    t_torch, t_fast = t["torch"], t["fast"]
    t_naive, note = time_naive(lambda: max_pool_forward_naive(x, pp), lambda o, c: max_pool_backward_naive(dout, c),
                               repeats, naive_budget, check_naive("pool", {"out": out, "dx": dx}))
    mem = peak_mb(lambda: max_pool_backward_fast(dout, max_pool_forward_fast(x, pp)[1]))
    row(label, "naive", t_naive, t_torch, note)
    row("", "fast", t_fast, t_torch, f"{speedup(t_naive, t_fast)}peak {mem:.0f} MB, x {x.nbytes / 2**20:.0f} MB")
    row("", "torch", t_torch)
    return t_fast, t_torch


def bench_model(torch, rng, repeats, batch=128):
    """One training step (forward, loss, backward) of the default ThreeLayerConvNet, float32."""
    F = torch.nn.functional
    model = ThreeLayerConvNet(weight_scale=1e-2, seed=0)
    X = rng.standard_normal((batch, 3, 32, 32), dtype=np.float32)
    y = rng.integers(10, size=batch)
    t = {k: torch.from_numpy(v.copy()).requires_grad_(True) for k, v in model.params.items()}
    tX, ty = torch.from_numpy(X), torch.from_numpy(y)
    pad = (model.params["W1"].shape[2] - 1) // 2

    def torch_step():
        for v in t.values():
            v.grad = None
        a = F.max_pool2d(torch.relu(F.conv2d(tX, t["W1"], t["b1"], padding=pad)), 2, stride=2)
        h = torch.relu(a.reshape(batch, -1) @ t["W2"] + t["b2"])
        loss = F.cross_entropy(h @ t["W3"] + t["b3"], ty)
        loss.backward()
        return loss

    loss, grads = model.loss(X, y)
    tloss = torch_step()
    if abs(float(loss) - tloss.item()) > 1e-4:
        raise SystemExit(f"model: loss {float(loss)} vs torch {tloss.item()}")
    for k in grads:
        check(f"model d{k}", grads[k], t[k].grad.numpy(), tol=1e-2)

    def med(fn):
        fn()
        samples = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - t0)
        return median_ms(samples)

    t_torch = med(torch_step)
    t_fast = med(lambda: model.loss(X, y))
    mem = peak_mb(lambda: model.loss(X, y))
    label = f"ThreeLayerConvNet step, batch {batch}"
    print(f"{label:<38} {'fast':<6} {'':>9} {'':>9} {fmt(t_fast)} {'':>13}{t_fast / t_torch:6.2f}"
          f"  peak {mem:.0f} MB")
    print(f"{'':<38} {'torch':<6} {'':>9} {'':>9} {fmt(t_torch)}")
    return t_fast, t_torch


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per measurement (default 15, quick 5)")
    parser.add_argument("--quick", action="store_true", help="fewer repeats and a 3 s budget for naive code")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.repeats is not None and args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")
    repeats = args.repeats or (5 if args.quick else 15)
    naive_budget = 3.0 if args.quick else 20.0

    import torch

    threads = setup_threads(torch)
    rng = np.random.default_rng(args.seed)
    print(f"numpy {np.__version__}, torch {torch.__version__}, float32, {repeats} repeats "
          f"(fast and torch in turns), medians in ms")
    print(threads)
    print("ratios are fast / torch for forward, backward and forward+backward (< 1: NumPy is faster)\n")
    print(f"{'case':<38} {'impl':<6} {'forward':>9} {'backward':>9} {'total':>9} "
          f"{'fwd':>6} {'bwd':>6} {'total':>6}")
    start = time.perf_counter()
    for x_shape, w_shape, stride, pad in CONV_CASES:
        bench_conv(torch, rng, x_shape, w_shape, stride, pad, repeats, naive_budget)
    for x_shape, size, stride in POOL_CASES:
        bench_pool(torch, rng, x_shape, size, stride, repeats, naive_budget)
    bench_model(torch, rng, repeats)
    print(f"\n(total benchmark time {time.perf_counter() - start:.0f} s; naive code: median of the runs that "
          f"fit its budget)")


if __name__ == "__main__":
    main()
