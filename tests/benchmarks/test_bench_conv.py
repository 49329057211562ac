"""bench_conv.py's refusal to time wrong code, on tiny cases: the naive layers are checked
against the fast ones (as the fast ones are against torch) before any time is reported."""

import numpy as np
import pytest

from . import load_benchmark

pytest.importorskip("torch")


def tiny_script(monkeypatch):
    bench = load_benchmark("bench_conv")
    monkeypatch.setattr(bench, "CONV_CASES", [((2, 3, 6, 6), (4, 3, 3, 3), 1, 1)])
    monkeypatch.setattr(bench, "POOL_CASES", [((2, 3, 6, 6), 2, 2)])
    monkeypatch.setattr(bench, "bench_model", lambda *a, **k: None)
    return bench


def test_tiny_cases_run_and_report_every_implementation(monkeypatch, capsys):
    tiny_script(monkeypatch).main(["--repeats", "1"])
    lines = capsys.readouterr().out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("case ")) + 1
    table = lines[start:lines.index("", start)]
    impls = [line[39:45].strip() for line in table if line[39:45].strip()]
    assert impls == ["naive", "fast", "torch"] * 2
    assert table[0].startswith("conv x(2, 3, 6, 6)") and table[3].startswith("maxpool x(2, 3, 6, 6)")


@pytest.mark.parametrize("name, wrong", [
    ("conv_forward_naive", lambda real: lambda *a: (2 * real(*a)[0], real(*a)[1])),
    ("conv_backward_naive", lambda real: lambda *a: tuple(np.zeros_like(g) for g in real(*a))),
    ("max_pool_forward_naive", lambda real: lambda *a: (real(*a)[0] + 1, real(*a)[1])),
    ("max_pool_backward_naive", lambda real: lambda *a: np.zeros_like(real(*a)))])
def test_a_wrong_naive_layer_is_not_timed(monkeypatch, capsys, name, wrong):
    bench = tiny_script(monkeypatch)
    monkeypatch.setattr(bench, name, wrong(getattr(bench, name)))
    with pytest.raises(SystemExit, match="naive and fast disagree"):
        bench.main(["--repeats", "1"])
    # the case of the wrong layer has no row: nothing of it was reported
    case = "conv x" if name.startswith("conv") else "maxpool x"
    assert not any(line.startswith(case) for line in capsys.readouterr().out.splitlines())


@pytest.mark.parametrize("flags", [["--repeats", "0"], ["--repeats", "-1"], ["--quick", "--repeats", "0"]])
def test_fewer_than_one_repeat_is_refused(monkeypatch, capsys, flags):
    # 0 used to mean the default 15 and -1 crashed after the first timings
    with pytest.raises(SystemExit) as stop:
        tiny_script(monkeypatch).main(flags)
    assert stop.value.code == 2 and "--repeats must be at least 1" in capsys.readouterr().err


def test_fast_and_torch_are_timed_in_turns(monkeypatch, capsys):
    # Both sides of every fast/torch ratio come from one interleaved run (see time_interleaved),
    # so drift of a loaded machine moves them alike.
    bench = tiny_script(monkeypatch)
    timed = []
    real = bench.time_interleaved
    monkeypatch.setattr(bench, "time_interleaved", lambda steps, repeats: timed.append(sorted(steps))
                        or real(steps, repeats))
    bench.main(["--repeats", "2"])
    assert timed == [["fast", "torch"], ["fast", "torch"]]      # the conv case, then the pool case
