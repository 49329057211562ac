"""Benchmark: RNN and LSTM over sequences, step by step vs the toolkit vs PyTorch CPU.

"step loop" is the course's way of writing ``rnn_forward`` / ``lstm_forward``: call the step
layer T times, each with its own ``x_t @ Wx``, and sum the weight gradients step by step in
the backward. The toolkit's sequence layers do the input projection and the weight gradients
as single GEMMs over all N*T rows. PyTorch runs ``nn.RNN`` / ``nn.LSTM`` (forward, and
backward through autograd) on the same weights. Every case first checks that all three agree.
float32; times are medians, forward and backward separately::

    python benchmarks/bench_rnn.py              # about a minute
    python benchmarks/bench_rnn.py --quick
"""

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_conv import setup_threads, time_interleaved  # noqa: E402
from deep_learning_suite import rnn_layers as R  # noqa: E402

# N, T, D, H: the captioning notebooks' LSTM (batch 25, 16 words, 256-d word vectors,
# 512 hidden units), a larger batch, and a small recurrent net.
CASES = [(25, 16, 256, 512), (128, 16, 256, 512), (64, 32, 64, 128)]


def step_loop_forward(kind, x, h0, Wx, Wh, b):
    N, T, _ = x.shape
    h, caches, prev, c = [], [], h0, np.zeros_like(h0)
    for t in range(T):
        if kind == "rnn":
            prev, cache = R.rnn_step_forward(x[:, t], prev, Wx, Wh, b)
        else:
            prev, c, cache = R.lstm_step_forward(x[:, t], prev, c, Wx, Wh, b)
        h.append(prev)
        caches.append(cache)
    return np.stack(h, axis=1), caches


def step_loop_backward(kind, dh, caches):
    T = dh.shape[1]
    dx = [None] * T
    dprev, dc = np.zeros_like(dh[:, 0]), np.zeros_like(dh[:, 0])
    dWx = dWh = db = 0
    for t in reversed(range(T)):
        if kind == "rnn":
            dx[t], dprev, gWx, gWh, gb = R.rnn_step_backward(dh[:, t] + dprev, caches[t])
        else:
            dx[t], dprev, dc, gWx, gWh, gb = R.lstm_step_backward(dh[:, t] + dprev, dc, caches[t])
        dWx, dWh, db = dWx + gWx, dWh + gWh, db + gb
    return np.stack(dx, axis=1), dprev, dWx, dWh, db


def gate_order(kind, H):
    """Columns of the course's weights in PyTorch's order: the LSTM's gates i, f, o, g become
    PyTorch's i, f, g, o; the RNN's one block stays as it is."""
    if kind == "rnn":
        return np.arange(H)
    return np.concatenate([np.arange(k * H, (k + 1) * H) for k in (0, 1, 3, 2)])


def torch_module(torch, kind, Wx, Wh, b):
    D, gH = Wx.shape
    H = Wh.shape[0]
    mod = (torch.nn.RNN if kind == "rnn" else torch.nn.LSTM)(D, H, batch_first=True)
    order = gate_order(kind, H)
    with torch.no_grad():
        mod.weight_ih_l0.copy_(torch.from_numpy(np.ascontiguousarray(Wx[:, order].T)))
        mod.weight_hh_l0.copy_(torch.from_numpy(np.ascontiguousarray(Wh[:, order].T)))
        mod.bias_ih_l0.copy_(torch.from_numpy(b[order]))
        mod.bias_hh_l0.zero_()
    return mod


def agree(who, name, mine, ref, tol=1e-4):
    """Refuse (SystemExit, never ``assert``, which ``python -O`` strips) a result off the reference
    by more than ``tol`` of its scale (at least 1)."""
    err = np.abs(mine - ref).max() / max(1.0, np.abs(ref).max())
    if not err <= tol:
        raise SystemExit(f"{who} disagrees on {name}: max error {err:.2e} of the reference's scale "
                         f"(tolerance {tol:.0e}); nothing is timed")


def bench_case(torch, kind, N, T, D, H, repeats):
    rng = np.random.default_rng(0)
    g = 1 if kind == "rnn" else 4
    x = rng.standard_normal((N, T, D), dtype=np.float32)
    h0 = rng.standard_normal((N, H), dtype=np.float32)
    Wx = (rng.standard_normal((D, g * H)) / np.sqrt(D)).astype(np.float32)
    Wh = (rng.standard_normal((H, g * H)) / np.sqrt(H)).astype(np.float32)
    b = rng.standard_normal(g * H).astype(np.float32)
    dout = rng.standard_normal((N, T, H), dtype=np.float32)
    forward, backward = (R.rnn_forward, R.rnn_backward) if kind == "rnn" else (R.lstm_forward, R.lstm_backward)

    h, cache = forward(x, h0, Wx, Wh, b)
    grads = backward(dout, cache)
    h_loop, caches = step_loop_forward(kind, x, h0, Wx, Wh, b)
    names = ("h", "dx", "dh0", "dWx", "dWh", "db")
    for name, mine, ref in zip(names, (h,) + grads, (h_loop,) + step_loop_backward(kind, dout, caches)):
        agree("step loop", name, mine, ref)

    steps = {
        "step loop": (lambda: step_loop_forward(kind, x, h0, Wx, Wh, b),
                      lambda out, c: step_loop_backward(kind, dout, c)),
        "toolkit": (lambda: forward(x, h0, Wx, Wh, b), lambda out, c: backward(dout, c)),
    }
    if torch is not None:
        mod = torch_module(torch, kind, Wx, Wh, b)
        tx, th0, tdout = torch.from_numpy(x), torch.from_numpy(h0[None].copy()), torch.from_numpy(dout)
        state = th0 if kind == "rnn" else (th0, torch.zeros_like(th0))
        tx.requires_grad_(True)
        th0.requires_grad_(True)
        out, _ = mod(tx, state)
        tgrads = torch.autograd.grad(out, [tx, th0, mod.weight_ih_l0, mod.weight_hh_l0, mod.bias_ih_l0], tdout)
        back = np.argsort(gate_order(kind, H))  # PyTorch's gate order back to the course's
        tdx, tdh0, tdWx, tdWh, tdb = (g.numpy() for g in tgrads)
        for name, mine, ref in zip(names, (h,) + grads,
                                   (out.detach().numpy(), tdx, tdh0[0], tdWx.T[:, back], tdWh.T[:, back],
                                    tdb[back])):
            agree("torch", name, mine, ref)

        def t_forward():
            out, _ = mod(tx, state)
            return out, None

        def t_backward(out, _):
            torch.autograd.grad(out, [tx] + list(mod.parameters()), tdout)
        steps["torch"] = (t_forward, t_backward)
    return time_interleaved(steps, repeats)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per measurement (default 15, quick 5)")
    parser.add_argument("--quick", action="store_true", help="5 repeats unless --repeats says otherwise")
    parser.add_argument("--no-torch", action="store_true")
    args = parser.parse_args(argv)
    if args.repeats is not None and args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")
    repeats = args.repeats or (5 if args.quick else 15)
    torch = None
    if not args.no_torch:
        try:
            import torch
        except ImportError:
            print("(torch not installed: PyTorch column skipped)")
        else:
            print(setup_threads(torch))
    print(f"float32, median of {repeats} runs, ms (forward / backward); ratios of forward+backward")
    header = (f"{'cell':<5} {'N, T, D, H':<18} {'step loop':>15} {'toolkit':>15} {'torch':>15} "
              f"{'toolkit/loop':>13} {'toolkit/torch':>14}")
    print(header)
    print("-" * len(header))
    for kind in ("rnn", "lstm"):
        for N, T, D, H in CASES:
            r = bench_case(torch, kind, N, T, D, H, repeats)
            total = {k: sum(v) for k, v in r.items()}
            cell = {k: f"{v[0]:.2f} / {v[1]:.2f}" for k, v in r.items()}
            # .3g: a ratio of 0.004 must not print as 0.00; without torch its column says '-', not nan
            vs_torch = f"{total['toolkit'] / total['torch']:14.3g}" if "torch" in total else f"{'-':>14}"
            print(f"{kind:<5} {f'{N}, {T}, {D}, {H}':<18} {cell['step loop']:>15} {cell['toolkit']:>15} "
                  f"{cell.get('torch', '-'):>15} {total['toolkit'] / total['step loop']:13.3g} {vs_torch}")


if __name__ == "__main__":
    main()
