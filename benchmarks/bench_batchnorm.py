"""Batch-norm backward: graph version vs closed form vs PyTorch CPU autograd.

Prints one row per (N, D, dtype) with the median time of each backward over
``--repeats`` calls and the ratios of those medians::

    python benchmarks/bench_batchnorm.py            # ~20 s
    python benchmarks/bench_batchnorm.py --repeats 100 --torch-threads 2

Before timing, every case checks that the two NumPy backwards agree with each
other and with torch, so a fast but wrong version cannot win.
"""

import argparse
import time

import numpy as np

from deep_learning_suite.batchnorm import batchnorm_backward, batchnorm_backward_alt, batchnorm_forward

SHAPES = [(256, 1024), (4096, 512), (128, 64)]
DTYPES = [np.float32, np.float64]


def median_time(fn, repeats):
    fn()  # warm-up: first-touch page faults and lazy initialisation
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def agree(who, name, mine, ref, tol):
    """Refuse (SystemExit, never ``assert``, which ``python -O`` strips) a gradient off the
    reference by more than ``tol`` of its largest value."""
    err = np.max(np.abs(mine - ref)) / max(1e-30, np.max(np.abs(ref)))
    if not err <= tol:
        raise SystemExit(f"{who} disagree on {name}: max error {err:.2e} of the largest value "
                         f"(tolerance {tol:.0e}); nothing is timed")


def bench_case(N, D, dtype, repeats, torch):
    rng = np.random.default_rng(0)
    x = (3 * rng.standard_normal((N, D)) + 1).astype(dtype)
    gamma = rng.standard_normal(D).astype(dtype)
    beta = rng.standard_normal(D).astype(dtype)
    dout = rng.standard_normal((N, D)).astype(dtype)
    _, cache = batchnorm_forward(x, gamma, beta, {"mode": "train"})

    graph = batchnorm_backward(dout, cache)
    alt = batchnorm_backward_alt(dout, cache)
    tol = 1e-3 if dtype == np.float32 else 1e-9
    names = ("dx", "dgamma", "dbeta")
    for name, g, a in zip(names, graph, alt):
        agree("graph and closed-form backwards", name, a, g, tol)

    row = {
        "graph": median_time(lambda: batchnorm_backward(dout, cache), repeats),
        "alt": median_time(lambda: batchnorm_backward_alt(dout, cache), repeats),
    }
    if torch is not None:
        tx, tg, tb = (torch.tensor(a, requires_grad=True) for a in (x, gamma, beta))
        tout = torch.nn.functional.batch_norm(tx, None, None, tg, tb, training=True, eps=1e-5)
        tdout = torch.tensor(dout)
        ref = torch.autograd.grad(tout, (tx, tg, tb), tdout, retain_graph=True)
        for name, a, r in zip(names, alt, ref):
            agree("closed-form backward and torch", name, a, r.numpy(), 10 * tol)
        row["torch"] = median_time(lambda: torch.autograd.grad(tout, (tx, tg, tb), tdout, retain_graph=True),
                                   repeats)
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=30, help="timed calls per measurement (median reported)")
    parser.add_argument("--torch-threads", type=int, default=1,
                        help="torch intra-op threads; 1 matches NumPy's single-threaded elementwise code")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch column")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")

    torch = None
    if not args.no_torch:
        try:
            import torch
        except ImportError:
            print("(torch not installed: PyTorch column skipped)")
        else:
            torch.set_num_threads(args.torch_threads)

    print(f"batchnorm backward, median of {args.repeats} calls, times in ms"
          + (f"; torch CPU autograd with {args.torch_threads} thread(s)" if torch else ""))
    header = f"{'N x D':>12} {'dtype':>8} {'graph':>9} {'alt':>9} {'torch':>9} {'graph/alt':>10} {'alt/torch':>10}"
    print(header)
    print("-" * len(header))
    for N, D in SHAPES:
        for dtype in DTYPES:
            row = bench_case(N, D, dtype, args.repeats, torch)
            # without torch its columns say '-', not nan
            t_torch, vs_torch = (f"{1e3 * row['torch']:9.3f}", f"{row['alt'] / row['torch']:10.2f}") \
                if "torch" in row else (f"{'-':>9}", f"{'-':>10}")
            print(f"{f'{N}x{D}':>12} {np.dtype(dtype).name:>8} {1e3 * row['graph']:9.3f} {1e3 * row['alt']:9.3f} "
                  f"{t_torch} {row['graph'] / row['alt']:10.2f} {vs_torch}")


if __name__ == "__main__":
    main()
