"""bench_rnn.py's paths, on tiny cases: the table, and the agreement check that keeps a fast
but wrong implementation from being timed."""

import numpy as np
import pytest

from . import load_benchmark

pytest.importorskip("torch")


def load_script():
    return load_benchmark("bench_rnn")


def test_table_has_every_cell_and_case(monkeypatch, capsys):
    bench = load_script()
    monkeypatch.setattr(bench, "CASES", [(3, 4, 5, 6), (2, 1, 3, 4)])
    bench.main(["--repeats", "2"])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith(("rnn ", "lstm "))]
    assert len(rows) == 4
    for row in rows:
        ratios = [float(v) for v in row.split()[-2:]]
        assert all(np.isfinite(r) and r > 0 for r in ratios)


def test_the_step_loop_matches_the_sequence_layers(rng):
    bench = load_script()
    for kind, g in (("rnn", 1), ("lstm", 4)):
        x, h0 = rng.standard_normal((2, 5, 3)), rng.standard_normal((2, 4))
        Wx, Wh, b = rng.standard_normal((3, g * 4)), rng.standard_normal((4, g * 4)), rng.standard_normal(g * 4)
        h, caches = bench.step_loop_forward(kind, x, h0, Wx, Wh, b)
        dout = rng.standard_normal(h.shape)
        grads = bench.step_loop_backward(kind, dout, caches)
        forward, backward = (bench.R.rnn_forward, bench.R.rnn_backward) if kind == "rnn" else \
            (bench.R.lstm_forward, bench.R.lstm_backward)
        ref, cache = forward(x, h0, Wx, Wh, b)
        np.testing.assert_allclose(h, ref, rtol=1e-12, atol=1e-12)
        for mine, theirs in zip(grads, backward(dout, cache)):
            np.testing.assert_allclose(mine, theirs, rtol=1e-10, atol=1e-12)


def test_a_wrong_sequence_layer_is_not_timed(monkeypatch):
    bench = load_script()
    real = bench.R.lstm_forward
    monkeypatch.setattr(bench.R, "lstm_forward", lambda *a: (1.01 * real(*a)[0], real(*a)[1]))
    with pytest.raises(AssertionError, match="step loop disagrees"):
        bench.bench_case(None, "lstm", 2, 3, 4, 5, repeats=1)
