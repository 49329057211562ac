"""CPU tests of the PyTorch trainer: tiny networks on a few hundred synthetic images."""

import csv
import errno
import io
import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from deep_learning_suite import pytorch_cifar10 as pc
from deep_learning_suite import torch_data, torch_models, torch_optim, torch_train

REPO = Path(__file__).resolve().parents[2]
# A tiny fastnet on 384 synthetic images; lr 0.5 suits its batch of 64 (1.5 is for 1024).
TINY = ["--dataset", "synthetic", "--synthetic-size", "384", "--width", "0.125",
        "--batch-size", "64", "--lr", "0.5", "--device", "cpu", "--no-progress"]


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def run_in_process(argv):
    return torch_train.train(pc.parse_args(argv), log=lambda *a: None)


def env_for_subprocess():
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    env.pop("WORLD_SIZE", None)
    return env


# --------------------------------------------------------------------------- pieces

@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
@pytest.mark.parametrize("shift", [0, 1, 2, 4])
def test_translate_matches_numpy_reflect_pad(shift, dtype):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, size=(6, 3, 9, 8)).astype(np.uint8)
    dy = rng.integers(-shift, shift + 1, size=6)
    dx = rng.integers(-shift, shift + 1, size=6)
    out = torch_data.translate(torch.from_numpy(x).to(dtype), torch.from_numpy(dy),
                               torch.from_numpy(dx))
    s = max(shift, 1)
    padded = np.pad(x, ((0, 0), (0, 0), (s, s), (s, s)), mode="reflect")
    for k in range(6):
        want = padded[k, :, s + dy[k]:s + dy[k] + 9, s + dx[k]:s + dx[k] + 8]
        np.testing.assert_array_equal(out[k].numpy(), want.astype(out.numpy().dtype))
    assert out.dtype == dtype


@pytest.mark.parametrize("translate", [0, 2])
@pytest.mark.parametrize("world", [2, 4])
def test_ranks_split_each_global_batch(world, translate):
    # Translations too: before, each rank drew its own from a per-rank generator, so with
    # --translate a multi-process run saw other batches than one process would.
    args = pc.parse_args(TINY + ["--translate", str(translate), "--batch-size", "32"])
    data = torch_data.DeviceData(torch_data.load_arrays(args), args.val_size, torch.device("cpu"))
    x1, y1, b1 = torch_data.epoch_batches(data, 3, args, 0, 1)
    parts = [torch_data.epoch_batches(data, 3, args, r, world) for r in range(world)]
    assert all(b == 32 // world for _, _, b in parts)
    steps = len(x1) // 32
    for s in range(steps):
        # The ranks' slices of global step s are exactly the single process's batch s.
        joined = torch.cat([x[s * b:(s + 1) * b] for x, _, b in parts])
        assert torch.equal(joined, x1[s * 32:(s + 1) * 32])
        assert torch.equal(torch.cat([y[s * b:(s + 1) * b] for _, y, b in parts]),
                           y1[s * 32:(s + 1) * 32])


def flipped_images(data, args, epoch):
    """Which training images ``epoch_batches`` flips in ``epoch`` (``--translate 0``)."""
    n = len(data.x_train)
    args.batch_size = n  # one batch holding every image, so epochs can be lined up
    x, _, _ = torch_data.epoch_batches(data, epoch, args, 0, 1)
    g = torch_data.epoch_generator(torch.device("cpu"), args.seed, epoch, 0, 0)
    perm = torch.randperm(n, generator=g)
    flipped = torch.zeros(n, dtype=torch.bool)
    flipped[perm] = (x != data.x_train[perm]).flatten(1).any(1)
    return flipped


def test_flips_alternate_between_epochs():
    args = pc.parse_args(TINY + ["--translate", "0"])
    data = torch_data.DeviceData(torch_data.load_arrays(args), args.val_size, torch.device("cpu"))
    seen = {epoch: flipped_images(data, args, epoch) for epoch in (4, 5)}
    assert 0.3 < seen[4].float().mean() < 0.7
    assert torch.equal(seen[4], ~seen[5])


def test_flips_follow_the_seed():
    # --seed seeds the augmentation, the flips included (they used a fixed seed of their own);
    # one DeviceData serves every seed, as in the benchmark.
    data = None
    seen = {}
    for seed in (0, 1, 0):
        args = pc.parse_args(TINY + ["--translate", "0", "--seed", str(seed)])
        data = data or torch_data.DeviceData(torch_data.load_arrays(args), args.val_size,
                                             torch.device("cpu"))
        seen.setdefault(seed, []).append(flipped_images(data, args, 4))
    assert torch.equal(seen[0][0], seen[0][1])
    assert 0.3 < (seen[0][0] != seen[1][0]).float().mean() < 0.7


def test_whitening_stem_decorrelates_patches():
    torch.manual_seed(0)
    mix = torch.randn(3, 3) + 2 * torch.eye(3)
    x = torch.einsum("ij,njhw->nihw", mix, torch.randn(64, 3, 16, 16)) * 3
    net = torch_models.FastNet(widths=(8, 8, 8))
    net.init_whitening(x, eps=1e-9)
    out = net.whiten(x.double().float())[:, :12] - net.whiten.bias[:12, None, None]
    cov = torch.cov(out.permute(1, 0, 2, 3).reshape(12, -1).double())
    assert torch.allclose(cov, torch.eye(12, dtype=cov.dtype), atol=1e-3)
    assert torch.equal(net.whiten.weight[12:], -net.whiten.weight[:12])
    assert not net.whiten.weight.requires_grad


def grey_images(n, seed=0):
    """Smooth random grey images stored as 3 equal channels, like padded Fashion-MNIST."""
    g = torch.Generator().manual_seed(seed)
    grey = F.avg_pool2d(torch.randn(n, 1, 34, 34, generator=g), 3, 1) * 3
    return grey.expand(-1, 3, -1, -1).contiguous()


def test_whitening_stem_counts_the_directions_grey_patches_vary_in():
    net = torch_models.FastNet(widths=(8, 8, 8))
    assert net.init_whitening(grey_images(64), eps=1e-9) == 4  # 3 equal channels: 4 of 12
    assert net.init_whitening(torch.randn(64, 3, 16, 16)) == 12


@pytest.mark.parametrize("precision, warns", [("bf16", True), ("fp32", False)])
def test_bf16_on_cpu_with_grey_images_warns(tmp_path, precision, warns):
    # The stem's non-varying directions blew a full bf16 Fashion-MNIST run up on CPU; a user
    # choosing bf16 there is told, and how to avoid it.
    x = (grey_images(200) * 40 + 128).clamp(0, 255).to(torch.uint8).numpy()
    y = torch.randint(0, 10, (200,), generator=torch.Generator().manual_seed(0)).numpy()
    data = torch_data.DeviceData((x[:160], y[:160], x[160:], y[160:]), 0, torch.device("cpu"))
    args = pc.parse_args(TINY + ["--epochs", "1", "--precision", precision, "--no-checkpoint",
                                 "--out", str(tmp_path)])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch_train.train(args, data=data, log=lambda *a: None)
    said = [str(w.message) for w in caught if "bf16 on CPU" in str(w.message)]
    assert bool(said) == warns
    if warns:
        assert "4 of 12" in said[0] and "--precision fp32" in said[0]


@pytest.mark.parametrize("model, width, in_shape", [("fastnet", 0.125, (2, 3, 32, 32)),
                                                     ("resnet18", 0.0625, (2, 3, 32, 32))])
def test_models_map_images_to_logits(model, width, in_shape):
    net = torch_models.build_model(model, num_classes=7, width=width)
    assert net(torch.randn(in_shape)).shape == (in_shape[0], 7)


class RecordingNet(torch.nn.Module):
    """A linear map of the whole image that keeps every batch it is shown."""

    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(3 * 8 * 8, 10)
        self.seen = []

    def forward(self, x):
        self.seen.append(x.clone())
        return self.fc(x.flatten(1))


def eval_setup(n, seed):
    """``n`` random 8x8 images and labels, the same set as training and test data on CPU,
    fp32 arguments and a fresh :class:`RecordingNet`."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, 3, 8, 8), generator=g, dtype=torch.uint8)
    y = torch.randint(0, 10, (n,), generator=g)
    data = torch_data.DeviceData((x.numpy(), y.numpy(), x.numpy(), y.numpy()), 0,
                                 torch.device("cpu"))
    args = pc.parse_args(["--dataset", "synthetic", "--precision", "fp32"])
    args.channels_last = False
    torch.manual_seed(0)
    return x, y, data, args, RecordingNet()


TTA_CASES = [(0, None), (1, []), (2, [(-1, -1), (1, 1)]),
             (3, [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)])]


@pytest.mark.parametrize("centre", [None, 0.5, 0.8])
@pytest.mark.parametrize("tta, shifts", TTA_CASES)
def test_tta_averages_the_logits_of_its_views(tta, shifts, centre):
    x, y, data, args, net = eval_setup(n=5, seed=0)
    loss, _ = torch_train.evaluate(net, data, x, y, args, tta=tta, centre_weight=centre)
    one = torch.ones(5, dtype=torch.long)
    base = [x] if shifts is None else [x, x.flip(3)]
    views = base + [torch_data.translate(v, dy * one, dx * one)
                    for dy, dx in (shifts or []) for v in base]
    assert len(net.seen) == len(views) == {0: 1, 1: 2, 2: 6, 3: 18}[tta]
    assert len({tuple(v.flatten().tolist()) for v in views}) == len(views)  # all distinct
    for got, want in zip(net.seen, views):
        torch.testing.assert_close(got, data.normalise(want))
    # The unshifted pair (the first len(base) views) weighs `centre`, the shifted views the rest.
    w = torch.full((len(views),), 1 / len(views))
    if centre is not None and shifts:
        w[:len(base)] = centre / len(base)
        w[len(base):] = (1 - centre) / (len(views) - len(base))
    with torch.no_grad():
        logits = [net.fc(data.normalise(v).flatten(1)) for v in views]
        mixed = sum(wi * z for wi, z in zip(w, logits))
    assert loss == pytest.approx(F.cross_entropy(mixed, y).item(), rel=1e-6)


@pytest.mark.parametrize("tta, shifts", TTA_CASES)
def test_view_logits_scores_any_weighting_of_one_pass(tta, shifts):
    # gpu_cifar scores several TTA weightings from one view_logits pass; each must equal the
    # accuracy and loss evaluate gives for that weighting.
    x, y, data, args, net = eval_setup(n=7, seed=1)
    every = [v[:3] for v in torch_train.tta_views(3)]  # (flip, dy, dx) of all 18 views
    logits = torch_train.view_logits(net, data, x, args, every, batch_size=3)
    assert logits.shape == (18, 7, 10)
    for centre in (None, 0.5):
        mine = torch_train.tta_views(tta, centre)
        assert sum(v[3] for v in mine) == pytest.approx(1.0)
        pick = [every.index(v[:3]) for v in mine]
        got = torch_train.score(logits[pick], y, [v[3] for v in mine])
        want = torch_train.evaluate(net, data, x, y, args, tta=tta, centre_weight=centre)
        assert got == pytest.approx(want, rel=1e-6)


def test_tta_centre_weight_must_be_a_fraction():
    with pytest.raises(torch_data.UsageError, match=r"\(0, 1\)"):
        torch_train.tta_views(2, 1.0)


def test_lr_schedule_warms_up_then_decays():
    f = [torch_optim.lr_factor(s, 100, "linear", 0.2) for s in range(101)]
    assert f[0] == pytest.approx(0.2) and f[20] == pytest.approx(1.0)
    assert f[100] == pytest.approx(0.05)
    assert all(a < b for a, b in zip(f[:20], f[1:21]))
    assert all(a > b for a, b in zip(f[20:], f[21:]))
    assert torch_optim.lr_factor(100, 100, "cosine", 0.2) == pytest.approx(0.0, abs=1e-12)
    assert torch_optim.lr_factor(37, 100, "constant", 0.2) == 1.0


@pytest.mark.parametrize("schedule", torch_optim.SCHEDULES)
def test_every_schedule_warms_up_first(schedule):
    # --schedule constant skipped the warm-up that --warmup and the help promise.
    f = [torch_optim.lr_factor(s, 100, schedule, 0.2) for s in range(21)]
    assert f[0] == pytest.approx(0.2) and f[10] == pytest.approx(0.6)
    assert f[20] == pytest.approx(1.0)
    assert all(a < b for a, b in zip(f[:20], f[1:]))
    assert torch_optim.lr_factor(0, 100, schedule, 0.0) == pytest.approx(1.0)


def test_lookahead_averages_trainable_weights_every_k_steps():
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4)).double()
    net[1].weight.requires_grad_(False)  # frozen, like FastNet's BN scales: not averaged
    la = torch_optim.Lookahead(net, k=2, beta_max=0.5)
    params = [p for p in net.parameters() if p.requires_grad]
    slow = [p.detach().clone() for p in params]
    frozen = net[1].weight.detach().clone()
    g = torch.Generator().manual_seed(0)
    total = 6
    for step in range(1, total + 1):
        with torch.no_grad():  # stand-in for an SGD step on the fast weights
            for p in params:
                p.add_(torch.randn(p.shape, generator=g, dtype=p.dtype))
            net[1].weight.add_(1.0)
        fast = [p.detach().clone() for p in params]
        la.step(step, total)
        if step % 2:  # between sync points the fast weights run free
            want = fast
        else:
            beta = 0.5 * (step / total) ** 3
            slow = [beta * s + (1 - beta) * f for s, f in zip(slow, fast)]
            want = slow
        for p, w in zip(params, want):
            torch.testing.assert_close(p.detach(), w, rtol=1e-12, atol=1e-12)
    assert torch.equal(net[1].weight, frozen + total)
    with torch.no_grad():
        params[0].add_(5.0)
    la.finish(total, total)  # the run ends on the slow weights
    torch.testing.assert_close(params[0].detach(), slow[0], rtol=1e-12, atol=1e-12)


def test_lookahead_finish_keeps_the_steps_after_the_last_sync():
    net = torch.nn.Linear(3, 2).double()
    la = torch_optim.Lookahead(net, k=5, beta_max=0.5)
    w0 = net.weight.detach().clone()
    with torch.no_grad():
        net.weight.add_(1.0)
    la.step(3, 3)  # 3 steps, fewer than k: never synced, so the slow copy is still w0
    la.finish(3, 3)
    torch.testing.assert_close(net.weight.detach(), w0 + 1.0)  # not back to the start
    la = torch_optim.Lookahead(net, k=5, beta_max=0.5)  # a 7-step run from w1
    w1 = net.weight.detach().clone()
    for step in range(1, 8):
        with torch.no_grad():
            net.weight.add_(1.0)
        la.step(step, 7)
    # synced at step 5, then steps 6 and 7 ran free; finish averages them in with step 7's
    # beta instead of dropping them
    beta5, beta7 = 0.5 * (5 / 7) ** 3, 0.5
    slow5 = beta5 * w1 + (1 - beta5) * (w1 + 5.0)
    want = beta7 * slow5 + (1 - beta7) * (slow5 + 2.0)
    la.finish(7, 7)
    torch.testing.assert_close(net.weight.detach(), want, rtol=1e-12, atol=1e-12)


def test_resumed_optimizer_keeps_the_fused_sgd():
    # Checkpoints written before the switch to fused SGD name foreach in their param groups,
    # and load_state_dict takes group settings from the checkpoint.
    net = torch_models.build_model("fastnet", width=0.125)
    args = pc.parse_args(["--dataset", "synthetic"])
    before = torch_optim.make_optimizer(net, args)
    net(torch.randn(2, 3, 32, 32)).sum().backward()
    before.step()
    state = before.state_dict()
    for g in state["param_groups"]:
        g.update(fused=None, foreach=True)
    plain = torch_optim.make_optimizer(net, args)
    plain.load_state_dict(state)
    assert all(g["foreach"] for g in plain.param_groups)  # what the helper is there to undo
    opt = torch_optim.make_optimizer(net, args)
    torch_optim.load_optimizer_state(opt, state)
    assert all(g["fused"] is True and g["foreach"] is None for g in opt.param_groups)
    for p in net.parameters():
        if p.requires_grad:
            assert torch.equal(opt.state[p]["momentum_buffer"],
                               before.state[p]["momentum_buffer"])


def test_momentum_zero_is_plain_sgd():
    # --momentum 0 passed the flag check, then torch refused Nesterov without momentum.
    torch.manual_seed(0)
    net = torch_models.build_model("fastnet", width=0.125)
    args = pc.parse_args(["--dataset", "synthetic", "--momentum", "0"])
    opt = torch_optim.make_optimizer(net, args)
    torch_optim.set_lr(opt, 50, 100, 0, args)
    net(torch.randn(2, 3, 32, 32)).sum().backward()
    want = {}
    for g in opt.param_groups:
        for p in g["params"]:
            w = p.detach().clone()
            for _ in range(2):  # the same gradient twice: momentum would make step 2 longer
                w = w - g["lr"] * (p.grad + g["weight_decay"] * w)
            want[p] = w
    opt.step()
    opt.step()
    for p, w in want.items():
        torch.testing.assert_close(p.detach(), w, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("flags, on", [(["--model", "fastnet"], True),
                                       (["--model", "fastnet", "--no-lookahead"], False),
                                       (["--model", "resnet18"], False),
                                       (["--model", "resnet18", "--lookahead"], True)])
def test_lookahead_is_part_of_the_fastnet_recipe(flags, on):
    assert pc.parse_args(["--dataset", "synthetic"] + flags).lookahead is on


def test_synthetic_data_is_deterministic_and_balanced():
    a, b = torch_data.make_synthetic(300, 50, seed=3), torch_data.make_synthetic(300, 50, seed=3)
    assert all(np.array_equal(u, v) for u, v in zip(a, b))
    assert a[0].shape == (300, 3, 32, 32) and a[0].dtype == np.uint8 and a[1].dtype == np.int64
    assert set(np.unique(a[1])) == set(range(10))


def test_fashion_mnist_padding():
    x = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    out = torch_data.pad_to_32x32x3(x)
    assert out.shape == (2, 3, 32, 32) and out.dtype == np.uint8
    assert np.array_equal(out[:, 1, 2:30, 2:30], x) and out[:, :, :2].max() == 0
    assert np.array_equal(out[:, 0], out[:, 2])


# --------------------------------------------------------------------------- training runs

def test_tiny_run_lowers_the_loss_and_beats_chance(tmp_path):
    s = run_in_process(TINY + ["--epochs", "4", "--out", str(tmp_path)])
    losses = [r["train_loss"] for r in s["history"]]
    assert losses[-1] < 0.85 * losses[0]
    assert s["test_acc"] > 0.5  # 10 classes: chance is 0.1
    rows = (tmp_path / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,lr,train_loss") and len(rows) == 5
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["test_acc"] == pytest.approx(s["test_acc"])
    ck = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert ck["epoch"] == 4 and ck["args"]["model"] == "fastnet"


@pytest.mark.slow
@pytest.mark.skipif(not (shutil.which("g++") or shutil.which("c++")),
                    reason="torch.compile on CPU needs a C++ compiler")
def test_compiled_training_matches_eager(tmp_path):
    # --compile must train the same network: same losses, weights equal up to the reordered
    # float sums of fused kernels. (This runs fp32 on CPU; bf16 on a GPU is checked by
    # benchmarks/gpu_cifar.py.)
    argv = TINY + ["--epochs", "2", "--no-checkpoint"]
    eager = run_in_process(argv + ["--out", str(tmp_path / "eager")])
    compiled = run_in_process(argv + ["--out", str(tmp_path / "compiled"), "--compile"])
    for a, b in zip(eager["history"], compiled["history"]):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-5)
    weights_e, weights_c = eager["network"].state_dict(), compiled["network"].state_dict()
    for name, w in weights_e.items():
        if w.is_floating_point():
            assert torch.isfinite(weights_c[name]).all(), name
            torch.testing.assert_close(weights_c[name], w, rtol=1e-3, atol=1e-4)
    assert compiled["test_acc"] == pytest.approx(eager["test_acc"], abs=0.02)


def test_profiled_epoch_writes_its_table_and_figures(tmp_path):
    s = run_in_process(TINY + ["--epochs", "2", "--profile-epoch", "2", "--out", str(tmp_path)])
    text = (tmp_path / "profile_epoch2.txt").read_text()
    figures = json.loads(text.splitlines()[0])
    assert figures == s["profile"]
    assert figures["wall_s"] == pytest.approx(s["history"][1]["epoch_time_s"])
    assert figures["host_ops"] > 100 and figures["device_kernel_s"] is None  # CPU: no kernels
    assert "aten::convolution_backward" in text
    assert not (tmp_path / "profile_epoch1.txt").exists()


@pytest.mark.parametrize("extra", [[], ["--no-lookahead"]])
def test_warm_up_leaves_the_run_unchanged(tmp_path, extra):
    # Warm-up takes real optimizer (and Lookahead) steps so their first-call costs stay out of
    # the timed epochs; everything it touched must be put back.
    common = TINY + ["--epochs", "2", "--val-size", "64"] + extra
    cold = run_in_process(common + ["--out", str(tmp_path / "cold")])
    warm = run_in_process(common + ["--warmup-steps", "3", "--out", str(tmp_path / "warm")])
    a = torch.load(tmp_path / "cold" / "model.pt", weights_only=True)
    b = torch.load(tmp_path / "warm" / "model.pt", weights_only=True)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    for r, q in zip(cold["history"], warm["history"]):
        assert (r["train_loss"], r["val_acc"]) == (q["train_loss"], q["val_acc"])
    assert cold["test_acc"] == warm["test_acc"]


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tmp_path):
    # With --lookahead the checkpoint must also carry the slow weights: the strictest case.
    common = TINY + ["--epochs", "3", "--lookahead"]
    run_in_process(common + ["--out", str(tmp_path / "full")])
    first = run_in_process(common + ["--stop-after", "1", "--out", str(tmp_path / "split")])
    assert first["epochs_done"] == 1 and "test_acc" not in first
    run_in_process(["--resume", str(tmp_path / "split" / "checkpoint.pt"), "--device", "cpu",
                    "--no-progress"])
    full = torch.load(tmp_path / "full" / "model.pt", weights_only=True)
    split = torch.load(tmp_path / "split" / "model.pt", weights_only=True)
    assert full.keys() == split.keys()
    for k in full:
        assert torch.equal(full[k], split[k]), k
    hist = [r.split(",")[2] for r in (tmp_path / "split" / "metrics.csv").read_text().splitlines()]
    assert hist == [r.split(",")[2] for r in
                    (tmp_path / "full" / "metrics.csv").read_text().splitlines()]


@pytest.mark.parametrize("first, then, extra", [
    ("--channels-last", "--no-channels-last", []),
    ("--no-channels-last", "--channels-last", []),
    ("--channels-last", "--no-channels-last", ["--momentum", "0"]),  # no momentum buffers
])
def test_resume_in_the_other_memory_layout_gives_the_same_weights(tmp_path, first, then, extra):
    # --channels-last is not a run key (its default differs between CUDA and CPU, so a GPU
    # run resumed on a CPU switches layout). The checkpoint's momentum buffers kept the old
    # layout, and fused SGD mishandles a buffer whose strides differ from its parameter's:
    # the resumed weights were up to 15% off. Convolutions in the other layout only round
    # differently, hence a tolerance instead of equality.
    common = TINY + ["--epochs", "2"] + extra
    run_in_process(common + [first, "--out", str(tmp_path / "full")])
    run_in_process(common + [first, "--stop-after", "1", "--out", str(tmp_path / "split")])
    run_in_process(["--resume", str(tmp_path / "split" / "checkpoint.pt"), then, "--device",
                    "cpu", "--no-progress"])
    full = torch.load(tmp_path / "full" / "model.pt", weights_only=True)
    split = torch.load(tmp_path / "split" / "model.pt", weights_only=True)
    for k, a in full.items():
        if a.is_floating_point():
            gap = ((split[k] - a).abs().max() / a.abs().max().clamp_min(1e-12)).item()
            assert gap < 1e-4, (k, gap)


def test_checkpoint_from_before_lookahead_resumes_without_it(tmp_path):
    # Checkpoints written before --lookahead existed carry neither the flag nor slow weights;
    # they trained without Lookahead, and must go on that way now that fastnet defaults to it.
    common = TINY + ["--epochs", "2", "--no-lookahead"]
    run_in_process(common + ["--out", str(tmp_path / "full")])
    run_in_process(common + ["--stop-after", "1", "--out", str(tmp_path / "old")])
    path = tmp_path / "old" / "checkpoint.pt"
    ck = torch.load(path, weights_only=True)
    del ck["args"]["lookahead"], ck["lookahead"]
    torch_train.atomic_save(ck, path)
    args = pc.parse_args(["--resume", str(path), "--device", "cpu", "--no-progress"])
    assert args.lookahead is False
    torch_train.train(args, log=lambda *a: None)
    full = torch.load(tmp_path / "full" / "model.pt", weights_only=True)
    old = torch.load(tmp_path / "old" / "model.pt", weights_only=True)
    for k in full:
        assert torch.equal(full[k], old[k]), k


def test_resume_refuses_epochs_the_checkpoint_already_holds(capsys, tmp_path):
    # Before, --stop-after 1 on a checkpoint of epoch 2 reported "stopped after epoch 1",
    # wrote a summary of 1 epoch with 2 rows and rewrote model.pt; a --profile-epoch before
    # the resume point silently never ran.
    run_in_process(TINY + ["--synthetic-size", "128", "--epochs", "3", "--stop-after", "2",
                           "--out", str(tmp_path)])
    before = {f.name: f.read_bytes() for f in tmp_path.iterdir()}
    path = str(tmp_path / "checkpoint.pt")
    for flag in ("--stop-after", "--profile-epoch"):
        for epoch in (1, 2):
            with pytest.raises(SystemExit) as e:
                pc.parse_args(["--resume", path, flag, str(epoch), "--device", "cpu"])
            assert e.value.code == 2
            err = capsys.readouterr().err
            assert f"{flag} {epoch}" in err and "already holds epochs 1-2 of 3" in err, err
    assert {f.name: f.read_bytes() for f in tmp_path.iterdir()} == before
    s = run_in_process(["--resume", path, "--stop-after", "3", "--profile-epoch", "3",
                        "--device", "cpu", "--no-progress"])
    assert s["epochs_done"] == 3 and s["profile"] is not None
    assert (tmp_path / "profile_epoch3.txt").exists()


def test_resume_keeps_the_tta_centre_weight_unless_given_again(tmp_path):
    # Evaluation only, so a resumed run may change it, but it must not silently drop it.
    run_in_process(TINY + ["--epochs", "2", "--stop-after", "1", "--tta-centre-weight", "0.5",
                           "--out", str(tmp_path)])
    path = str(tmp_path / "checkpoint.pt")
    assert pc.parse_args(["--resume", path]).tta_centre_weight == 0.5
    assert pc.parse_args(["--resume", path, "--tta-centre-weight", "0.7"]).tta_centre_weight == 0.7


# --------------------------------------------------------------------------- file safety

class DiskFull:
    """A binary file that takes the first ``room`` bytes written to it, then fails the way a
    full disk does."""

    failed = 0  # how many writes failed, over all instances

    def __init__(self, f, room=40):
        self.f, self.room = f, room

    def write(self, b):
        n = min(len(b), self.room)
        self.f.write(bytes(b[:n]))
        self.room -= n
        if n < len(b):
            DiskFull.failed += 1
            raise OSError(errno.ENOSPC, "No space left on device")
        return n

    def __getattr__(self, name):
        return getattr(self.f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()


RUN_FILES = ["checkpoint.pt", "metrics.csv", "model.pt", "summary.json", "profile_epoch1.txt"]


@pytest.mark.parametrize("name", RUN_FILES)
def test_a_write_failing_midway_keeps_the_previous_file(tmp_path, monkeypatch, name):
    # The trainer promises atomic files: a disk filling up while one is rewritten must leave
    # the previous version whole (before, summary.json was left torn) and no temporary file.
    argv = TINY + ["--synthetic-size", "128", "--epochs", "1", "--profile-epoch", "1",
                   "--out", str(tmp_path)]
    run_in_process(argv)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert set(before) == set(RUN_FILES)
    real_open, real_fdopen, doomed = os.open, os.fdopen, set()

    def os_open(path, *a, **kw):        # atomic_write creates its temporary file with os.open
        fd = real_open(path, *a, **kw)
        if Path(path).name.startswith(f".{name}.") and Path(path).name.endswith(".tmp"):
            doomed.add(fd)
        return fd

    def fdopen(fd, *a, **kw):
        f = real_fdopen(fd, *a, **kw)
        return DiskFull(f) if fd in doomed else f

    monkeypatch.setattr(os, "open", os_open)
    monkeypatch.setattr(os, "fdopen", fdopen)
    monkeypatch.setattr(DiskFull, "failed", 0)
    # torch.save reports the failed write as a RuntimeError of its own ("unexpected pos")
    with pytest.raises((OSError, RuntimeError)):
        run_in_process(argv + ["--seed", "1"])  # another seed: every file would change
    assert doomed and DiskFull.failed == 1, f"{name} was not written through atomic_write"
    monkeypatch.undo()
    assert (tmp_path / name).read_bytes() == before[name]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(before)  # no temporary left


def test_every_file_is_fsynced_before_it_replaces_the_old_one(tmp_path, monkeypatch):
    # A rename without an fsync of the data can leave an empty file after a power cut.
    fsyncs, per_file = [], {}
    real_fsync, real_write = os.fsync, torch_train.atomic_write
    monkeypatch.setattr(os, "fsync", lambda fd: (fsyncs.append(fd), real_fsync(fd))[1])

    def counted(path, write):
        n = len(fsyncs)
        out = real_write(path, write)
        per_file[Path(path).name] = len(fsyncs) - n
        return out

    monkeypatch.setattr(torch_train, "atomic_write", counted)
    run_in_process(TINY + ["--synthetic-size", "128", "--epochs", "1", "--profile-epoch", "1",
                           "--out", str(tmp_path)])
    assert set(per_file) == set(RUN_FILES)
    assert all(n >= 1 for n in per_file.values()), per_file


def test_resume_with_the_default_precision_is_accepted(capsys, tmp_path):
    # train() resolves --precision auto (fp32 on CPU) before saving; asking for the default
    # again on resume must not read as a clash, while a different explicit value still does.
    run_in_process(TINY + ["--synthetic-size", "128", "--epochs", "2", "--stop-after", "1",
                           "--precision", "auto", "--out", str(tmp_path)])
    path = str(tmp_path / "checkpoint.pt")
    args = pc.parse_args(["--resume", path, "--precision", "auto", "--device", "cpu",
                          "--no-progress"])
    assert args.precision == "fp32"  # the run's own precision goes on
    assert pc.parse_args(["--resume", path]).precision == "fp32"
    with pytest.raises(SystemExit) as e:
        pc.parse_args(["--resume", path, "--precision", "bf16"])
    assert e.value.code == 2
    assert "the checkpoint was made with --precision fp32" in capsys.readouterr().err
    assert torch_train.train(args, log=lambda *a: None)["epochs_done"] == 2


def edit_width(ck):
    ck["args"]["width"] = 0.25


def edit_model(ck):
    ck["args"]["model"] = "resnet18"


def drop_key(ck):
    del ck["model"]["head.weight"]


def add_key(ck):
    ck["model"]["extra.weight"] = torch.zeros(3)


def drop_slow_weights(ck):
    ck["lookahead"] = None


@pytest.mark.parametrize("edit, words", [
    (edit_width, ["do not fit the --model fastnet --width 0.25", "mis-shaped",
                  "(the model's is"]),
    (edit_model, ["do not fit the --model resnet18", "missing stem.0.weight", "unexpected "]),
    (drop_key, ["missing head.weight"]),
    (add_key, ["unexpected extra.weight"]),
    (drop_slow_weights, ["not a consistent training state", "no slow weights"]),
])
def test_a_checkpoint_that_does_not_fit_its_model_is_a_clear_error(capsys, tmp_path, edit,
                                                                      words):
    run_in_process(TINY + ["--synthetic-size", "128", "--epochs", "2", "--stop-after", "1",
                           "--lookahead", "--out", str(tmp_path)])
    path = tmp_path / "checkpoint.pt"
    ck = torch.load(path, weights_only=True)
    assert "head.weight" in ck["model"]  # the key the edits rely on
    edit(ck)
    torch_train.atomic_save(ck, path)
    assert pc.main(["--resume", str(path), "--device", "cpu", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"--resume: {path}" in err and "Traceback" not in err
    for w in words:
        assert w in err, err


@pytest.mark.slow
def test_two_process_gloo_run_keeps_replicas_identical(tmp_path):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "deep_learning_suite.pytorch_cifar10"] + TINY + [
           "--epochs", "3", "--out", str(tmp_path), "--dist-backend", "gloo",
           "--warmup-steps", "2"]  # warm-up runs the epoch's collectives on every rank too
    p = subprocess.run(cmd, capture_output=True, text=True, env=env_for_subprocess(), timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["world_size"] == 2 and len(s["replica_digests"]) == 2
    assert s["replicas_in_sync"] and s["replica_digests"][0] == s["replica_digests"][1]
    losses = [r["train_loss"] for r in s["history"]]
    assert losses[-1] < losses[0]
    assert p.stdout.count("final: test accuracy") == 1  # rank 0 alone reports


# --------------------------------------------------------------------------- errors

@pytest.mark.parametrize("flags, words", [
    (["--epochs", "0"], "--epochs must be positive"),
    (["--lr", "-1"], "--lr must be positive"),
    (["--label-smoothing", "1.5"], "--label-smoothing"),
    (["--model", "vgg"], "invalid choice"),
    (["--epochs", "2", "--stop-after", "3"], "--stop-after"),
    (["--val-size", "-5"], "--val-size"),
    (["--translate", "40"], "--translate"),
    (["--epochs", "2", "--profile-epoch", "3"], "--profile-epoch must be in [1, --epochs=2]"),
    (["--tta-centre-weight", "1.5"], "--tta-centre-weight must be in (0, 1)"),
    (["--tta", "1", "--tta-centre-weight", "0.5"], "needs --tta 2 or 3, got --tta 1"),
    (["--seed", str(2**64)], f"--seed must be in [-2**63, 2**64 - 1], the seeds torch takes, got {2**64}"),
    (["--seed", str(-2**63 - 1)], "--seed must be in [-2**63, 2**64 - 1]"),
])
def test_bad_flags_exit_with_a_message(capsys, flags, words):
    with pytest.raises(SystemExit) as e:
        pc.parse_args(["--dataset", "synthetic"] + flags)
    assert e.value.code == 2
    assert words in capsys.readouterr().err


FLOAT_FLAGS = ["--width", "--lr", "--warmup", "--momentum", "--weight-decay",
               "--label-smoothing", "--bias-lr-scale", "--tta-centre-weight"]


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
@pytest.mark.parametrize("flag", FLOAT_FLAGS)
def test_float_flags_refuse_nan_and_inf(capsys, flag, value):
    # float() takes these; before, --weight-decay nan trained on and was reported as a
    # divergence to be cured with a lower --lr, and --width inf raised an OverflowError.
    with pytest.raises(SystemExit) as e:
        pc.parse_args(["--dataset", "synthetic", f"{flag}={value}"])
    assert e.value.code == 2
    assert f"argument {flag}: must be a finite number, got '{value}'" in capsys.readouterr().err


@pytest.mark.parametrize("flag, value, words", [
    ("--width", "-1", "--width must be positive"),
    ("--width", "0", "--width must be positive"),
    ("--bias-lr-scale", "-2", "--bias-lr-scale must be positive"),
    ("--weight-decay", "-1e-3", "--weight-decay must be >= 0"),
    ("--warmup", "-0.1", "--warmup is a fraction"),
    ("--momentum", "-0.5", "--momentum must be in [0, 1)"),
    ("--label-smoothing", "-0.1", "--label-smoothing must be in [0, 1)"),
    ("--tta-centre-weight", "-0.5", "--tta-centre-weight must be in (0, 1)"),
    ("--lr", "abc", "argument --lr: invalid float value: 'abc'"),
])
def test_float_flags_refuse_meaningless_values(capsys, flag, value, words):
    with pytest.raises(SystemExit) as e:
        pc.parse_args(["--dataset", "synthetic", f"{flag}={value}"])
    assert e.value.code == 2
    assert words in capsys.readouterr().err


@pytest.mark.parametrize("key", ["width", "lr", "weight_decay", "bias_lr_scale", "momentum",
                                 "warmup", "label_smoothing"])
@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_values_from_outside_the_parser_are_refused(key, value):
    # A checkpoint's args or a caller's own namespace bypass the flags' type= check.
    args = pc.build_parser().parse_args(["--dataset", "synthetic"])
    setattr(args, key, value)
    with pytest.raises(torch_data.UsageError, match=f"--{key.replace('_', '-')}"):
        pc.resolve_args(args)


def test_any_seed_torch_takes_trains(tmp_path):
    assert pc.parse_args(["--dataset", "synthetic", "--seed", str(-2**63)]).seed == -2**63
    s = run_in_process(TINY + ["--synthetic-size", "128", "--epochs", "1", "--no-checkpoint",
                               "--seed", str(2**64 - 1), "--out", str(tmp_path)])
    assert s["epochs_done"] == 1


@pytest.mark.parametrize("under", [False, True])
def test_out_naming_a_file_is_a_usage_error(capsys, tmp_path, under):
    taken = tmp_path / "taken"
    taken.write_text("not a folder")
    out = taken / "run" if under else taken
    with pytest.raises(SystemExit) as e:
        pc.parse_args(TINY + ["--out", str(out)])
    assert e.value.code == 2
    assert f"--out {out}: {taken} is a file, not a folder" in capsys.readouterr().err


@pytest.fixture
def two_gpus(monkeypatch):
    """Pretend CUDA with two devices; returns the devices set_device was called with."""
    chosen = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "set_device", chosen.append)
    return chosen


@pytest.mark.parametrize("name, local_rank, words", [
    ("cuda:1", 0, "--device cuda:1: under torchrun each process takes the GPU of its "
                  "LOCAL_RANK"),
    ("cuda:0", 1, "pass --device cuda (or auto)"),
    ("cuda:2", None, "--device cuda:2: there are 2 CUDA devices here (cuda:0 to cuda:1)"),
    ("cuda:x", None, "--device must be auto, cpu, cuda or cuda:N, got 'cuda:x'"),
    ("cudax", None, "--device must be auto, cpu, cuda or cuda:N, got 'cudax'"),
])
def test_a_device_that_cannot_be_used_is_a_usage_error(two_gpus, name, local_rank, words):
    # Before, under torchrun an explicit index put every rank on that one GPU, and a
    # missing GPU failed with a trace from torch.
    with pytest.raises(torch_data.UsageError) as e:
        torch_train.resolve_device(name, local_rank)
    assert words in str(e.value)
    assert two_gpus == []


@pytest.mark.parametrize("name, local_rank, want", [("cuda:1", None, "cuda:1"),
                                                    ("cuda", 1, "cuda:1"),
                                                    ("cuda", None, "cuda:0"),
                                                    ("auto", 1, "cuda:1")])
def test_the_cuda_device_follows_the_flag_or_the_local_rank(two_gpus, name, local_rank, want):
    assert torch_train.resolve_device(name, local_rank) == torch.device(want)
    assert two_gpus == [torch.device(want)]


@pytest.mark.parametrize("width", [float("inf"), float("nan"), -1.0, 0])
def test_build_model_refuses_a_meaningless_width(width):
    with pytest.raises(torch_data.UsageError, match="width must be a positive finite number"):
        torch_models.build_model("fastnet", width=width)


@pytest.mark.parametrize("flags, words", [
    (["--batch-size", "4096"], "exceeds the"),
    (["--val-size", "384"], "--val-size must be in"),
])
def test_impossible_runs_fail_cleanly(capsys, tmp_path, flags, words):
    argv = [a for a in TINY if a != "64"]
    argv.remove("--batch-size")
    assert pc.main(argv + flags + ["--out", str(tmp_path)]) == 2
    assert words in capsys.readouterr().err


def test_a_diverging_run_stops_with_a_clear_error(capsys, tmp_path):
    argv = [a for a in TINY if a != "0.5"]
    argv.remove("--lr")
    assert pc.main(argv + ["--lr", "1e12", "--epochs", "2", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "train loss is nan in epoch 1 of 2" in err and "Lower --lr (now 1e+12)" in err
    assert "no checkpoint of this run was written" in err
    assert not (tmp_path / "checkpoint.pt").exists() and not (tmp_path / "model.pt").exists()


def test_divergence_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    real = torch_train.train_epoch

    def nan_in_epoch_2(*a, **kw):
        step, lr, loss, acc = real(*a, **kw)
        return step, lr, (float("nan") if a[5] == 1 else loss), acc  # a[5]: the epoch

    monkeypatch.setattr(torch_train, "train_epoch", nan_in_epoch_2)
    with pytest.raises(torch_train.TrainingDivergedError,
                       match=r"epoch 2 of 3 .* still holds epoch 1\. Lower --lr"):
        run_in_process(TINY + ["--epochs", "3", "--out", str(tmp_path)])
    ck = torch_train.load_checkpoint(tmp_path / "checkpoint.pt")
    assert ck["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in ck["model"].values() if v.is_floating_point())


def test_an_empty_validation_split_writes_null_metrics(capsys, tmp_path):
    # The mean of no images was NaN, which made summary.json invalid JSON and printed as
    # "nan" in metrics.csv.
    lines = []
    args = pc.parse_args(TINY + ["--synthetic-size", "128", "--epochs", "2", "--val-size", "0",
                                 "--out", str(tmp_path)])
    torch_train.train(args, log=lines.append)

    def refuse(constant):
        raise ValueError(f"summary.json holds {constant}, which JSON does not allow")

    s = json.loads((tmp_path / "summary.json").read_text(), parse_constant=refuse)
    assert s["val_loss"] is None and s["val_acc"] is None
    assert 0 <= s["test_acc"] <= 1 and 0 <= s["test_acc_no_tta"] <= 1
    assert all(r["val_loss"] is None and r["val_acc"] is None for r in s["history"])
    rows = list(csv.DictReader(io.StringIO((tmp_path / "metrics.csv").read_text())))
    assert len(rows) == 2 and all(r["val_loss"] == r["val_acc"] == "" for r in rows)
    assert all(float(r["train_loss"]) > 0 for r in rows)
    printed = capsys.readouterr().out + "\n".join(lines)
    assert "final: test accuracy" in lines[-1]
    assert "nan" not in printed.lower() and "val" not in printed and "None" not in printed


def test_a_loss_that_overflowed_is_written_as_null_not_lost():
    summary = {"test_loss": float("inf"), "test_acc": 0.5, "history": [{"val_loss": float("nan")}]}
    safe = torch_train.json_safe(summary)
    assert json.loads(json.dumps(safe, allow_nan=False)) == {
        "test_loss": None, "test_acc": 0.5, "history": [{"val_loss": None}]}


def test_missing_cifar10_is_a_clear_error(capsys, tmp_path, monkeypatch):
    monkeypatch.delenv("CIFAR10_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    rc = pc.main(["--dataset", "cifar10", "--data-dir", str(tmp_path / "nothing"), "--no-download",
                  "--device", "cpu", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2 and "could not load cifar10" in err and "nothing" in err


def test_resume_errors(capsys, tmp_path):
    with pytest.raises(SystemExit):
        pc.parse_args(["--resume", str(tmp_path / "missing.pt")])
    assert "no checkpoint at" in capsys.readouterr().err
    run_in_process(TINY + ["--synthetic-size", "128", "--epochs", "2", "--stop-after", "1",
                           "--out", str(tmp_path)])
    with pytest.raises(SystemExit):
        pc.parse_args(["--resume", str(tmp_path), "--epochs", "5"])
    assert "made with --epochs 2" in capsys.readouterr().err
    # The run's other files are easy to pass by mistake; before, model.pt was taken as a
    # checkpoint and the run restarted from scratch with the default flags.
    for name, match in [("model.pt", "holds only a model's weights"),
                        ("metrics.csv", "starts with b'epoc'")]:
        with pytest.raises(SystemExit):
            pc.parse_args(["--resume", str(tmp_path / name)])
        err = capsys.readouterr().err
        assert match in err and "pass the run's checkpoint.pt" in err


def test_script_form_reports_bad_flags():
    # Run as a file (not -m) from another folder: the package must still import.
    p = subprocess.run([sys.executable, str(REPO / "deep_learning_suite" / "pytorch_cifar10.py"),
                        "--dataset", "synthetic", "--momentum", "1.2"], capture_output=True,
                       text=True, env=env_for_subprocess(), cwd="/", timeout=120)
    assert p.returncode == 2 and "--momentum must be in [0, 1)" in p.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_asking_for_cuda_without_it_is_a_clear_error(capsys, tmp_path):
    assert pc.main(TINY[:-3] + ["--device", "cuda", "--out", str(tmp_path)]) == 2
    assert "CUDA is not available" in capsys.readouterr().err
