"""kNN distances and linear-classifier losses: loops vs vectorised NumPy vs PyTorch CPU.

The sizes are the course's: distances from 500 test to 5,000 training vectors of
dimension 3,072 (CIFAR-10 pixels), and the SVM and softmax losses for W (3073, 10)
and X (500, 3073). Prints the median time of each version and ratios of medians::

    python benchmarks/bench_linear.py            # ~2 minutes, almost all in the loop versions
    python benchmarks/bench_linear.py --quick    # 50 test vectors instead of 500, ~15 s

The loop versions of the distance run ``--slow-repeats`` times only (once by default);
everything else runs ``--repeats`` times after a warm-up call. Before anything is
reported, each version's result is checked against the vectorised one, so a fast but
wrong version cannot win. The exit status is 1 if a target (no-loop distance >= 100x
the two-loop one, vectorised losses >= 50x the naive ones) is missed. The loss tables also
time the loss's two matrix products alone, and print the "ceiling": the speed-up the loss
would have if those products ran at this machine's best float64 GEMM rate.
"""

import argparse
import sys
import time

import numpy as np

from linear_classifiers.k_nearest_neighbor import KNearestNeighbor
from linear_classifiers.linear_svm import svm_loss_naive, svm_loss_vectorized
from linear_classifiers.softmax import softmax_loss_naive, softmax_loss_vectorized

DISTANCE_TARGET = 100  # no-loop vs two-loop speed-up the course asks for
LOSS_TARGET = 50  # vectorised vs naive loss


def median_time(fn, repeats, warmup=True):
    """Median and minimum wall time of ``repeats`` calls, and the last call's result.

    The minimum is printed alongside because on a shared machine it shows what an
    undisturbed call costs; the ratios use medians.
    """
    if warmup:
        fn()  # first-touch page faults and lazy initialisation
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return (float(np.median(times)), min(times)), result


def gemm_peak_gflops(repeats, n=1536):
    """The float64 rate of a large square ``A @ B``: what BLAS reaches on this machine at best."""
    rng = np.random.default_rng(1)
    A, B = rng.standard_normal((n, n)), rng.standard_normal((n, n))
    (_, best), _ = median_time(lambda: A @ B, repeats)
    return 2 * n ** 3 / best / 1e9


def check_close(name, got, ref, tol):
    got, ref = np.asarray(got, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    err = np.max(np.abs(got - ref)) / max(1e-12, np.max(np.abs(ref)))
    if not err <= tol:
        raise AssertionError(f"{name} disagrees with the vectorised result: relative error {err:.2e}")


def bench_distances(args, rng, torch):
    """Title, rows ``(implementation, (median, min), calls)`` with the loop versions first, and
    no ceiling (None)."""
    X_train = rng.integers(0, 256, size=(args.num_train, args.dim)).astype(np.float64)
    X_test = rng.integers(0, 256, size=(args.num_test, args.dim)).astype(np.float64)
    knn = KNearestNeighbor().train(X_train, rng.integers(10, size=args.num_train))
    t_none, ref = median_time(lambda: knn.compute_distances_no_loops(X_test), args.repeats)
    t_two, d_two = median_time(lambda: knn.compute_distances_two_loops(X_test), args.slow_repeats, warmup=False)
    check_close("two-loop distance", d_two, ref, 1e-9)
    t_one, d_one = median_time(lambda: knn.compute_distances_one_loop(X_test), args.slow_repeats, warmup=False)
    check_close("one-loop distance", d_one, ref, 1e-9)
    rows = [("two loops", t_two, args.slow_repeats), ("one loop", t_one, args.slow_repeats),
            ("no loops", t_none, args.repeats)]
    if torch is not None:
        ta, tb = torch.tensor(X_test), torch.tensor(X_train)
        t_torch, d_torch = median_time(lambda: torch.cdist(ta, tb), args.repeats)
        check_close("torch.cdist", d_torch.numpy(), ref, 1e-9)
        rows.append(("torch.cdist", t_torch, args.repeats))
    return f"L2 distances {args.num_test} x {args.num_train}, D = {args.dim}", rows, None


def bench_loss(name, naive, vectorized, torch_loss, args, rng, torch):
    """Title, rows ``(implementation, (median, min), calls)`` with the naive version first, and
    the speed-up the two products would allow at the machine's best GEMM rate."""
    W = 1e-4 * rng.standard_normal((args.dim + 1, 10))
    X = rng.standard_normal((args.loss_batch, args.dim + 1))
    y = rng.integers(10, size=args.loss_batch)
    reg = 0.1
    naive_calls = max(3, args.repeats // 3)
    t_vec, (loss_v, dW_v) = median_time(lambda: vectorized(W, X, y, reg), args.repeats)
    t_naive, (loss_n, dW_n) = median_time(lambda: naive(W, X, y, reg), naive_calls)
    check_close(f"{name} naive loss", loss_n, loss_v, 1e-9)
    check_close(f"{name} naive dW", dW_n, dW_v, 1e-9)
    # The vectorised loss is two products, X @ W and dscores.T @ X, of 2 * N * D * C flops each;
    # timed alone (with the product the loss uses) they are the floor any NumPy version stands on.
    dscores = rng.standard_normal((X.shape[0], W.shape[1]))
    t_products, _ = median_time(lambda: (X @ W, dscores.T @ X), args.repeats)
    rows = [("naive", t_naive, naive_calls), ("vectorized", t_vec, args.repeats),
            ("2 products only", t_products, args.repeats)]
    if torch is not None:
        tX, ty = torch.tensor(X), torch.tensor(y)

        def torch_step():
            tW = torch.tensor(W, requires_grad=True)
            loss = torch_loss(torch, tX @ tW, ty) + reg * (tW ** 2).sum()
            loss.backward()
            return loss.item(), tW.grad.numpy()

        t_torch, (loss_t, dW_t) = median_time(torch_step, args.repeats)
        check_close(f"{name} torch loss", loss_t, loss_v, 1e-9)
        check_close(f"{name} torch dW", dW_t, dW_v, 1e-9)
        rows.append(("torch autograd", t_torch, args.repeats))
    flops = 4 * X.shape[0] * X.shape[1] * W.shape[1]
    ceiling = t_naive[0] / (flops / (args.peak_gflops * 1e9))
    title = f"{name} loss + gradient, W ({args.dim + 1}, 10), X ({args.loss_batch}, {args.dim + 1})"
    return title, rows, ceiling


def torch_svm(torch, scores, y):
    # multi_margin_loss averages each sample's hinge sum over C; the course's loss sums it.
    return torch.nn.functional.multi_margin_loss(scores, y, margin=1.0) * scores.shape[1]


def torch_softmax(torch, scores, y):
    return torch.nn.functional.cross_entropy(scores, y)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-test", type=int, default=500)
    parser.add_argument("--num-train", type=int, default=5000)
    parser.add_argument("--dim", type=int, default=3072, help="D of the distances; the losses use D + 1")
    parser.add_argument("--loss-batch", type=int, default=500, help="N of the losses")
    parser.add_argument("--repeats", type=int, default=9, help="timed calls of the fast versions")
    parser.add_argument("--slow-repeats", type=int, default=1, help="timed calls of the loop distances")
    parser.add_argument("--quick", action="store_true", help="50 test vectors instead of 500")
    parser.add_argument("--torch-threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch rows")
    args = parser.parse_args(argv)
    for flag in ("repeats", "slow_repeats"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag.replace('_', '-')} must be at least 1, got {getattr(args, flag)}")
    if args.quick:
        args.num_test = 50

    torch = None
    if not args.no_torch:
        try:
            import torch
        except ImportError:
            print("(torch not installed: PyTorch rows skipped)")
        else:
            if args.torch_threads:
                torch.set_num_threads(args.torch_threads)

    rng = np.random.default_rng(0)
    args.peak_gflops = gemm_peak_gflops(args.repeats)
    # (title, rows, ceiling, the vectorised row, what the target compares, target)
    sections = [
        bench_distances(args, rng, torch) + ("no loops", DISTANCE_TARGET),
        bench_loss("SVM", svm_loss_naive, svm_loss_vectorized, torch_svm, args, rng, torch)
        + ("vectorized", LOSS_TARGET),
        bench_loss("softmax", softmax_loss_naive, softmax_loss_vectorized, torch_softmax, args, rng, torch)
        + ("vectorized", LOSS_TARGET),
    ]

    print("float64; speed-up = median of the first (loop) row / median of this row"
          + (f"; torch CPU with {torch.get_num_threads()} thread(s)" if torch else ""))
    header = f"{'implementation':<16} {'median ms':>11} {'min ms':>11} {'calls':>6} {'speed-up':>9}"
    missed = []
    for title, rows, ceiling, fast, target in sections:
        print(f"\n{title}")
        print(header)
        print("-" * len(header))
        baseline = rows[0][1][0]
        medians = {}
        for impl, (med, best), calls in rows:
            medians[impl] = med
            print(f"{impl:<16} {1e3 * med:11.2f} {1e3 * best:11.2f} {calls:6d} {baseline / med:8.1f}x")
        torch_rows = [impl for impl in medians if impl.startswith("torch")]
        if torch_rows:
            print(f"NumPy {fast} / {torch_rows[0]} (time ratio): {medians[fast] / medians[torch_rows[0]]:.2f}")
        speedup = baseline / medians[fast]
        verdict = "met" if speedup >= target else "MISSED"
        print(f"target: {fast} >= {target}x faster than {rows[0][0]}: {speedup:.0f}x, {verdict}")
        if ceiling is not None:
            print(f"ceiling: with both products at this machine's best float64 GEMM rate "
                  f"({args.peak_gflops:.0f} GFLOP/s, a 1536^3 product) and nothing else costing "
                  f"time, {fast} could be at most {ceiling:.0f}x faster than {rows[0][0]}")
        if speedup < target:
            missed.append(title)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
