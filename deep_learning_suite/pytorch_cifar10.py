"""Fast ResNet training on CIFAR-10 (and Fashion-MNIST) with PyTorch, on one GPU or many.

Run it as ``python -m deep_learning_suite.pytorch_cifar10 --dataset cifar10`` or as a script
(``python deep_learning_suite/pytorch_cifar10.py``); on several GPUs launch it with
``torchrun --nproc_per_node 8 -m deep_learning_suite.pytorch_cifar10``. ``--help`` lists the
flags. Each run writes to ``--out``: ``checkpoint.pt`` (every epoch), ``metrics.csv`` (one
row per epoch, rewritten whole each epoch), ``model.pt`` (final weights) and ``summary.json``,
every one atomically (a crash or full disk mid-write leaves the previous version);
``--profile-epoch N`` adds ``profile_epochN.txt``, torch.profiler's table of that epoch with
the share of its wall time the GPU spent in kernels (a low share means the host cannot launch
work fast enough: ``--cuda-graph`` takes the host out of the step; ``--compile``, which fuses
kernels, did not help on the H100, see below). An epoch whose training loss is not finite
stops the run (``TrainingDivergedError``, exit status 1; a usage error exits with 2)
before its checkpoint is written.

This module is the command line (flags, the per-model recipe tables, resume checks) and the
place the reasoning below lives; the code is in five sibling modules, each importable alone:

* ``torch_data``: loading, Fashion-MNIST padding, synthetic data, the on-device dataset
  (``DeviceData``), flips, translations and the per-rank batches of an epoch;
* ``torch_models``: ``FastNet`` (the default network) and the CIFAR ``ResNet18``;
* ``torch_optim``: fused SGD parameter groups, the lr schedule and ``Lookahead``;
* ``torch_step``: one training step, eager or recorded and replayed as a CUDA graph;
* ``torch_train``: devices and DDP, the epoch loop, evaluation with TTA, checkpoints and
  ``train()``, which the benchmark (benchmarks/gpu_cifar.py) calls directly.

Data path
---------
The whole training set goes to the device once, as uint8 NCHW. Each epoch one shuffle and one
augmentation pass run over all of it there (reflect-padded random translation by up to
``--translate`` pixels, horizontal flip), so there is no per-sample loader work at all; a step
only slices a batch and normalises it. Flips alternate: every image gets a random bit, fixed for
the run, and is flipped in the epochs where ``bit XOR (epoch % 2)`` is set, so over any two
epochs the network sees both orientations of every image, which random flips only give on
average. All randomness of an epoch comes from ``(--seed, epoch)`` and is drawn for the whole
global batch, of which each rank takes its slice, so a resumed or a multi-GPU run sees exactly
the batches an uninterrupted single-process one would (on the same device type: CUDA and CPU
generators differ). ``--val-size`` images are held out of the training set
(always the same ones, whatever the seed) and reported every epoch; the test set is only
evaluated at the end, so hyper-parameters can be tuned on the validation split without
touching it. Evaluation averages the logits of the image and its mirror image (``--tta 1``)
and, at ``--tta 2``, of both shifted by one pixel up-left and down-right as well (6 views);
``--tta 3`` shifts both by one pixel in all 8 directions (18 views). Every view weighs the
same unless ``--tta-centre-weight W`` gives the unshifted pair the weight W and the shifted
views the rest (airbench weighs its 6 views with 1/2; on a full CPU run of the default that
scored 0.16 points below equal weights on the validation split, benchmarks/RESULTS.md).

The default network ("fastnet", ResNet-9 style)
-----------------------------------------------
The design follows what the CIFAR-10 speed runs (Page's ResNet-9, hlb-cifar10, airbench)
found, rewritten here from their ideas:

* A 2x2 stem convolution whose filters are the eigenvectors of the covariance of 2x2 training
  patches scaled by ``1/sqrt(eigenvalue)``, together with their negatives (24 channels), and
  then frozen: the first layer starts out decorrelating the pixels (ZCA-like whitening) instead
  of spending epochs learning to, and +/- pairs let GELU keep both signs. Only its bias trains,
  for the first ``--whiten-bias-epochs`` epochs. (Grey images stored as 3 equal channels,
  like padded Fashion-MNIST, vary in only 4 of the 12 patch directions: see
  ``FastNet.init_whitening`` for what the other 8 filters do and why they stay.)
* Three stages ``conv3x3 -> maxpool 2 -> BN -> GELU -> conv3x3 -> BN -> GELU`` with widths
  64, 256, 256 (31 -> 15 -> 7 -> 3 pixels), then a global max pool and a bias-free linear layer
  whose logits are scaled by 1/9. That is 8 weight layers (9 counting the pooling head, hence
  the name); pooling right after the first conv of a stage does the expensive 3x3 work at the
  low resolution, which is most of the speed. The first ``c_in`` filters of every 3x3 conv
  start as identities (Dirac), so each conv starts close to a residual "x + small", the job the
  shortcut does in a ResNet, without the extra memory traffic of a skip branch.
* BN scales are frozen at 1 (after BN a conv is scale invariant, so a trainable scale only
  adds a redundant direction), BN biases train with a 64x larger learning rate, and BN running
  statistics use momentum 0.4 because the weights move fast in so short a run.
* Nesterov SGD, momentum 0.85, batch 1024, lr 1.5 on the mean loss and coupled weight decay
  1.33e-3 (lr * wd = 0.002 per step: with BN in front, the decay is what sets the effective
  step size of the scale-invariant weights), lr warmed up linearly from 0.2x over the first 20%
  of the steps, then decayed linearly to 0.05x; label smoothing 0.2 (the logits otherwise grow
  without bound over so few, large steps); bf16 autocast and channels_last on CUDA.
* Lookahead: every 5 steps a slow copy of the weights moves towards the SGD weights and SGD
  restarts from it, with a pull that grows as ``t**3`` over the run, so the run ends on an
  average of its last few dozen steps instead of on one noisy large step (``--no-lookahead``
  turns it off).

Why 94% on CIFAR-10 in at most 10 epochs (the CIFAR-10 default is 10)
---------------------------------------------------------------------
This could not be run here (no CIFAR-10 and no GPU time for it), so it is an argument:

* The network and recipe are those of the published CIFAR-10 speed runs (airbench-style:
  whitened 2x2 stem, 64/256/256 conv-BN-GELU stages, frozen BN scales with fast BN shifts,
  label smoothing 0.2, Nesterov SGD at batch 1024 with warm-up and linear decay, alternating
  flips, 2-pixel translations, flip + shift TTA), which reach 94% in about 10 epochs. Ten epochs
  of 50k images are ~490 steps, the budget those runs were tuned for; the lr and decay above are
  theirs, converted to a mean loss.
* The whitening stem is what makes so few epochs enough: the first layer does not have to
  learn to decorrelate neighbouring pixels, so the steep early part of training is skipped, and
  a frozen stem removes a badly conditioned layer from the optimisation.
* Label smoothing and the large, decaying, scale-invariant steps act as the regulariser: on a
  run this short, the network does not fit the training set (train accuracy stays below test
  accuracy until the last epochs, as the Fashion-MNIST figures below show), so more capacity
  (the 512-wide ResNet-9) would only cost time.
* TTA (flip plus 1-pixel shifts, ``--tta 2``) adds ~0.4% at no training cost.
* Measured the same way on Fashion-MNIST (below), 10 epochs is already at the plateau: 8
  epochs lose ~0.3%, 12 or 14 gain nothing (2 seeds each). CIFAR-10 has 50k rather than 60k
  training images, so its 10 epochs are fewer steps; the published runs reach 94% at about
  that step count, which is why 10 is the default there too.
* The default ``--val-size 5000`` trains on 45k images, which costs a little accuracy: tune on
  the validation split, then train the final model with ``--val-size 0``.

Measured (benchmarks/gpu_cifar.py, one H100, torch 2.11, Fashion-MNIST 60k/10k padded to
32x32x3, eager, bf16, channels_last; training time excludes warm-up and evaluation; 10 epochs;
2026-11-28, three H100 hosts):

* the default: TTA test accuracy mean 95.05% over 18 runs in 4 batches (batch means 95.08,
  95.07, 95.03, 95.03%; runs 94.90-95.15%, 4 of 18 below 95.0%). Training took 3.10-3.64 s
  at 163k-191k images/s on one host and 3.89-4.10 s at 145k-153k on a slower one: the host
  CPU sets the pace, since an eager step is ~490 host-side aten ops and the GPU is busy only
  about half the time;
* without Lookahead: 94.66-94.85% (mean 94.74%, same seeds, same process); on the
  validation split (5000 held out, 2 seeds) 95.29% with it, 95.26% without;
* ``--compile`` (without Lookahead) was no faster than eager: 157k-172k images/s, 94.74-94.86%;
* CIFAR ResNet-18, same settings: 36k-46k images/s, depending on the host.

Since then SGD runs fused (one kernel per parameter group instead of about five: on a CPU
profile of a step, 618 aten ops instead of 740), and ``--cuda-graph`` replays the whole step
(forward, backward, SGD, the loss and accuracy sums) as one CUDA graph, so the host no longer
sets the pace. Neither has been timed on a GPU yet; ``gpu_cifar.py --compare=--cuda-graph``
does it.

Multi-GPU
---------
Under ``torchrun`` every rank loads the data, takes its slice of each global batch
(``--batch-size`` is the global batch, so the schedule does not depend on the number of
ranks), and ``DistributedDataParallel`` all-reduces the gradients (NCCL on GPUs, gloo on CPUs).
Only rank 0 prints, writes metrics and saves checkpoints. At the end the ranks compare hashes of
their weights and the result goes to ``summary.json``.
"""

import argparse
import math
import sys
from pathlib import Path

if __package__ in (None, ""):
    # Run as a script: make the package importable and keep its folder (which holds modules
    # named data.py, utils.py, ...) off the front of sys.path.
    _here = Path(__file__).resolve().parent
    sys.path = [p for p in sys.path if Path(p or ".").resolve() != _here]
    sys.path.insert(0, str(_here.parent))

import torch.distributed as dist

from deep_learning_suite.torch_data import DATASETS, UsageError
from deep_learning_suite.torch_models import MODELS
from deep_learning_suite.torch_optim import SCHEDULES
from deep_learning_suite.torch_train import load_checkpoint, train
from deep_learning_suite.trainer import TrainingDivergedError


# Per-model recipe; any flag left unset takes its value from here.
MODEL_DEFAULTS = {
    "fastnet": dict(batch_size=1024, lr=1.5, momentum=0.85, weight_decay=1.33e-3,
                    label_smoothing=0.2, schedule="linear", warmup=0.2, bias_lr_scale=64.0,
                    translate=2, tta=2, whiten_bias_epochs=3, lookahead=True),
    "resnet18": dict(batch_size=512, lr=0.2, momentum=0.9, weight_decay=5e-4,
                     label_smoothing=0.1, schedule="linear", warmup=0.15, bias_lr_scale=1.0,
                     translate=4, tta=1, whiten_bias_epochs=0, lookahead=False),
}
EPOCH_DEFAULTS = {("fastnet", "cifar10"): 10, ("fastnet", "fashion-mnist"): 10,
                  ("resnet18", "cifar10"): 30, ("resnet18", "fashion-mnist"): 15}
SYNTHETIC_EPOCHS = 4
# The seeds torch.manual_seed takes.
SEED_RANGE = (-2**63, 2**64 - 1)
# Flags that define the run: a resumed run takes them from the checkpoint and refuses a
# different value on the command line, since the schedule and the data order depend on them.
RUN_KEYS = ("dataset", "model", "width", "epochs", "batch_size", "lr", "schedule", "warmup",
            "momentum", "weight_decay", "label_smoothing", "bias_lr_scale", "translate", "tta",
            "whiten_bias_epochs", "lookahead", "seed", "val_size", "synthetic_size", "precision")


# --------------------------------------------------------------------------- command line

def finite_float(text):
    """argparse ``type=`` of the float flags: a finite number. float() takes "nan" and "inf",
    which no flag means: a nan decay or lr scale only showed up epochs later as a "diverged"
    run blamed on --lr, and an infinite width as an OverflowError from the model."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid float value: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def build_parser():
    p = argparse.ArgumentParser(
        prog="python -m deep_learning_suite.pytorch_cifar10",
        description="Fast ResNet training on CIFAR-10 / Fashion-MNIST with PyTorch (one GPU, "
                    "several via torchrun, or CPU). Unset flags take the model's recipe.",
        epilog="Multi-GPU: torchrun --nproc_per_node N -m deep_learning_suite.pytorch_cifar10 ...")
    d = p.add_argument_group("data")
    d.add_argument("--dataset", choices=DATASETS, default=None,
                   help="cifar10 (default), fashion-mnist (padded to 32x32x3) or synthetic")
    d.add_argument("--data-dir", default=None,
                   help="folder with the data (else $CIFAR10_DIR / $FASHION_MNIST_DIR / cache)")
    d.add_argument("--no-download", dest="download", action="store_false",
                   help="fail instead of downloading a missing dataset")
    d.add_argument("--val-size", type=int, default=None,
                   help="training images held out for validation (default 5000, synthetic 10%%)")
    d.add_argument("--synthetic-size", type=int, default=None,
                   help="training images of --dataset synthetic (default 2048)")
    m = p.add_argument_group("model and recipe")
    m.add_argument("--model", choices=MODELS, default=None, help="fastnet (default) or resnet18")
    m.add_argument("--width", type=finite_float, default=None,
                   help="channel multiplier (default 1)")
    m.add_argument("--epochs", type=int, default=None,
                   help="fastnet: 10; resnet18: 30 on cifar10, 15 on fashion-mnist")
    m.add_argument("--batch-size", type=int, default=None,
                   help="global batch (split over ranks); fastnet 1024, resnet18 512")
    m.add_argument("--lr", type=finite_float, default=None,
                   help="peak lr (fastnet 1.5, resnet18 0.2)")
    m.add_argument("--schedule", choices=SCHEDULES, default=None,
                   help="after the warm-up: linear decay (default), cosine or constant")
    m.add_argument("--warmup", type=finite_float, default=None,
                   help="fraction of the steps spent warming up (fastnet 0.2, resnet18 0.15)")
    m.add_argument("--momentum", type=finite_float, default=None,
                   help="Nesterov momentum (0: plain SGD)")
    m.add_argument("--weight-decay", type=finite_float, default=None,
                   help="SGD (coupled) weight decay")
    m.add_argument("--label-smoothing", type=finite_float, default=None)
    m.add_argument("--bias-lr-scale", type=finite_float, default=None,
                   help="lr multiplier of BN shifts and biases (fastnet 64)")
    m.add_argument("--translate", type=int, default=None,
                   help="max random shift in pixels (fastnet 2, resnet18 4; 0 = none)")
    m.add_argument("--tta", type=int, choices=(0, 1, 2, 3), default=None,
                   help="test-time augmentation: 0 none, 1 flip, 2 flip + 2 diagonal 1-pixel "
                        "shifts (6 views), 3 flip + all 8 1-pixel shifts (18 views)")
    m.add_argument("--tta-centre-weight", type=finite_float, default=None, metavar="W",
                   help="TTA levels 2-3: the unshifted image and its mirror weigh W together, "
                        "the shifted views 1 - W (default: every view the same)")
    m.add_argument("--whiten-bias-epochs", type=int, default=None,
                   help="epochs during which the fastnet stem bias trains (3)")
    m.add_argument("--lookahead", action=argparse.BooleanOptionalAction, default=None,
                   help="Lookahead weight averaging (fastnet: on, resnet18: off)")
    m.add_argument("--seed", type=int, default=None, help="seed of init, order, augmentation (0)")
    r = p.add_argument_group("run")
    r.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:N")
    r.add_argument("--precision", choices=("auto", "bf16", "fp32"), default=None,
                   help="auto: bf16 autocast on CUDA, fp32 on CPU")
    r.add_argument("--compile", action=argparse.BooleanOptionalAction, default=False,
                   help="torch.compile the training step (first epoch pays the compile)")
    r.add_argument("--cuda-graph", action=argparse.BooleanOptionalAction, default=False,
                   help="record the training step once as a CUDA graph and replay it: one "
                        "launch per step instead of ~490 host-side ops (one CUDA process)")
    r.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                   help="NHWC memory layout (default: on for CUDA)")
    r.add_argument("--warmup-steps", type=int, default=0,
                   help="throwaway training steps before timing (at least 2: compile, "
                        "autotune, first kernel loads); weights and optimizer state restored")
    r.add_argument("--out", default=None, help="output folder (default runs/<dataset>_<model>)")
    r.add_argument("--resume", nargs="?", const="auto", default=None, metavar="CHECKPOINT",
                   help="continue from CHECKPOINT (or --out/checkpoint.pt); the schedule goes on")
    r.add_argument("--stop-after", type=int, default=None, metavar="EPOCH",
                   help="stop after this epoch of the schedule (e.g. to fit a job slot); "
                        "--resume continues")
    r.add_argument("--profile-epoch", type=int, default=None, metavar="EPOCH",
                   help="run torch.profiler over this epoch; writes profile_epoch<N>.txt "
                        "(its time then counts the profiler's overhead)")
    r.add_argument("--checkpoint", action=argparse.BooleanOptionalAction, default=True,
                   help="save checkpoint.pt after every epoch")
    r.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True,
                   help="show a tqdm progress bar")
    r.add_argument("--dist-backend", choices=("nccl", "gloo"), default=None,
                   help="torch.distributed backend under torchrun (nccl on CUDA, else gloo)")
    return p


def resolve_args(args):
    """Fill unset flags from the recipe tables and check them; raises UsageError."""
    if args.resume is not None:
        if args.resume == "auto" and args.out is None:
            raise UsageError("--resume without a path needs --out (the folder of the run to "
                             "continue), or pass the checkpoint file: --resume PATH")
        path = Path(args.out) / "checkpoint.pt" if args.resume == "auto" else Path(args.resume)
        if path.is_dir():
            path = path / "checkpoint.pt"
        ck = load_checkpoint(path)
        saved = ck.get("args", {})
        # The checkpoint holds the precision the run trained in (train() resolves "auto" to
        # bf16 or fp32 before saving), so an explicit --precision auto, the default, asks for
        # nothing that could clash with it; bf16 or fp32 must match.
        clash = [k for k in RUN_KEYS if getattr(args, k) is not None
                 and saved.get(k) is not None and getattr(args, k) != saved[k]
                 and not (k == "precision" and args.precision == "auto")]
        if clash:
            raise UsageError("--resume: the checkpoint was made with " + ", ".join(
                f"--{k.replace('_', '-')} {saved[k]}" for k in clash) + "; these set the "
                "schedule and data order, so drop those flags (or start a new run)")
        for k in RUN_KEYS:
            setattr(args, k, saved.get(k))
        if "lookahead" not in saved:  # written before Lookahead existed: trained without it
            args.lookahead = False
        # Evaluation only, so not a run key: kept from the run unless given again.
        if args.tta_centre_weight is None:
            args.tta_centre_weight = saved.get("tta_centre_weight")
        if args.out is None:
            args.out = str(path.parent)
        args.resume = str(path)  # the file itself, so errors found in train() can name it
        args.resume_state = ck
    else:
        args.resume_state = None
    args.dataset = args.dataset or "cifar10"
    args.model = args.model or "fastnet"
    for k, v in MODEL_DEFAULTS[args.model].items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    if args.epochs is None:
        args.epochs = EPOCH_DEFAULTS.get((args.model, args.dataset), SYNTHETIC_EPOCHS)
    if args.width is None:
        args.width = 1.0
    if args.seed is None:
        args.seed = 0
    if args.precision is None:
        args.precision = "auto"
    if args.synthetic_size is None:
        args.synthetic_size = 2048
    if args.val_size is None:
        args.val_size = args.synthetic_size // 10 if args.dataset == "synthetic" else 5000
    if args.out is None:
        args.out = str(Path("runs") / f"{args.dataset}_{args.model}")
    problems = []
    for k in ("epochs", "batch_size", "synthetic_size"):
        if getattr(args, k) <= 0:
            problems.append(f"--{k.replace('_', '-')} must be positive, got {getattr(args, k)}")
    # finite_float already refused nan and inf on the command line; these checks say it again
    # for values that come from a checkpoint's args or from a caller who built the namespace.
    for k in ("lr", "width", "bias_lr_scale"):
        v = getattr(args, k)
        if not (math.isfinite(v) and v > 0):
            problems.append(f"--{k.replace('_', '-')} must be positive, got {v}")
    if not (math.isfinite(args.weight_decay) and args.weight_decay >= 0):
        problems.append(f"--weight-decay must be >= 0, got {args.weight_decay}")
    for k in ("translate", "whiten_bias_epochs", "val_size", "warmup_steps"):
        if getattr(args, k) < 0:
            problems.append(f"--{k.replace('_', '-')} must be >= 0, got {getattr(args, k)}")
    if not 0 <= args.label_smoothing < 1:
        problems.append(f"--label-smoothing must be in [0, 1), got {args.label_smoothing}")
    if not 0 <= args.momentum < 1:
        problems.append(f"--momentum must be in [0, 1), got {args.momentum}")
    if not 0 <= args.warmup < 1:
        problems.append(f"--warmup is a fraction of the steps in [0, 1), got {args.warmup}")
    if args.tta_centre_weight is not None:
        if not 0 < args.tta_centre_weight < 1:
            problems.append(f"--tta-centre-weight must be in (0, 1), got "
                            f"{args.tta_centre_weight}")
        elif args.tta < 2:
            problems.append(f"--tta-centre-weight weighs the shifted views against the "
                            f"unshifted ones, so it needs --tta 2 or 3, got --tta {args.tta}")
    if args.translate >= 32:
        problems.append(f"--translate must be below the image size 32, got {args.translate}")
    if args.stop_after is not None and not 1 <= args.stop_after <= args.epochs:
        problems.append(f"--stop-after must be in [1, --epochs={args.epochs}], got "
                        f"{args.stop_after}")
    if args.profile_epoch is not None and not 1 <= args.profile_epoch <= args.epochs:
        problems.append(f"--profile-epoch must be in [1, --epochs={args.epochs}], got "
                        f"{args.profile_epoch}")
    if not SEED_RANGE[0] <= args.seed <= SEED_RANGE[1]:
        problems.append(f"--seed must be in [-2**63, 2**64 - 1], the seeds torch takes, got "
                        f"{args.seed}")
    if args.resume_state is not None:
        # Epochs the checkpoint holds are not run again: stopping at one of them would report
        # a run of fewer epochs than its history and rewrite model.pt, and profiling one would
        # silently never happen.
        done = args.resume_state.get("epoch")
        for flag, value in (("--stop-after", args.stop_after),
                            ("--profile-epoch", args.profile_epoch)):
            if not (isinstance(done, int) and value is not None and value <= done):
                continue
            if flag == "--stop-after" and value == args.epochs:
                continue  # a finished run stopping at its end: the same as without the flag
            left = ("it has no epochs left to run" if done >= args.epochs else
                    f"pick {args.epochs}" if done + 1 == args.epochs else
                    f"pick one of {done + 1}-{args.epochs}")
            problems.append(f"{flag} {value}: {args.resume} already holds epochs 1-{done} of "
                            f"{args.epochs}; {left} (or drop the flag)")
    out = Path(args.out)
    # torchrun: every rank refuses it here, rather than rank 0 alone when it makes the folder
    taken = next((q for q in (out, *out.parents) if q.exists()), None)
    if taken is not None and not taken.is_dir():
        problems.append(f"--out {out}: {taken} is a file, not a folder; name a folder")
    if problems:
        raise UsageError("; ".join(problems))
    return args


def parse_args(argv=None):
    """Parse and resolve the command line; exits with status 2 and a message on bad flags."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return resolve_args(args)
    except UsageError as e:
        parser.error(str(e))


def main(argv=None):
    args = parse_args(argv)
    try:
        train(args)
    except UsageError as e:
        print(f"pytorch_cifar10: error: {e}", file=sys.stderr)
        return 2
    except TrainingDivergedError as e:      # 1, as the NumPy CLI: not a flag to fix
        print(f"pytorch_cifar10: error: {e}", file=sys.stderr)
        return 1
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
