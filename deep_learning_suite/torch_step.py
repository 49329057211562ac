"""One training step of the PyTorch trainer, run eagerly or replayed as a CUDA graph.

An eager step of the default network is about 490 host-side aten ops (forward, backward, the
bf16 casts of autocast, the optimizer), and on an H100 the host cannot issue them as fast as
the GPU runs them: the GPU sat idle about half of each epoch (benchmarks/RESULTS.md). A CUDA
graph records the kernels of one step once and then launches all of them with one call, so
the host's cost per step no longer depends on how many ops the step has.

What the graph needs, and where this module provides it:

* fixed addresses: the batch is copied into static input buffers (:attr:`TrainStep.x`,
  :attr:`TrainStep.y`), the gradients are created inside the capture, and the weights, BN
  statistics, momentum buffers and running loss/accuracy sums are updated in place;
* values that change per step live in device tensors: each param group's learning rate is
  written into a one-element tensor before every replay (the captured fused SGD kernel reads
  it from there), while ``param_groups`` keep plain floats for logging and checkpoints;
* no host synchronisation and no fresh randomness inside the step (the epoch's augmentation
  runs before it, eagerly), and autocast without its weight-cast cache.
"""

from contextlib import contextmanager, nullcontext

import torch
import torch.nn.functional as F


def autocast(args):
    """bf16 autocast when ``args.precision`` is bf16. The cast cache is off: it is only a gain
    when one weight is cast twice within a region, which never happens here, and a CUDA graph
    cannot capture it."""
    if args.precision == "bf16":
        return torch.autocast(device_type=args.device_type, dtype=torch.bfloat16,
                              cache_enabled=False)
    return nullcontext()


def to_input(x, args):
    return x.contiguous(memory_format=torch.channels_last) if args.channels_last else x


class TrainStep:
    """``step(xb, yb)``: one SGD step on a uint8 batch ``xb`` (B, 3, 32, 32) with labels
    ``yb`` (B,), at the learning rates now in ``optimizer.param_groups``.

    It normalises the batch, runs forward and label-smoothed cross-entropy under ``args``'s
    precision, backward and ``optimizer.step()``, and adds the batch's summed loss and number
    of correct predictions to :attr:`loss_sum` and :attr:`correct` (on the device, so that no
    step waits for the GPU). ``train_model`` is ``model`` or its DDP / compiled wrapper.

    Eager until :meth:`capture`; after it, each call copies the batch into :attr:`x`/:attr:`y`,
    writes the learning rates into device tensors and replays the recorded graph.
    """

    def __init__(self, train_model, optimizer, data, args):
        self.train_model, self.optimizer, self.data, self.args = train_model, optimizer, data, args
        device = data.x_train.device
        self.loss_sum = torch.zeros((), device=device)
        self.correct = torch.zeros((), device=device, dtype=torch.long)
        self.graph = None
        self.static = False  # True once batches go through the static buffers
        self.x = self.y = self.lrs = None

    def reset_stats(self):
        self.loss_sum.zero_()
        self.correct.zero_()

    def _run(self, xb, yb):
        args = self.args
        with autocast(args):
            logits = self.train_model(to_input(self.data.normalise(xb), args)).float()
        loss = F.cross_entropy(logits, yb, label_smoothing=args.label_smoothing)
        # set_to_none: backward writes fresh gradients instead of adding to zeroed ones, which
        # saves a zeroing kernel per parameter.
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.loss_sum += loss.detach() * len(yb)
        self.correct += (logits.detach().argmax(1) == yb).sum()

    def __call__(self, xb, yb):
        if not self.static:
            self._run(xb, yb)
            return
        self.x.copy_(xb)
        self.y.copy_(yb)
        for t, group in zip(self.lrs, self.optimizer.param_groups):
            t.fill_(group["lr"])
        if self.graph is not None:
            self.graph.replay()
        else:
            with self._tensor_lrs():
                self._run(self.x, self.y)

    @contextmanager
    def _tensor_lrs(self):
        """Let the optimizer read each group's lr from :attr:`lrs` for the duration."""
        groups = self.optimizer.param_groups
        floats = [g["lr"] for g in groups]
        for g, t in zip(groups, self.lrs):
            g["lr"] = t
        try:
            yield
        finally:
            for g, v in zip(groups, floats):
                g["lr"] = v

    def use_static_buffers(self, batch):
        """Route batches of ``batch`` images through fixed buffers and device-tensor learning
        rates, still eagerly: everything :meth:`capture` relies on except the graph itself
        (which is how the CPU tests check it)."""
        device = self.data.x_train.device
        self.x = torch.zeros((batch,) + tuple(self.data.x_train.shape[1:]),
                             dtype=self.data.x_train.dtype, device=device)
        self.y = torch.zeros(batch, dtype=self.data.y_train.dtype, device=device)
        self.lrs = [torch.zeros((), device=device) for _ in self.optimizer.param_groups]
        self.static = True

    def capture(self, batch):
        """Record the step as a CUDA graph on static buffers of ``batch`` images.

        Call it after a few eager steps (cuDNN picks its algorithms then, and the optimizer
        creates its momentum buffers, which the graph updates in place from then on) taken on
        a side stream, as torch.cuda.graphs asks. Capturing runs nothing: the weights are as
        they were.
        """
        self.use_static_buffers(batch)
        # The graph keeps the kernels of the mode it was recorded in, whatever the mode is
        # later: recorded in eval mode (warm-up ends with an evaluation), every replay would
        # normalise with the running statistics and never update them.
        self.train_model.train()
        # No gradients when the capture starts (the documented pattern): the captured backward
        # then creates them in the graph's own memory, and no block from before is freed
        # while capturing.
        self.optimizer.zero_grad(set_to_none=True)
        graph = torch.cuda.CUDAGraph()
        try:
            with self._tensor_lrs(), torch.cuda.graph(graph):
                self._run(self.x, self.y)
        except RuntimeError as e:
            raise RuntimeError(f"--cuda-graph: capturing the training step failed ({e}); "
                               f"train without --cuda-graph") from e
        self.graph = graph


@torch.no_grad()
def snapshot(model, optimizer):
    """Copies of the weights, buffers and SGD momentum buffers, for :func:`restore`."""
    momentum = [optimizer.state.get(p, {}).get("momentum_buffer") for p in opt_params(optimizer)]
    return ({k: v.clone() for k, v in model.state_dict().items()},
            [None if m is None else m.clone() for m in momentum])


@torch.no_grad()
def restore(model, optimizer, snap):
    """Put back what :func:`snapshot` saved, in place: a captured graph holds the addresses
    of these tensors, so none may be replaced. A momentum buffer that did not exist then is
    zeroed; SGD's next step makes it ``0 * momentum + grad``, exactly the ``grad`` a first
    step would set."""
    weights, momentum = snap
    model.load_state_dict(weights)  # copies into the existing parameters and buffers
    for p, saved in zip(opt_params(optimizer), momentum):
        buf = optimizer.state.get(p, {}).get("momentum_buffer")
        if buf is None:
            continue
        if saved is None:
            buf.zero_()
        else:
            buf.copy_(saved)


def opt_params(optimizer):
    return [p for g in optimizer.param_groups for p in g["params"]]
