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
    with pytest.raises(SystemExit, match="step loop disagrees"):
        bench.bench_case(None, "lstm", 2, 3, 4, 5, repeats=1)


@pytest.mark.parametrize("kind", ["rnn", "lstm"])
@pytest.mark.parametrize("which", range(5))  # dx, dh0, dWx, dWh, db
def test_a_gradient_torch_disagrees_with_is_not_timed(monkeypatch, kind, which):
    # The same wrong gradient from the sequence layer and the step loop: only torch can tell.
    bench = load_script()
    torch = pytest.importorskip("torch")

    def wrong(backward):
        return lambda *a: tuple(1.01 * g if i == which else g for i, g in enumerate(backward(*a)))

    name = f"{kind}_backward"
    monkeypatch.setattr(bench.R, name, wrong(getattr(bench.R, name)))
    monkeypatch.setattr(bench, "step_loop_backward", wrong(bench.step_loop_backward))
    with pytest.raises(SystemExit, match="torch disagrees"):
        bench.bench_case(torch, kind, 2, 3, 4, 5, repeats=1)


def test_quick_honours_repeats_and_no_torch_prints_dashes(monkeypatch, capsys):
    bench = load_script()
    monkeypatch.setattr(bench, "CASES", [(2, 3, 4, 5)])
    calls = []
    real = bench.time_interleaved
    monkeypatch.setattr(bench, "time_interleaved", lambda steps, repeats: calls.append(repeats) or real(steps, repeats))
    bench.main(["--quick", "--repeats", "3", "--no-torch"])
    out = capsys.readouterr().out
    assert "median of 3 runs" in out and set(calls) == {3}
    rows = [line.split() for line in out.splitlines() if line.startswith(("rnn ", "lstm "))]
    assert len(rows) == 2
    for row in rows:
        assert row[-3] == "-" and row[-1] == "-"  # the torch times and the toolkit/torch ratio
        assert np.isfinite(float(row[-2]))
    bench.main(["--quick", "--no-torch"])
    assert "median of 5 runs" in capsys.readouterr().out


@pytest.mark.parametrize("flags", [["--repeats", "0"], ["--repeats", "-1"], ["--quick", "--repeats", "0"]])
def test_fewer_than_one_repeat_is_refused(capsys, flags):
    with pytest.raises(SystemExit) as stop:
        load_script().main(flags)
    assert stop.value.code == 2 and "--repeats" in capsys.readouterr().err
