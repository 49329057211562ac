"""GPU benchmark of the PyTorch trainer (deep_learning_suite.pytorch_cifar10) on Fashion-MNIST.

Fashion-MNIST (60k train / 10k test, 28x28 grey) is padded to 32x32 and copied to 3 channels,
so the CIFAR-10 networks run on it unchanged. Everything goes through the trainer's own
functions (``load_arrays``, ``DeviceData``, ``train``); nothing is reimplemented here.

Runs, in order, while the time budget lasts:

1. for each of ``--seeds`` (run-to-run spread): the default network ("fastnet") with its
   default recipe, eager (the runs the targets judge; the first one's per-epoch figures are
   printed), then the default changed by each ``--compare`` flag set (an ablation, or another
   way to run it: ``--compare=--cuda-graph`` replays each step as a CUDA graph). Seed by
   seed, so the host's drift in speed is spread over all variants; a variant that fails
   once is not run again;
2. with ``--val-size N``: default and ``--compare`` variants trained without N held-out images,
   scored on them, so that a choice between recipes never looks at the test set;
3. ``--same-as FLAGS``: the default trained with and without FLAGS (fp32, 2 short epochs,
   one seed) must end with the same weights, up to float rounding: the check that
   ``--cuda-graph`` replays the step the eager loop runs; then ``--sweep-epochs``, other
   epoch counts;
4. a CIFAR ResNet-18 (bf16, channels_last, eager) for a few epochs, for its images/s;
5. the default network under ``torch.compile`` (``--compile-seeds``; CUDA only);
6. one more default run that profiles epoch ``--profile-epoch`` (torch.profiler): how much
   of that epoch the GPU spent in kernels, and which kernels; its times include the
   profiler's overhead, so it is left out of the targets. ``--profile-compare FLAGS`` adds a
   profiled run with those flags.

Compiled and profiled runs come last because they change the process for the runs after them:
on the H100 (2026-11-28) every eager run that followed the compiled runs and the profiled run
trained about a fifth slower than the same recipe before them. The compiled runs themselves
were less affected than the runs after the profiler, which points at the profiler's CUDA
tracing outliving it, taxing each launch. The last column, the GPU's SM clock and temperature
read from ``nvidia-smi`` after each run, tells a throttled GPU apart from a slowed process.

It ends with the table, the mean accuracy of each group with every TTA scheme (levels 0-3,
and 2-3 with the unshifted views weighing 1/2, scored on the same trained networks;
validation runs on their validation split, and all of them together, so that the scheme can
be chosen without the test set), and for each group of fastnet runs (the validation runs
aside) whether every run met the targets: test accuracy with TTA >= 95.0%, under 4 s of
training, at least 150k training images/s.

A run that raises is reported with its traceback and skipped; the script then exits with
status 1 after printing everything else.

Every run first does a few throwaway training steps whose weights are discarded
(``--warmup-steps``), so cuDNN autotuning and compilation are not in the training time.
Training time is the sum of the epochs' wall times (augmentation included, evaluation and
checkpointing excluded, the device synchronised at each epoch's end); images/s is images
trained over that time; test accuracy is with the recipe's test-time augmentation.

Usage::

    python3 benchmarks/gpu_cifar.py --data DIR   # DIR holds the four Fashion-MNIST *.gz files
    python3 benchmarks/gpu_cifar.py --data DIR --compare=--no-lookahead --val-size 5000
    python3 benchmarks/gpu_cifar.py --data DIR --compare=--cuda-graph --same-as=--cuda-graph
    python benchmarks/gpu_cifar.py --quick       # tiny CPU smoke run of the same code
"""

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from deep_learning_suite import pytorch_cifar10 as pc  # noqa: E402
from deep_learning_suite import torch_data, torch_train  # noqa: E402


# Issue 5's targets for the default network on one H100, padded Fashion-MNIST.
TARGET_ACC, TARGET_TRAIN_S, TARGET_IMAGES_PER_S = 0.950, 4.0, 150_000
# Every fastnet run is also scored with each TTA scheme, (level, centre weight), from one pass
# over the 18 views of level 3 (evaluation only, no training cost): levels 0-3 with equal
# weights, and 2-3 with the unshifted pair weighing 1/2, as airbench weighs its views. A change
# of the recipe's TTA is then decided over many runs, paired, on validation runs.
TTA_SCHEMES = ((0, None), (1, None), (2, None), (2, 0.5), (3, None), (3, 0.5))


def scheme_name(level, centre):
    return str(level) if centre is None else f"{level} c{centre:g}"


def tta_accuracies(model, data, x, y, args):
    """Accuracy of ``model`` on uint8 images ``x`` with each of :data:`TTA_SCHEMES`."""
    every = [v[:3] for v in torch_train.tta_views(3)]
    logits = torch_train.view_logits(model, data, x, args, every)
    accs = []
    for level, centre in TTA_SCHEMES:
        views = torch_train.tta_views(level, centre)
        pick = [every.index(v[:3]) for v in views]
        accs.append(torch_train.score(logits[pick], y, [v[3] for v in views])[1])
    return accs


def gpu_state(device):
    """``"MHz/degC"``: the GPU's SM clock and temperature now, read (never set) with nvidia-smi;
    ``"-"`` off CUDA or without nvidia-smi."""
    if device.type != "cuda" or shutil.which("nvidia-smi") is None:
        return "-"
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=clocks.sm,temperature.gpu",
                              "--format=csv,noheader,nounits", "-i", str(device.index or 0)],
                             capture_output=True, text=True, timeout=10).stdout
        clock, temp = (v.strip() for v in out.strip().splitlines()[0].split(","))
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return "-"
    return f"{clock}/{temp}"


def verdict(group, runs):
    """One line per target: does every run of ``group`` meet it? ``runs``: summaries."""
    lines = [f"targets for '{group}' ({len(runs)} runs; every run must meet each):"]
    for what, values, ok, fmt in (
            ("test acc TTA >= 95.0%", [s["test_acc"] for s in runs],
             lambda v: v >= TARGET_ACC, "{:.2%}"),
            ("train time < 4 s", [s["train_time_s"] for s in runs],
             lambda v: v < TARGET_TRAIN_S, "{:.2f} s"),
            ("images/s >= 150k", [s["images_per_s"] for s in runs],
             lambda v: v >= TARGET_IMAGES_PER_S, "{:,.0f}")):
        shown = ", ".join(fmt.format(v) for v in values)
        lines.append(f"  {what:<22} {'MET' if all(map(ok, values)) else 'MISSED':<6} ({shown})")
    return lines


def paired_line(rows, base, group):
    """How runs of ``group`` compare with the ``base`` run of the same seed (same process,
    run next to each other), or None without such pairs. ``rows``: (group, label, args,
    summary) tuples."""
    by_seed = {a.seed: s for g, _, a, s in rows if g == base}
    pairs = [(by_seed[a.seed], s) for g, _, a, s in rows if g == group and a.seed in by_seed]
    if not pairs:
        return None
    key = "val_acc" if group.startswith("val:") else "test_acc"
    gain = np.mean([s[key] - b[key] for b, s in pairs]) * 100
    speed = np.median([s["images_per_s"] / b["images_per_s"] for b, s in pairs])
    faster = sum(s["train_time_s"] < b["train_time_s"] for b, s in pairs)
    return (f"{group} vs {base}, paired by seed ({len(pairs)}): {key.split('_')[0]} acc TTA "
            f"{gain:+.2f} points, images/s x{speed:.2f} (median), faster on {faster} of "
            f"{len(pairs)}")


def weight_difference(a, b):
    """Largest ``max|a - b| / max|a|`` over the floating tensors of two state dicts."""
    return max(((a[k] - b[k]).abs().max() / a[k].abs().max().clamp_min(1e-12)).item()
               for k in a if a[k].is_floating_point())


def same_weights_check(flags, argv, arrays, device, tmp, failed, n_train=8192, tol=1e-3):
    """Train the default twice from one seed, in fp32 for 2 epochs on ``n_train`` images:
    as it is and with ``flags``, which should not change the arithmetic (``--cuda-graph``).
    Prints both runs' losses and how far apart their final weights are; a gap above ``tol``
    (float rounding and cuDNN's choice of algorithms stay far below it, a wrong learning rate
    or batch-norm mode far above) is reported as DIFFERENT and counts as a failed run."""
    subset = tuple(a[:n_train] for a in arrays[:2]) + tuple(a[:1000] for a in arrays[2:])
    data = torch_data.DeviceData(subset, 0, device)
    results = []
    for extra in ([], flags.split()):
        args = pc.parse_args(argv + ["--precision", "fp32", "--epochs", "2", "--seed", "0",
                                     "--out", f"{tmp}/same{len(results)}"] + extra)
        try:
            results.append(torch_train.train(args, data=data, log=lambda *a: None))
        except Exception:
            print(f"-- FAILED same-weights check of {flags}:\n{traceback.format_exc()}",
                  flush=True)
            failed.append(f"same weights with {flags}")
            return None
    plain, other = results
    gap = weight_difference(plain["network"].state_dict(), other["network"].state_dict())
    losses = [[round(r["train_loss"], 6) for r in s["history"]] for s in results]
    verdict = "SAME" if gap <= tol else "DIFFERENT"
    print(f"same weights with {flags}: {verdict} (largest weight gap {gap:.1e} of the "
          f"weight's scale, tolerance {tol:.0e}; train losses {losses[0]} without, "
          f"{losses[1]} with; fp32, 2 epochs, {len(data.x_train)} images)", flush=True)
    if verdict == "DIFFERENT":
        failed.append(f"same weights with {flags}")
    return gap


def int_list(text, minimum):
    """The integers of a comma-separated list such as ``"0,1,2"`` (empty items ignored), or
    None if an item is not an integer of at least ``minimum``."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        return None
    return values if all(v >= minimum for v in values) else None


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", help="folder with the Fashion-MNIST IDX .gz files")
    p.add_argument("--quick", action="store_true",
                   help="tiny CPU smoke run (synthetic data unless --data is given)")
    p.add_argument("--device", default="auto")
    p.add_argument("--budget", type=float, default=240.0,
                   help="seconds after which no new run is started")
    p.add_argument("--seeds", default="0,1,2", help="seeds of the default recipe")
    p.add_argument("--compare", action="append", default=[], metavar="FLAGS",
                   help="also run the default with these flags (e.g. '--no-lookahead'), per seed")
    p.add_argument("--val-size", type=int, default=0,
                   help="if > 0, also train default and --compare variants with this many "
                        "training images held out and report validation accuracy (2 seeds)")
    p.add_argument("--sweep-epochs", default="",
                   help="other epoch counts of the default net")
    p.add_argument("--sweep-seeds", default="0", help="seeds of each --sweep-epochs run")
    p.add_argument("--resnet-epochs", type=int, default=4)
    p.add_argument("--no-compile", dest="compile", action="store_false")
    p.add_argument("--compile-seeds", default="0", help="seeds of the compiled default runs")
    p.add_argument("--profile-epoch", type=int, default=5,
                   help="profile this epoch of one extra default run (0: no profiled run)")
    p.add_argument("--same-as", action="append", default=[], metavar="FLAGS",
                   help="check that the default trained with these flags ends with the same "
                        "weights as without them (e.g. '--cuda-graph'; fp32, 2 short epochs)")
    p.add_argument("--profile-compare", action="append", default=[], metavar="FLAGS",
                   help="also profile a run of the default with these flags (e.g. "
                        "'--cuda-graph': how busy the GPU is then)")
    opt = p.parse_args(argv)
    if not opt.quick and not opt.data:
        p.error("--data DIR is required (or --quick for a CPU smoke run)")
    # Parsed now, not when their runs come up: a typo found after training would lose the
    # table, and on the GPU machine the device time of every run before it.
    for name, minimum, need in (("seeds", 0, True), ("sweep_epochs", 1, False),
                                ("sweep_seeds", 0, False), ("compile_seeds", 0, False)):
        values = int_list(getattr(opt, name), minimum)
        if values is None or (need and not values):
            option = "--" + name.replace("_", "-")
            p.error(f"{option}={getattr(opt, name)!r}: expected a comma-separated list of "
                    f"integers >= {minimum}{' (at least one)' if need else ''}, like "
                    f"{'1,2' if minimum else '0,1'}; nothing was run")
        setattr(opt, name, values)
    t_start = time.perf_counter()

    common = ["--no-download", "--val-size", "0", "--no-checkpoint", "--no-progress",
              "--warmup-steps", "3", "--device", opt.device]
    fast, resnet = ["--model", "fastnet"], ["--model", "resnet18",
                                            "--epochs", str(opt.resnet_epochs)]
    if opt.quick:
        common[-1] = "cpu" if opt.device == "auto" else opt.device
        common += ["--warmup-steps", "1"]
        fast += ["--width", "0.125", "--batch-size", "64", "--lr", "0.5", "--epochs", "2"]
        resnet = ["--model", "resnet18", "--width", "0.0625", "--batch-size", "64",
                  "--epochs", "1"]
    dataset = ["--dataset", "fashion-mnist", "--data-dir", opt.data] if opt.data else \
        ["--dataset", "synthetic", "--synthetic-size", "512"]

    base = pc.parse_args(dataset + common + fast)
    # Every flag set is checked before the first run: on the GPU machine a typo found only
    # when its run comes up would have spent device time on the runs before it.
    for what, sets in (("--compare", opt.compare), ("--same-as", opt.same_as),
                       ("--profile-compare", opt.profile_compare)):
        for flags in sets:
            try:
                pc.parse_args(dataset + common + fast + flags.split())
            except SystemExit:  # argparse has printed what is wrong with them
                p.error(f"{what}={flags!r}: the trainer refuses these flags (its message is "
                        f"above); nothing was run")
    device = torch_train.resolve_device(base.device)
    arrays = torch_data.load_arrays(base)
    if opt.quick and opt.data:  # a subset keeps the smoke run quick
        arrays = (arrays[0][:1024], arrays[1][:1024], arrays[2][:500], arrays[3][:500])
    data = torch_data.DeviceData(arrays, 0, device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"device: {name} | torch {torch.__version__} | CUDA {torch.version.cuda} | "
          f"train {tuple(data.x_train.shape)} test {tuple(data.x_test.shape)} uint8 on device "
          f"| data ready after {time.perf_counter() - t_start:.1f} s", flush=True)

    rows, first, val_data, failed = [], None, {}, []
    tmp = tempfile.mkdtemp(prefix="gpu_cifar_")
    head = (f"| {'run':<36} | {'epochs':>6} | {'batch':>5} | {'prec':>4} | {'images/s':>9} | "
            f"{'train s':>7} | {'test acc TTA':>12} | {'no TTA':>7} | {'val acc TTA':>11} | "
            f"{'wall s':>6} | {'MHz/degC':>8} |")
    rule = "|" + "|".join("-" * (len(c)) for c in head.split("|")[1:-1]) + "|"

    def fmt(label, a, s):
        val = f"{s['val_acc']:>10.2%}" if a.val_size else f"{'-':>10}"
        return (f"| {label:<36} | {a.epochs:>6} | {a.batch_size:>5} | {a.precision:>4} | "
                f"{s['images_per_s']:>9,.0f} | {s['train_time_s']:>7.2f} | "
                f"{s['test_acc']:>11.2%}  | {s['test_acc_no_tta']:>7.2%} | {val}  | "
                f"{s['wall']:>6.1f} | {s['gpu']:>8} |")

    def run(group, label, extra, model_flags=fast, estimate=30.0, val_size=0):
        nonlocal first
        left = opt.budget - (time.perf_counter() - t_start)
        if left < estimate:
            print(f"-- skipped {label}: {left:.0f} s of budget left, needs ~{estimate:.0f} s",
                  flush=True)
            return None
        args = pc.parse_args(dataset + common + model_flags + extra +
                             ["--val-size", str(val_size), "--out", f"{tmp}/{len(rows)}"])
        print(f"-- {label}: {' '.join(model_flags + extra)} --val-size {val_size}", flush=True)
        t0 = time.perf_counter()
        try:
            if val_size and val_size not in val_data:
                val_data[val_size] = torch_data.DeviceData(arrays, val_size, device)
            s = torch_train.train(args, data=val_data[val_size] if val_size else data)
        except Exception:  # one broken variant must not cost the device time of the others
            print(f"-- FAILED {label}:\n{traceback.format_exc()}", flush=True)
            failed.append(label)
            return None
        s["wall"] = time.perf_counter() - t0
        s["gpu"] = gpu_state(device)
        if model_flags is fast:  # evaluation only: what each TTA scheme would have scored
            d = val_data[val_size] if val_size else data
            x, y = (d.x_val, d.y_val) if val_size else (d.x_test, d.y_test)
            s["tta_accs"] = tta_accuracies(s["network"], d, x, y, args)
        rows.append((group, label, args, s))
        first = first or s
        print("row: " + fmt(label, args, s), flush=True)  # kept even if a later run is killed
        return s

    seeds = opt.seeds
    run("fastnet default", f"fastnet default, seed {seeds[0]}", ["--seed", str(seeds[0])],
        estimate=0)
    if not rows:
        print("the first default run failed; nothing to compare with", flush=True)
        return 1
    per_run = rows[0][3]["wall"] + 5
    broken = set()  # variants that failed once: their other seeds would only fail again

    def run_variant(flags, seed, **kw):
        name = f"fastnet {flags or 'default'}"
        val = kw.get("val_size", 0)
        label = f"{name}, {'val, ' if val else ''}seed {seed}"
        if flags in broken:
            print(f"-- skipped {label}: it failed before", flush=True)
            return
        n_failed = len(failed)
        run(("val: " if val else "") + name, label, flags.split() + ["--seed", str(seed)],
            estimate=per_run, **kw)
        if len(failed) > n_failed:
            broken.add(flags)

    # Seed by seed, each variant right after the default: the host's speed drifts during a
    # session (2026-11-28: a fifth slower late in a call), and interleaving spreads the drift
    # evenly over the variants instead of charging it to whichever ran last.
    for i, seed in enumerate(seeds):
        for flags in ([""] if i else []) + opt.compare:
            run_variant(flags, seed)
    if opt.val_size:
        for seed in seeds[:2]:
            for flags in [""] + opt.compare:
                run_variant(flags, seed, val_size=opt.val_size)
    for flags in opt.same_as:
        same_weights_check(flags, dataset + common + fast, arrays, device, tmp, failed)
    for ep in opt.sweep_epochs:
        for seed in opt.sweep_seeds:
            run(f"fastnet {ep} epochs", f"fastnet {ep} epochs, seed {seed}",
                ["--seed", str(seed), "--epochs", str(ep)],
                estimate=per_run * ep / max(base.epochs, 1))
    run("resnet18", "resnet18", ["--seed", "0"], model_flags=resnet,
        estimate=0 if opt.quick else 60)
    if opt.compile and device.type == "cuda":
        for i, seed in enumerate(opt.compile_seeds):
            # the first run compiles from scratch; later ones hit Inductor's caches
            run("fastnet compiled", f"fastnet compiled, seed {seed}",
                ["--seed", str(seed), "--compile"], estimate=150 if i == 0 else 60)
    if opt.profile_epoch:
        epoch = min(opt.profile_epoch, base.epochs)
        run("profile: fastnet default", f"fastnet default, epoch {epoch} profiled",
            ["--seed", str(seeds[0]), "--profile-epoch", str(epoch)], estimate=per_run + 10)
        for flags in opt.profile_compare:
            if flags in broken:
                print(f"-- skipped the profiled {flags} run: it failed before", flush=True)
                continue
            run(f"profile: fastnet {flags}", f"fastnet {flags}, epoch {epoch} profiled",
                flags.split() + ["--seed", str(seeds[0]), "--profile-epoch", str(epoch)],
                estimate=per_run + 10)

    print(f"\nper-epoch figures of the first run (fastnet default, seed {seeds[0]}):")
    print(f"{'epoch':>5} {'lr':>8} {'train loss':>10} {'train acc':>9} {'time s':>7} {'img/s':>9}")
    for r in first["history"]:
        print(f"{r['epoch']:5d} {r['lr']:8.4f} {r['train_loss']:10.4f} {r['train_acc']:9.4f} "
              f"{r['epoch_time_s']:7.3f} {r['images_per_s']:9,.0f}")

    for group, label, a, s in rows:
        if s.get("profile"):
            pr = s["profile"]
            table = Path(a.out, f"profile_epoch{a.profile_epoch}.txt").read_text()
            busy = (f", {pr['device_kernel_s']:.3f} s in GPU kernels "
                    f"({pr['device_kernel_s'] / pr['wall_s']:.0%} busy)"
                    if pr["device_kernel_s"] is not None else "")
            print(f"\n{label}: {pr['wall_s']:.3f} s under the profiler{busy}, "
                  f"{pr['kernel_launches']} kernel launches, {pr['host_ops']} aten ops; "
                  f"top of the table:")
            print("\n".join(table.splitlines()[1:22]))

    print(f"\nresults on {name} (training time excludes warm-up/compile and evaluation; "
          f"test accuracy with the recipe's TTA):")
    print(head)
    print(rule)
    for _, label, a, s in rows:
        print(fmt(label, a, s))
    groups = {}
    for group, _, a, s in rows:
        groups.setdefault(group, []).append(s["val_acc" if a.val_size else "test_acc"])
    for group, accs in groups.items():
        if len(accs) > 1:
            what = "val" if group.startswith("val:") else "test"
            print(f"{group} over {len(accs)} seeds: {what} acc TTA mean {np.mean(accs):.2%}, "
                  f"min {min(accs):.2%}, max {max(accs):.2%}")

    def by_scheme(accs):
        return ", ".join(f"{scheme_name(*sc)}: {m:.2%}"
                         for sc, m in zip(TTA_SCHEMES, np.mean(accs, axis=0)))

    for group in dict.fromkeys(g for g, _, _, _ in rows):
        accs = [s["tta_accs"] for g, _, _, s in rows if g == group and "tta_accs" in s]
        if accs:
            what = "val" if group.startswith("val:") else "test"
            print(f"{group}: {what} acc by TTA level (mean of {len(accs)}): {by_scheme(accs)}")
    accs = [s["tta_accs"] for g, _, _, s in rows if g.startswith("val: ") and "tta_accs" in s]
    if accs:  # the networks that choose the recipe's TTA, each scored every way
        print(f"all validation runs: val acc by TTA level (mean of {len(accs)}): "
              f"{by_scheme(accs)}")
    for prefix in ("", "val: "):
        for flags in opt.compare:
            line = paired_line(rows, f"{prefix}fastnet default", f"{prefix}fastnet {flags}")
            if line:
                print(line)
    for group in dict.fromkeys(g for g, _, _, _ in rows if g.startswith("fastnet")):
        print("\n".join(verdict(group, [s for g, _, _, s in rows if g == group])))
    if failed:
        print(f"FAILED runs (traceback above each): {', '.join(failed)}")
    print(f"total benchmark wall time {time.perf_counter() - t_start:.1f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
