"""The training loop of the PyTorch trainer: devices and ranks, epochs, evaluation, checkpoints.

:func:`train` runs a whole training from resolved arguments (see
:func:`deep_learning_suite.pytorch_cifar10.parse_args`) and returns its summary; everything
else here is a step of it. Checkpoints hold only tensors and plain containers, so they load
with ``torch.load(..., weights_only=True)``. Every file of a run (``checkpoint.pt``,
``metrics.csv``, ``model.pt``, ``summary.json``, ``profile_epochN.txt``) is written whole
each time, atomically (:func:`deep_learning_suite.checkpoint.atomic_write`: a temporary
file beside it, fsync'ed, then renamed over it), so a crash or a full disk mid-write leaves
the previous version in place, never a torn one.
"""

import csv
import hashlib
import io
import json
import math
import os
import sys
import time
import warnings
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from deep_learning_suite.checkpoint import atomic_write
from deep_learning_suite.torch_data import (DeviceData, UsageError, epoch_batches, load_arrays,
                                            translate)
from deep_learning_suite.torch_models import FastNet, build_model
from deep_learning_suite.torch_optim import (Lookahead, load_optimizer_state, make_optimizer,
                                             set_lr)
from deep_learning_suite.torch_step import TrainStep, autocast, restore, snapshot, to_input
from deep_learning_suite.trainer import TrainingDivergedError


# --------------------------------------------------------------------------- evaluation

TTA_SHIFTS = {2: ((-1, -1), (1, 1)),
              3: tuple((dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx)}


def tta_views(level, centre_weight=None):
    """The views of TTA ``level`` as ``(flip, dy, dx, weight)`` tuples; weights sum to 1.

    0: the image; 1: the image and its mirror image; 2: also both shifted by one pixel
    up-left and down-right (6 views); 3: both shifted by one pixel in each of the 8
    directions (18 views). Shifts fill in by reflection, as in training. All views weigh the
    same unless ``centre_weight`` is given (levels 2 and 3): then the unshifted image and its
    mirror share that weight and the shifted views share the rest. (airbench weighs its 6
    views that way, with 1/2: a shifted view has lost a row and a column of the image.)
    """
    flips = (False,) if level == 0 else (False, True)
    views = [(f, dy, dx) for dy, dx in ((0, 0),) + TTA_SHIFTS.get(level, ()) for f in flips]
    n, centre = len(views), len(flips)
    if centre_weight is None or n == centre:
        weights = [1 / n] * n
    else:
        if not 0 < centre_weight < 1:
            raise UsageError(f"the TTA centre weight must be in (0, 1), got {centre_weight}")
        weights = ([centre_weight / centre] * centre
                   + [(1 - centre_weight) / (n - centre)] * (n - centre))
    return [view + (w,) for view, w in zip(views, weights)]


@torch.no_grad()
def view_logits(model, data, x, args, views, batch_size=2000):
    """Logits of ``model`` on each view of uint8 images ``x`` (N, 3, H, W).

    ``views``: ``(flip, dy, dx, ...)`` tuples (see :func:`tta_views`). Returns float32
    (len(views), N, num_classes), so that any weighting of the views can be scored from one
    pass (:func:`score`).
    """
    model.eval()
    out = []
    for i in range(0, len(x), batch_size):
        xb = x[i:i + batch_size]
        one = torch.ones(len(xb), dtype=torch.long, device=xb.device)
        per_view = []
        for flip, dy, dx, *_ in views:
            v = xb.flip(3) if flip else xb
            if dy or dx:
                v = translate(v, dy * one, dx * one)
            with autocast(args):
                per_view.append(model(to_input(data.normalise(v), args)).float())
        out.append(torch.stack(per_view))
    return torch.cat(out, dim=1)


def score(logits, y, weights=None):
    """Mean cross-entropy and accuracy of the weighted mean of ``logits`` (V, N, C) over its
    views (equal weights when ``weights`` is None) against labels ``y`` (N,)."""
    if weights is None:
        mixed = logits.mean(0)
    else:
        w = torch.as_tensor(weights, dtype=logits.dtype, device=logits.device)
        mixed = (w[:, None, None] * logits).sum(0)
    loss = F.cross_entropy(mixed, y, reduction="sum")
    correct = (mixed.argmax(1) == y).sum()
    return loss.item() / len(y), correct.item() / len(y)


def evaluate(model, data, x, y, args, tta=0, centre_weight=None, batch_size=2000):
    """Mean loss and accuracy of ``model`` on uint8 images ``x`` (N, 3, H, W), labels ``y``,
    averaging its logits over the views of TTA level ``tta`` (:func:`tta_views`).

    ``(None, None)`` when ``x`` is empty (``--val-size 0``): no images, no metrics. (NaN would
    say the same, but JSON has no NaN, and it reads as a diverged run.)"""
    if len(x) == 0:
        return None, None
    views = tta_views(tta, centre_weight)
    logits = view_logits(model, data, x, args, views, batch_size)
    return score(logits, y, None if centre_weight is None else [v[3] for v in views])


# --------------------------------------------------------------------------- checkpoints

def atomic_save(obj, path):
    """``torch.save(obj, path)`` through :func:`atomic_write`: never a torn file at ``path``."""
    return atomic_write(path, lambda f: torch.save(obj, f))


def atomic_write_text(path, text):
    """Write ``text`` (UTF-8) to ``path`` through :func:`atomic_write`."""
    data = text.encode("utf-8")
    return atomic_write(path, lambda f: f.write(data))


def json_safe(value):
    """``value`` with every non-finite float (in dicts and lists) replaced by None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def plain_args(args):
    """``vars(args)`` restricted to str/int/float/bool/None, which weights_only loading admits."""
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
            if v is None or isinstance(v, (str, int, float, bool, Path))}


CHECKPOINT_KEYS = ("model", "optimizer", "epoch", "step", "rng", "args", "history")


def load_checkpoint(path):
    """The dict :func:`save_checkpoint` wrote to ``path``; raises UsageError for anything else."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"--resume: no checkpoint at {path}; pass the checkpoint.pt of an "
                         f"earlier run (or the --out folder it was written to)")
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic != b"PK\x03\x04":  # torch.save writes a zip archive
        raise UsageError(f"--resume: {path} is not a checkpoint of this trainer (those are "
                         f"torch.save zip archives; this file starts with {magic!r}); pass the "
                         f"run's checkpoint.pt")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a torn or foreign file: say which, not a trace from the unpickler
        raise UsageError(f"--resume: {path} is not a readable checkpoint: {e}") from e
    missing = [k for k in CHECKPOINT_KEYS if not isinstance(ck, dict) or k not in ck]
    if missing:
        what = ("holds only a model's weights (like the model.pt a run ends with)"
                if isinstance(ck, dict) and ck and all(torch.is_tensor(v) for v in ck.values())
                else f"lacks {', '.join(missing)}")
        raise UsageError(f"--resume: {path} {what}, not the training state a resume needs; "
                         f"pass the run's checkpoint.pt")
    return ck


def weights_digest(model):
    """SHA-256 of every parameter and buffer, to check that DDP replicas agree bit for bit."""
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def write_metrics(path, history):
    """Rewrite ``path`` as a CSV of every epoch so far (one row each), atomically: rewriting
    the whole file rather than appending a row means a resumed run's file always matches its
    checkpoint's history, and a failed write keeps the previous epoch's file."""
    if not history:
        return
    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, fieldnames=list(history[0]))
    w.writeheader()
    w.writerows(history)
    atomic_write_text(path, buf.getvalue())


# --------------------------------------------------------------------------- profiling

def profiler(device):
    activities = [torch.profiler.ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    return torch.profiler.profile(activities=activities)


def write_profile(prof, path, wall_s, device):
    """Write the op/kernel table of a profiled epoch to ``path``; return its summary figures.

    ``device_kernel_s`` is the time the GPU spent in kernels; its ratio to the epoch's wall
    time says whether the step is bound by the GPU (near 1) or by the host launching work.
    Under the profiler the host is slower, so that ratio is a lower bound of the unprofiled one.
    """
    events = prof.key_averages()
    on_gpu = device.type == "cuda"
    kernels = [e for e in events if e.device_type == torch.autograd.DeviceType.CUDA]
    kernel_s = sum(e.self_device_time_total for e in kernels) / 1e6
    table = events.table(sort_by="self_device_time_total" if on_gpu else "self_cpu_time_total",
                         row_limit=25)
    figures = dict(wall_s=wall_s, device_kernel_s=kernel_s if on_gpu else None,
                   kernel_launches=sum(e.count for e in kernels),
                   host_ops=sum(e.count for e in events if e.key.startswith("aten::")))
    atomic_write_text(path, json.dumps(figures) + "\n" + table)
    return figures


# --------------------------------------------------------------------------- training

def setup_distributed(args):
    """Initialise torch.distributed when launched by torchrun; returns (rank, world, device)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(args.device, local if world > 1 else None)
    if world > 1 and not dist.is_initialized():
        backend = args.dist_backend or ("nccl" if device.type == "cuda" else "gloo")
        dist.init_process_group(backend=backend)
    return rank, world, device


def resolve_device(name, local_rank=None):
    """The torch.device of ``--device`` ``name``, made the current CUDA device if it is one.

    ``local_rank`` is torchrun's LOCAL_RANK when there are several processes, else None:
    each process then takes the GPU of its local rank, and an explicit ``cuda:N`` (which
    would put every rank on GPU N) is refused."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    index = name[len("cuda:"):] if name.startswith("cuda:") else None
    if name == "cpu":
        return torch.device("cpu")
    if name != "cuda" and not (index is not None and index.isascii() and index.isdigit()):
        raise UsageError(f"--device must be auto, cpu, cuda or cuda:N, got {name!r}")
    if index is not None and local_rank is not None:
        raise UsageError(f"--device {name}: under torchrun each process takes the GPU of its "
                         f"LOCAL_RANK, and an explicit index would put every rank on the same "
                         f"one; pass --device cuda (or auto), and choose the GPUs with "
                         f"CUDA_VISIBLE_DEVICES")
    if not torch.cuda.is_available():
        raise UsageError(f"--device {name}: CUDA is not available here (torch "
                         f"{torch.__version__}); use --device cpu")
    if index is None:  # set_device and DDP need an index
        index = local_rank if local_rank is not None else torch.cuda.current_device()
    count = torch.cuda.device_count()
    if int(index) >= count:
        here = (f"there {'is 1 CUDA device' if count == 1 else f'are {count} CUDA devices'} "
                f"here (cuda:0{f' to cuda:{count - 1}' if count > 1 else ''})")
        if name == "cuda":  # the index came from LOCAL_RANK
            raise UsageError(f"--device cuda: this process's LOCAL_RANK is {index}, but {here}; "
                             f"start at most {count} processes per node (--nproc_per_node)")
        raise UsageError(f"--device {name}: {here}")
    device = torch.device(f"cuda:{int(index)}")
    torch.cuda.set_device(device)
    return device


def warm_up(model, step_fn, optimizer, lookahead, data, args, rank, world, steps):
    """Run ``steps`` real training steps (:func:`train_epoch`: the epoch's augmentation, loss,
    optimizer and Lookahead updates) and one evaluation pass, capture the CUDA graph if
    ``args.cuda_graph``, then put back the weights, buffers, optimizer and Lookahead state.
    Compilation, cuDNN autotuning, CUDA's lazy loading of each kernel on its first launch and
    the first allocation of an epoch's buffers then all happen outside the timed epochs, and
    the run itself is unchanged by it."""
    snap = snapshot(model, optimizer)
    slow = lookahead.state_dict() if lookahead is not None else None
    device = data.x_train.device
    # Two steps at least: SGD's first step creates the momentum buffers, later ones use them.
    steps = max(steps, 2)
    # torch.cuda.graphs wants the eager steps before a capture on a side stream.
    side = torch.cuda.Stream(device) if args.cuda_graph else None
    if side is not None:
        side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side) if side is not None else nullcontext():
        train_epoch(model, step_fn, optimizer, None, data, 0, 0, steps, args, rank, world,
                    tqdm(disable=True), max_steps=steps)
        if lookahead is not None:
            lookahead.step(lookahead.k, lookahead.k)
        evaluate(model, data, data.x_train[:args.batch_size // world],
                 data.y_train[:args.batch_size // world], args, tta=args.tta,
                 centre_weight=args.tta_centre_weight)
    if side is not None:
        torch.cuda.current_stream(device).wait_stream(side)
        b = args.batch_size // world
        step_fn.capture(b)
        step_fn(data.x_train[:b], data.y_train[:b])  # the first replay uploads the graph
    restore(model, optimizer, snap)
    if lookahead is not None:
        lookahead.load_state_dict(slow)
    step_fn.reset_stats()
    sync(device)


def average_buffers(model, world):
    """Average the BN running statistics over the ranks: each rank's come from its own shard,
    and DDP alone would keep whichever rank 0 last had."""
    for b in model.buffers():
        if b.is_floating_point():
            dist.all_reduce(b)
            b /= world


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_epoch(model, step_fn, optimizer, lookahead, data, epoch, step, total_steps, args,
                rank, world, bar, max_steps=None):
    """One epoch of SGD over this rank's shard (its first ``max_steps`` steps if given);
    ``step_fn`` is the :class:`~deep_learning_suite.torch_step.TrainStep`, ``lookahead`` a
    :class:`Lookahead` or None. Returns ``(step, last lr, mean train loss, train accuracy)``,
    the last two over all ranks, with the device synchronised."""
    model.train()
    x_ep, y_ep, b = epoch_batches(data, epoch, args, rank, world)
    steps = len(x_ep) // b if max_steps is None else min(max_steps, len(x_ep) // b)
    step_fn.reset_stats()
    for i in range(steps):
        lr = set_lr(optimizer, step, total_steps, epoch, args)
        step_fn(x_ep[i * b:(i + 1) * b], y_ep[i * b:(i + 1) * b])
        step += 1
        if lookahead is not None:
            lookahead.step(step, total_steps)
        bar.update(1)
    stats = torch.stack([step_fn.loss_sum, step_fn.correct.to(step_fn.loss_sum.dtype)])
    if world > 1:
        dist.all_reduce(stats)
        average_buffers(model, world)
    sync(x_ep.device)  # so the caller's clock covers the last optimizer step too
    loss, acc = (stats / (steps * b * world)).tolist()
    return step, lr, loss, acc


def save_checkpoint(path, model, optimizer, lookahead, epoch, step, history, args, device):
    """Everything a resume needs, as tensors and plain containers (weights_only loads it)."""
    rng = {"cpu": torch.get_rng_state(),
           "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None}
    atomic_save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                 "lookahead": lookahead.state_dict() if lookahead is not None else None,
                 "epoch": epoch, "step": step, "rng": rng, "args": plain_args(args),
                 "history": history}, path)


def state_mismatch(expected, saved, limit=3):
    """What keeps ``saved`` (a state dict) from loading into a model whose state dict is
    ``expected``: up to ``limit`` each of missing, unexpected and mis-shaped keys, as phrases
    (an empty list when it fits)."""
    def few(keys):
        return ", ".join(keys[:limit]) + (f" and {len(keys) - limit} more" if len(keys) > limit
                                          else "")
    if not isinstance(saved, dict):
        return [f"its weights are a {type(saved).__name__}, not a state dict"]
    missing = [k for k in expected if k not in saved]
    unexpected = [k for k in saved if k not in expected]
    shaped = [f"{k} {tuple(saved[k].shape)} (the model's is {tuple(v.shape)})"
              for k, v in expected.items()
              if k in saved and torch.is_tensor(saved[k]) and saved[k].shape != v.shape]
    untensor = [k for k in expected if k in saved and not torch.is_tensor(saved[k])]
    return ([f"missing {few(missing)}"] if missing else []) + (
        [f"unexpected {few(unexpected)}"] if unexpected else []) + (
        [f"mis-shaped {few(shaped)}"] if shaped else []) + (
        [f"not tensors: {few(untensor)}"] if untensor else [])


def restore_checkpoint(ck, path, model, optimizer, lookahead, device, args):
    """Load the training state ``ck`` (from :func:`load_checkpoint`, read from ``path``) into
    ``model``, ``optimizer`` and ``lookahead`` and set the RNG; returns ``(epoch, step,
    history)``. A checkpoint that does not fit the model its own args name (edited, or from
    another version of the code) raises UsageError naming the file and what differs, rather
    than a trace from load_state_dict."""
    where = f"--resume: {path}" if path else "--resume: the checkpoint"
    model_args = f"--model {args.model} --width {args.width:g}"
    bad = state_mismatch(model.state_dict(), ck["model"])
    if bad:
        raise UsageError(f"{where} holds weights that do not fit the {model_args} its own "
                         f"args name: {'; '.join(bad)}; it was edited or written by other "
                         f"code, so start a new run (or pass another checkpoint)")
    try:
        model.load_state_dict(ck["model"])
        load_optimizer_state(optimizer, ck["optimizer"])
        if lookahead is not None:
            if ck.get("lookahead") is None:
                raise ValueError("its args ask for --lookahead but it holds no slow weights")
            lookahead.load_state_dict(ck["lookahead"])
        epoch, step, history = int(ck["epoch"]), int(ck["step"]), list(ck["history"])
        torch.set_rng_state(ck["rng"]["cpu"])
        if device.type == "cuda" and ck["rng"].get("cuda") is not None:
            torch.cuda.set_rng_state(ck["rng"]["cuda"], device)
    except (RuntimeError, ValueError, KeyError, TypeError, AttributeError, IndexError) as e:
        # Whatever else is inconsistent in it (optimizer groups, Lookahead, RNG, counters):
        # the same kind of error, with the loader's own words for the detail.
        raise UsageError(f"{where} is not a consistent training state for the {model_args} "
                         f"its own args name: {type(e).__name__}: {e}") from e
    return epoch, step, history


def train(args, data=None, log=print):
    """Train per ``args`` (from :func:`parse_args`); returns the summary dict.

    ``data`` may be a :class:`DeviceData` already on the device (the benchmark reuses one).
    """
    t_wall = time.perf_counter()
    rank, world, device = setup_distributed(args)
    args.device_type, args.world, is_main = device.type, world, rank == 0
    if args.batch_size % world:
        raise UsageError(f"--batch-size {args.batch_size} must be divisible by the number of "
                         f"processes ({world}): it is the global batch, split evenly over ranks")
    if args.cuda_graph:
        why = ("it needs a CUDA device" if device.type != "cuda" else
               "it is for one process (DDP's collectives are not captured here)" if world > 1
               else "torch.compile makes its own graphs" if args.compile else None)
        if why:
            raise UsageError(f"--cuda-graph: {why}; drop the flag to train eagerly")
    if args.precision == "auto":
        args.precision = "bf16" if device.type == "cuda" else "fp32"
    if args.channels_last is None:
        args.channels_last = device.type == "cuda"
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    out = Path(args.out)
    if is_main:
        out.mkdir(parents=True, exist_ok=True)

    if data is None:
        data = DeviceData(load_arrays(args), args.val_size, device)
    steps_per_epoch = len(data.x_train) // args.batch_size
    if steps_per_epoch == 0:
        raise UsageError(f"--batch-size {args.batch_size} exceeds the {len(data.x_train)} "
                         f"training images; use a smaller batch")
    total_steps = steps_per_epoch * args.epochs

    torch.manual_seed(args.seed)
    model = build_model(args.model, data.num_classes, args.width).to(device)
    if isinstance(model, FastNet):
        varying = model.init_whitening(data.normalise(data.x_train[:5000]))
        if varying < 12 and device.type == "cpu" and args.precision == "bf16":
            warnings.warn(
                f"bf16 on CPU with images whose 2x2 patches vary in only {varying} of 12 "
                f"directions (grey images stored as 3 channels, like padded Fashion-MNIST): the "
                f"whitening stem's other filters give near-constant channels, and on CPU in "
                f"bf16 a full Fashion-MNIST run blew up at its first step and stayed at chance. "
                f"If the loss does not fall, use --precision fp32 (the CPU default).",
                stacklevel=2)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(model, args)
    lookahead = Lookahead(model) if args.lookahead else None
    start_epoch, step, history, profile = 0, 0, [], None
    if args.resume_state is not None:
        start_epoch, step, history = restore_checkpoint(
            args.resume_state, getattr(args, "resume", None), model, optimizer, lookahead,
            device, args)
        args.resume_state = None

    train_model = model
    if world > 1:
        train_model = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    if args.compile:
        train_model = torch.compile(train_model)
    step_fn = TrainStep(train_model, optimizer, data, args)
    if args.warmup_steps > 0 or args.cuda_graph:  # a capture needs eager steps before it
        warm_up(model, step_fn, optimizer, lookahead, data, args, rank, world,
                args.warmup_steps)

    stop = min(args.epochs, args.stop_after or args.epochs)
    bar = tqdm(total=(stop - start_epoch) * steps_per_epoch, unit="step", dynamic_ncols=True,
               disable=not is_main or not args.progress, leave=False)
    train_time = sum(r["epoch_time_s"] for r in history)
    images_seen = sum(r["images"] for r in history)
    for epoch in range(start_epoch, stop):
        profiling = is_main and args.profile_epoch == epoch + 1
        sync(device)
        with profiler(device) if profiling else nullcontext() as prof:
            t0 = time.perf_counter()
            step, lr, loss, acc = train_epoch(model, step_fn, optimizer, lookahead, data,
                                              epoch, step, total_steps, args, rank, world, bar)
            dt = time.perf_counter() - t0  # train_epoch ends with the device synchronised
        if not math.isfinite(loss):
            bar.close()
            # Raised before this epoch's checkpoint is written, so the last one kept is the
            # previous epoch's, with finite weights.
            kept = (f"{out / 'checkpoint.pt'} still holds epoch {epoch}" if epoch and
                    args.checkpoint else "no checkpoint of this run was written")
            fp32 = (" or use --precision fp32 (bf16 on CPU can blow up on grey images, see "
                    "FastNet.init_whitening)" if args.precision == "bf16" and
                    device.type == "cpu" else "")
            raise TrainingDivergedError(
                f"train loss is {loss} in epoch {epoch + 1} of {args.epochs} (lr {lr:.4g} at "
                f"its end): training diverged and stopped; {kept}. Lower --lr (now "
                f"{args.lr:g}){fp32}.")
        if profiling:
            path = out / f"profile_epoch{epoch + 1}.txt"
            profile = write_profile(prof, path, dt, device)
            busy = (f", {profile['device_kernel_s']:.3f} s of it in GPU kernels "
                    f"({profile['device_kernel_s'] / dt:.0%})" if device.type == "cuda" else "")
            bar.write(f"profiled epoch {epoch + 1}: {dt:.3f} s under the profiler{busy}, "
                      f"{profile['kernel_launches']} kernels, {profile['host_ops']} aten ops; "
                      f"table in {path}", file=sys.stdout)
        n_ep = steps_per_epoch * args.batch_size
        train_time += dt
        images_seen += n_ep
        val_loss, val_acc = evaluate(model, data, data.x_val, data.y_val, args, tta=0)
        row = dict(epoch=epoch + 1, lr=round(lr, 6), train_loss=loss, train_acc=acc,
                   val_loss=val_loss, val_acc=val_acc, epoch_time_s=dt, images=n_ep,
                   images_per_s=n_ep / dt)
        history.append(row)
        if is_main:
            val = f"  val acc {val_acc:.4f}" if len(data.x_val) else ""
            bar.set_postfix(loss=f"{loss:.3f}", acc=f"{acc:.3f}")
            bar.write(f"epoch {epoch + 1:3d}/{args.epochs}  lr {lr:.4f}  train loss {loss:.4f}  "
                      f"train acc {acc:.4f}{val}  {dt:.2f} s  {n_ep / dt:,.0f} img/s",
                      file=sys.stdout)
            write_metrics(out / "metrics.csv", history)
            if args.checkpoint:
                save_checkpoint(out / "checkpoint.pt", model, optimizer, lookahead, epoch + 1,
                                step, history, args, device)
    bar.close()
    if lookahead is not None and stop == args.epochs:
        lookahead.finish(step, total_steps)

    summary = dict(dataset=args.dataset, model=args.model, epochs_done=stop, epochs=args.epochs,
                   profile=profile,
                   train_time_s=train_time, images_per_s=images_seen / max(train_time, 1e-12),
                   history=history, device=str(device), world_size=world)
    if world > 1:
        digest = torch.tensor(list(bytes.fromhex(weights_digest(model))), dtype=torch.uint8,
                              device=device)
        gathered = [torch.empty_like(digest) for _ in range(world)]
        dist.all_gather(gathered, digest)
        summary["replica_digests"] = [bytes(g.cpu().tolist()).hex() for g in gathered]
        summary["replicas_in_sync"] = len(set(summary["replica_digests"])) == 1
    if stop == args.epochs:
        tta = dict(tta=args.tta, centre_weight=args.tta_centre_weight)
        summary["val_loss"], summary["val_acc"] = evaluate(model, data, data.x_val, data.y_val,
                                                           args, **tta)
        summary["test_loss"], summary["test_acc"] = evaluate(model, data, data.x_test,
                                                             data.y_test, args, **tta)
        summary["test_acc_no_tta"] = evaluate(model, data, data.x_test, data.y_test, args)[1]
    summary["wall_time_s"] = time.perf_counter() - t_wall
    if is_main:
        atomic_save(model.state_dict(), out / "model.pt")
        # NaN and Infinity are not JSON: metrics of nothing are None already, and a loss that
        # overflowed is written as null too rather than losing the summary to allow_nan=False.
        atomic_write_text(out / "summary.json", json.dumps(json_safe(summary), indent=1, allow_nan=False))
        if stop < args.epochs:
            log(f"stopped after epoch {stop} of {args.epochs} (--stop-after); continue with "
                f"--resume {out / 'checkpoint.pt'}")
        else:
            val = f"val {summary['val_acc']:.2%}, " if len(data.x_val) else ""
            log(f"final: test accuracy {summary['test_acc']:.2%} (TTA level {args.tta}; "
                f"{summary['test_acc_no_tta']:.2%} without), {val}"
                f"train time {train_time:.2f} s ({summary['images_per_s']:,.0f} images/s), "
                f"wall time {summary['wall_time_s']:.1f} s")
    if world > 1 and not summary["replicas_in_sync"]:
        raise RuntimeError(f"DDP replicas diverged: weight digests {summary['replica_digests']}")
    summary["network"] = model
    return summary
