"""Benchmark: this toolkit's pure-NumPy fast layers against the course's own (Cython) fast layers.

The CS231n assignment ships ``cs231n/fast_layers.py``: a convolution whose
backward's col2im is a compiled Cython loop (``im2col_cython.pyx``), and max
pooling by reshaping (windows that tile the input) or by im2col (any other
window). This script loads that code from your own copy of the assignment and
times it beside ``deep_learning_suite.fast_layers`` and PyTorch CPU, in the
same run, on the same arrays::

    cd assignment2/cs231n && python setup.py build_ext --inplace   # once, as the notebook asks
    python benchmarks/bench_course.py --course-dir assignment2
    python benchmarks/bench_course.py --course-dir assignment2 --quick      # the notebook's two cases
    python benchmarks/bench_course.py --course-dir assignment2 --dtype float32

``--course-dir`` is the folder that holds the ``cs231n`` package (the one the
notebooks run in). None of the course's code is part of this project.

Before timing, every case checks that the course's code and this toolkit's
give the same output and gradients (the table's ``max |diff|``); pooling inputs
have no ties, so both route each gradient to the same element. The course's
code and this toolkit's run alternately, one forward + backward each, so that
the machine's drift during the run is shared by both. The ratio columns are
``impl / course`` of medians (< 1: faster than the course's code).
"""

import argparse
import importlib
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_conv import setup_threads, time_interleaved  # noqa: E402
from deep_learning_suite import fast_layers  # noqa: E402
from deep_learning_suite.layers import relu_backward, relu_forward  # noqa: E402

# The ConvolutionalNetworks notebook's own comparisons of naive and fast layers.
NOTEBOOK_CASES = [
    ("conv", (100, 3, 31, 31), (25, 3, 3, 3), 2, 1),
    ("pool", (100, 3, 32, 32), 2, 2),
]
# bench_conv.py's cases, and the conv - relu - 2x2 pool sandwich of ThreeLayerConvNet.
MORE_CASES = [
    ("conv", (128, 3, 32, 32), (32, 3, 7, 7), 1, 3),
    ("conv", (64, 64, 32, 32), (64, 64, 3, 3), 1, 1),
    ("pool", (128, 32, 32, 32), 2, 2),
    ("pool", (64, 64, 33, 33), 3, 2),
    ("sandwich", (128, 3, 32, 32), (32, 3, 7, 7), 1, 3),
]
IMPLS = ("course", "fast", "torch")


def load_course(course_dir):
    """The course's ``cs231n.fast_layers`` module, imported from ``course_dir``; SystemExit if it cannot be."""
    root = Path(course_dir).expanduser().resolve()
    package = root / "cs231n"
    if not (package / "fast_layers.py").is_file():
        raise SystemExit(f"--course-dir {course_dir}: there is no cs231n/fast_layers.py in it; pass the "
                         f"assignment folder that holds the course's cs231n package (the notebooks' folder)")
    for name in [m for m in sys.modules if m == "cs231n" or m.startswith("cs231n.")]:
        del sys.modules[name]  # another copy imported earlier must not answer for this one
    sys.path.insert(0, str(root))
    try:
        try:
            importlib.import_module("cs231n.im2col_cython")
        except ImportError as e:
            raise SystemExit(f"the course's Cython extension is not built ({e}); build it with: cd {package} "
                             f"&& python setup.py build_ext --inplace (needs Cython and a C compiler)") from None
        module = importlib.import_module("cs231n.fast_layers")
    finally:
        sys.path.remove(str(root))
    if Path(module.__file__).resolve().parent != package:
        raise SystemExit(f"imported cs231n.fast_layers from {module.__file__}, not from {package}")
    return module


def max_diff(mine, ref):
    """Largest absolute difference, scaled by the largest reference value (0 when both are 0)."""
    mine, ref = np.asarray(mine), np.asarray(ref)
    if mine.shape != ref.shape:
        raise SystemExit(f"shapes differ: {mine.shape} vs the course's {ref.shape}")
    return float(np.max(np.abs(mine - ref)) / max(1e-30, float(np.max(np.abs(ref)))))


def torch_inputs(torch, arrays, dout):
    """Leaf tensors sharing ``arrays``' memory, and ``backward(out, _)`` returning their gradients."""
    leaves = [torch.from_numpy(a).requires_grad_(True) for a in arrays]
    tdout = torch.from_numpy(dout)

    def backward(out, _):
        for t in leaves:
            t.grad = None
        out.backward(tdout)
        return tuple(t.grad for t in leaves)

    return leaves, backward


def conv_steps(course, torch, x, w, b, dout, stride, pad):
    F = torch.nn.functional
    cp = {"stride": stride, "pad": pad}
    (tx, tw, tb), torch_backward = torch_inputs(torch, (x, w, b), dout)
    return {
        "course": (lambda: course.conv_forward_fast(x, w, b, cp), lambda o, c: course.conv_backward_fast(dout, c)),
        "fast": (lambda: fast_layers.conv_forward_fast(x, w, b, cp),
                 lambda o, c: fast_layers.conv_backward_fast(dout, c)),
        "torch": (lambda: (F.conv2d(tx, tw, tb, stride=stride, padding=pad), None), torch_backward),
    }


def pool_steps(course, torch, x, dout, size, stride):
    F = torch.nn.functional
    pp = {"pool_height": size, "pool_width": size, "stride": stride}
    (tx,), torch_backward = torch_inputs(torch, (x,), dout)
    return {
        "course": (lambda: course.max_pool_forward_fast(x, pp),
                   lambda o, c: (course.max_pool_backward_fast(dout, c),)),
        "fast": (lambda: fast_layers.max_pool_forward_fast(x, pp),
                 lambda o, c: (fast_layers.max_pool_backward_fast(dout, c),)),
        "torch": (lambda: (F.max_pool2d(tx, size, stride=stride), None), torch_backward),
    }


def sandwich_steps(course, torch, x, w, b, dout, stride, pad):
    """conv - relu - 2x2 max pool (ThreeLayerConvNet's first block), with each side's conv and pool."""
    F = torch.nn.functional
    cp = {"stride": stride, "pad": pad}
    pp = {"pool_height": 2, "pool_width": 2, "stride": 2}

    def numpy_steps(layers):
        def forward():
            a, conv_cache = layers.conv_forward_fast(x, w, b, cp)
            s, relu_cache = relu_forward(a)
            out, pool_cache = layers.max_pool_forward_fast(s, pp)
            return out, (conv_cache, relu_cache, pool_cache)

        def backward(_, cache):
            conv_cache, relu_cache, pool_cache = cache
            ds = layers.max_pool_backward_fast(dout, pool_cache)
            return layers.conv_backward_fast(relu_backward(ds, relu_cache), conv_cache)

        return forward, backward

    (tx, tw, tb), torch_backward = torch_inputs(torch, (x, w, b), dout)

    def torch_forward():
        return F.max_pool2d(torch.relu(F.conv2d(tx, tw, tb, stride=stride, padding=pad)), 2, stride=2), None

    return {"course": numpy_steps(course), "fast": numpy_steps(fast_layers), "torch": (torch_forward, torch_backward)}


def make_case(course, torch, rng, case, dtype):
    """``(label, steps)`` for one case; the inputs are drawn here, once, and shared by every implementation."""
    kind = case[0]
    if kind == "pool":
        _, x_shape, size, stride = case
        # Distinct values: no ties, so every implementation routes each gradient to the same element.
        x = (rng.permutation(int(np.prod(x_shape))).reshape(x_shape) / np.prod(x_shape)).astype(dtype)
        out, _ = fast_layers.max_pool_forward_fast(x, {"pool_height": size, "pool_width": size, "stride": stride})
        dout = rng.standard_normal(out.shape).astype(dtype)
        return f"maxpool x{x_shape} {size}x{size}/{stride}", pool_steps(course, torch, x, dout, size, stride)
    _, x_shape, w_shape, stride, pad = case
    x = rng.standard_normal(x_shape).astype(dtype)
    w = (0.1 * rng.standard_normal(w_shape)).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype)
    out, _ = fast_layers.conv_forward_fast(x, w, b, {"stride": stride, "pad": pad})
    shape = f"x{x_shape} w{w_shape[0]}x{w_shape[2]}x{w_shape[3]} s{stride} p{pad}"
    if kind == "conv":
        dout = rng.standard_normal(out.shape).astype(dtype)
        return f"conv {shape}", conv_steps(course, torch, x, w, b, dout, stride, pad)
    N, F_, H, W = out.shape
    dout = rng.standard_normal((N, F_, H // 2, W // 2)).astype(dtype)
    return f"conv-relu-pool {shape}", sandwich_steps(course, torch, x, w, b, dout, stride, pad)


def agreement(steps):
    """Largest scaled difference between the course's results (output and gradients) and each other impl's."""
    results = {}
    for name, (forward, backward) in steps.items():
        out, cache = forward()
        grads = backward(out, cache)
        results[name] = [np.asarray(a.detach().numpy() if hasattr(a, "detach") else a) for a in (out, *grads)]
    ref = results["course"]
    return {name: max(max_diff(m, r) for m, r in zip(mine, ref)) for name, mine in results.items() if name != "course"}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--course-dir", required=True,
                        help="the assignment folder that holds the course's cs231n package, Cython extension built")
    parser.add_argument("--dtype", choices=("float64", "float32", "both"), default="both",
                        help="float64 is what the notebook's np.random.randn inputs are (default: both)")
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds per case (default 15, quick 5)")
    parser.add_argument("--quick", action="store_true", help="only the notebook's two cases, 5 rounds")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.repeats is not None and args.repeats < 1:
        parser.error("--repeats must be at least 1")
    repeats = args.repeats or (5 if args.quick else 15)
    dtypes = ("float64", "float32") if args.dtype == "both" else (args.dtype,)
    cases = NOTEBOOK_CASES if args.quick else NOTEBOOK_CASES + MORE_CASES

    course = load_course(args.course_dir)
    try:
        import torch
    except ImportError:
        raise SystemExit("bench_course.py times PyTorch CPU in the same run, and PyTorch is not installed: "
                         "pip install -c .ci/constraints.txt -e '.[torch]'") from None

    threads = setup_threads(torch)
    tolerance = {"float64": 1e-9, "float32": 1e-4}
    rng = np.random.default_rng(args.seed)
    print(f"course code: {Path(course.__file__).resolve()}")
    print(f"numpy {np.__version__}, torch {torch.__version__}, {repeats} rounds, medians in ms")
    print(threads)
    print("ratios are impl / course for forward, backward and forward+backward (< 1: faster than the course's "
          "code)\n")
    print(f"{'case':<48} {'dtype':<8} {'impl':<7} {'forward':>9} {'backward':>9} {'total':>9} "
          f"{'fwd':>6} {'bwd':>6} {'total':>6}  max |diff|")
    start = time.perf_counter()
    wins = total = 0
    for dtype in dtypes:
        for case in cases:
            label, steps = make_case(course, torch, rng, case, dtype)
            diffs = agreement(steps)
            if diffs["fast"] > tolerance[dtype]:
                raise SystemExit(f"{label} {dtype}: this toolkit and the course's code disagree (max difference "
                                 f"{diffs['fast']:.1e} of the largest value); not timing code that is wrong")
            times = time_interleaved(steps, repeats)
            cf, cb = times["course"]
            for name in IMPLS:
                f, b = times[name]
                ratios = "" if name == "course" else f"{f / cf:6.2f} {b / cb:6.2f} {(f + b) / (cf + cb):6.2f}"
                diff = "" if name == "course" else f"{diffs[name]:.1e}"
                line = (f"{label if name == 'course' else '':<48} {dtype if name == 'course' else '':<8} {name:<7} "
                        f"{f:9.2f} {b:9.2f} {f + b:9.2f} {ratios:>20}  {diff}")
                print(line.rstrip())
            total += 1
            wins += sum(times["fast"]) < cf + cb
    print(f"\nthis toolkit's forward+backward is faster than the course's code in {wins} of {total} cases "
          f"(total benchmark time {time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
