"""The GPU benchmark runs on a lent machine with minutes of budget: every path of it is run
here first, on CPU, with Fashion-MNIST-format files the test writes, so it cannot fail there
on a typo."""

import re
from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")

from .._idx_files import write_idx_set  # noqa: E402
from . import load_benchmark  # noqa: E402


def load_script():
    return load_benchmark("gpu_cifar")


def quick_run(tmp_path, capsys, *flags):
    """``gpu_cifar.py --quick`` on Fashion-MNIST-format files written here: (exit status,
    what it printed)."""
    write_idx_set(tmp_path / "fm", n_train=300, n_test=100)
    # An unlimited budget: on a loaded machine the default one could skip a run the tests expect.
    rc = load_script().main(["--quick", "--data", str(tmp_path / "fm"), "--budget", "1e9", *flags])
    return rc, capsys.readouterr().out


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def test_every_run_kind_reaches_the_table_and_the_verdict(tmp_path, capsys):
    rc, out = quick_run(tmp_path, capsys, "--seeds", "0,1",
                        "--compare=--no-lookahead --label-smoothing 0.1", "--val-size", "60",
                        "--sweep-epochs", "1", "--profile-compare=--no-lookahead")
    assert rc == 0
    assert "skipped" not in out
    table = out[out.index("results on CPU"):]
    labels = re.findall(r"^\| (.+?) +\| +\d+ \|", table, flags=re.M)
    # the judged eager runs first, seed by seed with each variant after the default, so the
    # host's drift in speed hits all alike; compiled (CUDA only) and profiled runs, which slow
    # the process down for whatever follows them, last
    assert labels == [
        "fastnet default, seed 0", "fastnet --no-lookahead --label-smoothing 0.1, seed 0",
        "fastnet default, seed 1", "fastnet --no-lookahead --label-smoothing 0.1, seed 1",
        "fastnet default, val, seed 0",
        "fastnet --no-lookahead --label-smoothing 0.1, val, seed 0",
        "fastnet default, val, seed 1",
        "fastnet --no-lookahead --label-smoothing 0.1, val, seed 1",
        "fastnet 1 epochs, seed 0", "resnet18",
        "fastnet default, epoch 2 profiled", "fastnet --no-lookahead, epoch 2 profiled"]
    # validation runs report a validation accuracy, the others a dash
    for line in table.splitlines():
        if line.startswith("| fastnet") or line.startswith("| resnet18"):
            val_cell = line.split("|")[9].strip()
            assert (val_cell != "-") == (", val, " in line), line
            assert line.split("|")[11].strip() == "-"  # no GPU clock to read on CPU
    verdicts = re.findall(r"^targets for '(.+)' \((\d) runs", out, flags=re.M)
    assert verdicts == [("fastnet default", "2"),
                        ("fastnet --no-lookahead --label-smoothing 0.1", "2"),
                        ("fastnet 1 epochs", "1")]
    # the profiled run is reported with its table, and kept out of the verdicts
    for label in ("fastnet default", "fastnet --no-lookahead"):
        assert re.search(rf"^{label}, epoch 2 profiled: [\d.]+ s under the profiler, "
                         r"0 kernel launches, \d+ aten ops", out, flags=re.M)
    assert "aten::convolution_backward" in out
    # every fastnet group is scored with each TTA scheme, the resnet18 run is not
    schemes = r"0: [\d.]+%, 1: [\d.]+%, 2: [\d.]+%, 2 c0.5: [\d.]+%, 3: [\d.]+%, 3 c0.5: [\d.]+%$"
    by_tta = re.findall(r"^(.+): (?:test|val) acc by TTA level \(mean of (\d)\): " + schemes,
                        out, flags=re.M)
    assert ("fastnet default", "2") in by_tta and ("fastnet 1 epochs", "1") in by_tta
    assert ("val: fastnet default", "2") in by_tta
    assert ("all validation runs", "4") in by_tta  # 2 seeds of the default and the variant
    assert not any(g.startswith("resnet18") for g, _ in by_tta)
    # each variant against the default of the same seed, on test and on validation runs
    for prefix, what in (("", "test"), ("val: ", "val")):
        assert re.search(rf"^{prefix}fastnet --no-lookahead --label-smoothing 0.1 vs "
                         rf"{prefix}fastnet default, paired by seed \(2\): {what} acc TTA "
                         r"[+-]\d+\.\d\d points, images/s x\d+\.\d\d \(median\), faster on "
                         r"\d of 2$", out, flags=re.M)
    # a tiny CPU run meets no accuracy or speed target, and the verdict must say so
    assert out.count("MISSED") >= 6


def test_paired_line_compares_runs_of_the_same_seed():
    paired_line = load_script().paired_line

    def row(group, seed, acc, ips, secs):
        return (group, "", SimpleNamespace(seed=seed),
                dict(test_acc=acc, images_per_s=ips, train_time_s=secs))

    rows = [row("fastnet default", 0, 0.950, 100.0, 4.0), row("fastnet x", 0, 0.952, 150.0, 3.0),
            row("fastnet default", 1, 0.940, 100.0, 4.0), row("fastnet x", 1, 0.941, 50.0, 5.0),
            row("fastnet x", 2, 0.5, 1.0, 9.0)]  # no default run of seed 2: left out
    line = paired_line(rows, "fastnet default", "fastnet x")
    assert line == ("fastnet x vs fastnet default, paired by seed (2): test acc TTA +0.15 "
                    "points, images/s x1.00 (median), faster on 1 of 2")
    assert paired_line(rows, "fastnet default", "fastnet y") is None


def test_verdict_needs_every_run_to_meet_a_target():
    verdict = load_script().verdict
    ok = dict(test_acc=0.951, train_time_s=3.5, images_per_s=160_000)
    assert all(" MET " in line for line in verdict("g", [ok, ok])[1:])
    lines = verdict("g", [ok, dict(ok, test_acc=0.9499, images_per_s=149_999)])
    assert "MISSED" in lines[1] and "94.99%" in lines[1]
    assert " MET " in lines[2]
    assert "MISSED" in lines[3] and "149,999" in lines[3]


@pytest.mark.parametrize("printed, shown", [("1980, 47\n", "1980/47"),
                                            ("[N/A], 47\n", "[N/A]/47"),
                                            ("garbage\n", "-"), ("", "-")])
def test_gpu_state_reads_nvidia_smi(tmp_path, monkeypatch, printed, shown):
    fake = tmp_path / "nvidia-smi"
    fake.write_text(f"#!/bin/sh\nprintf '{printed}'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    gpu_state = load_script().gpu_state
    assert gpu_state(torch.device("cuda", 0)) == shown
    assert gpu_state(torch.device("cpu")) == "-"


def test_a_failing_variant_is_reported_and_the_rest_still_run(tmp_path, capsys):
    # On CPU --cuda-graph is refused: the stand-in for a variant that breaks on the GPU
    # machine, where the runs after it must still use the session's device time.
    rc, out = quick_run(tmp_path, capsys, "--seeds", "0,1", "--compare=--cuda-graph",
                        "--profile-epoch", "1", "--profile-compare=--cuda-graph",
                        "--val-size", "60")
    assert rc == 1
    assert "-- FAILED fastnet --cuda-graph, seed 0:" in out and "needs a CUDA device" in out
    # a variant that failed is not tried again: its other runs would only fail too
    assert "-- skipped fastnet --cuda-graph, seed 1: it failed before" in out
    assert "-- skipped fastnet --cuda-graph, val, seed 0: it failed before" in out
    assert "-- skipped the profiled --cuda-graph run: it failed before" in out
    assert out.count("-- FAILED") == 1
    table = out[out.index("results on CPU"):]
    labels = re.findall(r"^\| (.+?) +\| +\d+ \|", table, flags=re.M)
    assert labels == ["fastnet default, seed 0", "fastnet default, seed 1",
                      "fastnet default, val, seed 0", "fastnet default, val, seed 1",
                      "resnet18", "fastnet default, epoch 1 profiled"]
    assert "FAILED runs (traceback above each): fastnet --cuda-graph, seed 0" in out


@pytest.mark.parametrize("flags, verdict", [("--warmup-steps 4", "SAME"),
                                            ("--lr 0.4", "DIFFERENT")])
def test_same_weights_check_tells_equal_arithmetic_from_a_change(tmp_path, capsys, flags,
                                                                  verdict):
    # Warm-up is undone, so it leaves the weights as they were; another lr does not.
    rc, out = quick_run(tmp_path, capsys, "--seeds", "0", "--same-as", flags,
                        "--profile-epoch", "0")
    line = re.search(rf"^same weights with {flags}: (\w+) \(largest weight gap (\S+) ", out,
                     flags=re.M)
    assert line and line.group(1) == verdict
    assert (float(line.group(2)) == 0.0) == (verdict == "SAME")
    assert rc == (0 if verdict == "SAME" else 1)


@pytest.mark.parametrize("option, flags, complaint", [
    ("--compare", "--widht 1.25", "unrecognized arguments: --widht"),
    ("--same-as", "--tta 1 --tta-centre-weight 0.5", "--tta-centre-weight"),
    ("--profile-compare", "--cuda-graf", "unrecognized arguments: --cuda-graf")])
def test_flag_sets_the_trainer_refuses_stop_the_script_before_any_run(tmp_path, capsys,
                                                                      option, flags, complaint):
    # On the GPU machine a typo found only when its run came up would have cost the device
    # time of every run before it.
    with pytest.raises(SystemExit) as stop:
        quick_run(tmp_path, capsys, f"{option}={flags}")
    out, err = capsys.readouterr()
    assert stop.value.code == 2
    assert complaint in err and f"{option}={flags!r}" in err and "nothing was run" in err
    assert "-- fastnet" not in out


@pytest.mark.parametrize("option, value", [("--seeds", ""), ("--seeds", ","), ("--seeds", "0,x"),
                                           ("--sweep-epochs", "1,x"), ("--sweep-epochs", "1.5"),
                                           ("--sweep-epochs", "0"), ("--sweep-seeds", "0;1"),
                                           ("--compile-seeds", "x")])
def test_malformed_lists_stop_the_script_before_any_run(tmp_path, capsys, option, value):
    # Found only when their runs came up (after training, or never on CPU for
    # --compile-seeds), these would have cost the GPU machine's time and the results table.
    with pytest.raises(SystemExit) as stop:
        quick_run(tmp_path, capsys, f"{option}={value}")
    out, err = capsys.readouterr()
    assert stop.value.code == 2
    assert f"{option}={value!r}" in err and "nothing was run" in err
    assert "device:" not in out and "-- fastnet" not in out


def test_a_validation_split_too_large_fails_only_the_runs_that_need_it(tmp_path, capsys):
    rc, out = quick_run(tmp_path, capsys, "--seeds", "0", "--val-size", "5000",
                        "--profile-epoch", "0")
    assert rc == 1
    assert "-- FAILED fastnet default, val, seed 0:" in out
    assert "--val-size must be in [0, 300)" in out
    table = out[out.index("results on CPU"):]
    labels = re.findall(r"^\| (.+?) +\| +\d+ \|", table, flags=re.M)
    assert labels == ["fastnet default, seed 0", "resnet18"]
