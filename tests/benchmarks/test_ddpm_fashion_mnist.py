"""ddpm_fashion_mnist.py's path on a tiny run: the data step, the table and the sample grids."""

import pytest

from . import load_benchmark

torch = pytest.importorskip("torch")


def test_to_16x16_pads_and_averages():
    bench = load_benchmark("ddpm_fashion_mnist")
    X = torch.zeros(1, 28, 28, dtype=torch.uint8).numpy()
    X[0, 0, 0] = 255      # after 2 pixels of padding: one of output pixel (1, 1)'s four
    out = bench.to_16x16(X)
    assert out.shape == (1, 1, 16, 16) and out.dtype == torch.float32
    assert out[0, 0, 1, 1].item() == pytest.approx(0.25) and out.sum().item() == pytest.approx(0.25)


def test_tiny_run_prints_one_row_per_scale_and_writes_grids(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    bench = load_benchmark("ddpm_fashion_mnist")
    bench.main(["--steps", "3", "--timesteps", "3", "--dim", "4", "--per-class", "1", "--judge-epochs", "0",
                "--scales", "0,2", "--ddim-steps", "2", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith(("| DDPM, 3 steps |", "| DDIM, 2 steps |"))]
    assert len(rows) == 4 and all("(10 samples)" in r for r in rows)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "samples_ddim_cfg0.png", "samples_ddim_cfg2.png", "samples_ddpm_cfg0.png", "samples_ddpm_cfg2.png"]
