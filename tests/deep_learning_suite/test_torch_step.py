"""CPU tests of the trainer's step (deep_learning_suite.torch_step).

A CUDA graph cannot be captured without CUDA; what the capture relies on (static buffers,
learning rates read from device tensors, state put back in place) runs eagerly here and must
train exactly as the plain eager step does.
"""

from contextlib import contextmanager, nullcontext

import pytest
import torch
from tqdm import tqdm

from deep_learning_suite import pytorch_cifar10 as pc
from deep_learning_suite import torch_data, torch_models, torch_optim, torch_step, torch_train

from .test_pytorch_cifar10 import TINY


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def setup(model_name="fastnet", extra=()):
    args = pc.parse_args(TINY + ["--model", model_name, "--epochs", "2"] + list(extra))
    args.device_type, args.world, args.precision, args.channels_last = "cpu", 1, "fp32", False
    data = torch_data.DeviceData(torch_data.load_arrays(args), args.val_size, torch.device("cpu"))
    torch.manual_seed(args.seed)
    model = torch_models.build_model(model_name, data.num_classes, args.width)
    if isinstance(model, torch_models.FastNet):
        model.init_whitening(data.normalise(data.x_train))
    optimizer = torch_optim.make_optimizer(model, args)
    return args, data, model, optimizer


class FakeStream:
    def __init__(self, device=None):
        pass

    def wait_stream(self, other):
        pass


@pytest.fixture
def capture_without_cuda(monkeypatch):
    """Let warm_up take its CUDA-graph branch on CPU: streams do nothing, and "capturing"
    sets up the static buffers and device lrs, everything but the graph. Returns the batch
    sizes captured."""
    monkeypatch.setattr(torch.cuda, "Stream", FakeStream)
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: FakeStream())
    monkeypatch.setattr(torch.cuda, "stream", lambda stream: nullcontext())
    captured = []

    def capture(self, batch):
        captured.append(batch)
        self.use_static_buffers(batch)

    monkeypatch.setattr(torch_step.TrainStep, "capture", capture)
    return captured


def train_two_epochs(graph, model_name="fastnet", extra=()):
    """Two epochs through train_epoch after train's warm-up, with or without the capture."""
    args, data, model, optimizer = setup(model_name, extra)
    args.cuda_graph = graph
    lookahead = torch_optim.Lookahead(model) if args.lookahead else None
    step_fn = torch_step.TrainStep(model, optimizer, data, args)
    torch_train.warm_up(model, step_fn, optimizer, lookahead, data, args, 0, 1, 3)
    assert step_fn.static == graph
    total = (len(data.x_train) // args.batch_size) * args.epochs
    step, losses = 0, []
    for epoch in range(args.epochs):
        step, _, loss, _ = torch_train.train_epoch(model, step_fn, optimizer, lookahead, data,
                                                   epoch, step, total, args, 0, 1,
                                                   tqdm(disable=True))
        losses.append(loss)
    return model, optimizer, losses


@pytest.mark.parametrize("model_name, extra", [("fastnet", []), ("fastnet", ["--no-lookahead"]),
                                               ("fastnet", ["--momentum", "0"]),  # no buffers
                                               ("resnet18", [])])
def test_static_buffers_and_device_lrs_train_like_the_eager_step(capture_without_cuda,
                                                                 model_name, extra):
    eager, _, eager_losses = train_two_epochs(False, model_name, extra)
    static, optimizer, static_losses = train_two_epochs(True, model_name, extra)
    assert capture_without_cuda == [64]  # once, after the eager warm-up steps
    # The warm-up's steps, its "capture" and the first call after it were all undone; and the
    # schedule changes the lr at every step: a step that read a stale lr tensor would part
    # from the eager run. The fused kernel computes in float32 whether its lr comes as
    # a float or as a float32 tensor, so the two agree bit for bit.
    assert static_losses == eager_losses
    for (name, a), b in zip(eager.state_dict().items(), static.state_dict().values()):
        assert torch.equal(b, a), name
    # Outside a step, param_groups keep plain floats (logs, checkpoints).
    assert all(isinstance(g["lr"], float) for g in optimizer.param_groups)


def test_static_step_reads_the_lr_of_each_call():
    args, data, model, optimizer = setup()
    step_fn = torch_step.TrainStep(model, optimizer, data, args)
    step_fn.use_static_buffers(args.batch_size)
    xb, yb = data.x_train[:args.batch_size], data.y_train[:args.batch_size]
    step_fn(xb, yb)  # creates the momentum buffers
    before = [p.detach().clone() for p in model.parameters()]
    for g in optimizer.param_groups:
        g["lr"] = 0.0
    step_fn(xb, yb)
    for p, b in zip(model.parameters(), before):
        assert torch.equal(p, b)  # lr 0 moves nothing
    for g in optimizer.param_groups:
        g["lr"] = 0.1
    step_fn(xb, yb)
    assert any(not torch.equal(p, b) for p, b in zip(model.parameters(), before))
    assert torch.equal(step_fn.x, xb) and torch.equal(step_fn.y, yb)


def test_restore_puts_state_back_into_the_same_tensors():
    args, data, model, optimizer = setup()
    step_fn = torch_step.TrainStep(model, optimizer, data, args)
    snap = torch_step.snapshot(model, optimizer)
    xb, yb = data.x_train[:args.batch_size], data.y_train[:args.batch_size]
    step_fn(xb, yb)
    step_fn(xb, yb)
    tensors = list(model.state_dict().values()) + [
        optimizer.state[p]["momentum_buffer"] for p in torch_step.opt_params(optimizer)]
    ptrs = [t.data_ptr() for t in tensors]
    torch_step.restore(model, optimizer, snap)
    after = list(model.state_dict().values()) + [
        optimizer.state[p]["momentum_buffer"] for p in torch_step.opt_params(optimizer)]
    assert [t.data_ptr() for t in after] == ptrs  # a captured graph still points at them
    for (name, want), got in zip(snap[0].items(), model.state_dict().values()):
        assert torch.equal(got, want), name
    # No momentum existed at the snapshot: zero is what a first step starts from.
    assert all(not optimizer.state[p]["momentum_buffer"].any()
               for p in torch_step.opt_params(optimizer))


def test_restored_zero_momentum_steps_exactly_like_a_first_step():
    args, data, model, optimizer = setup()
    step_fn = torch_step.TrainStep(model, optimizer, data, args)
    xb, yb = data.x_train[:args.batch_size], data.y_train[:args.batch_size]
    snap = torch_step.snapshot(model, optimizer)
    step_fn(xb, yb)  # a real first step: SGD creates the buffers as the gradients
    first = {k: v.clone() for k, v in model.state_dict().items()}
    torch_step.restore(model, optimizer, snap)
    step_fn(xb, yb)  # from zeroed buffers
    for k, v in model.state_dict().items():
        assert torch.equal(v, first[k]), k


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_graph_without_cuda_is_a_clear_error(capsys, tmp_path):
    assert pc.main(TINY + ["--cuda-graph", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--cuda-graph: it needs a CUDA device" in err and "drop the flag" in err


def test_autocast_has_no_weight_cache():
    # A CUDA graph cannot capture autocast's cache of bf16 weight copies.
    args = pc.parse_args(TINY + ["--precision", "bf16"])
    args.device_type = "cpu"
    ctx = torch_step.autocast(args)
    assert isinstance(ctx, torch.autocast) and ctx._cache_enabled is False


def test_a_failed_capture_says_what_to_do(monkeypatch):
    def capturing_fails(graph):
        raise RuntimeError("operation not permitted when stream is capturing")

    monkeypatch.setattr(torch.cuda, "CUDAGraph", lambda: object())
    monkeypatch.setattr(torch.cuda, "graph", capturing_fails)
    args, data, model, optimizer = setup()
    step_fn = torch_step.TrainStep(model, optimizer, data, args)
    with pytest.raises(RuntimeError, match=r"--cuda-graph: capturing the training step failed "
                                           r"\(operation not permitted.*train without"):
        step_fn.capture(args.batch_size)
    assert step_fn.graph is None
    assert all(isinstance(g["lr"], float) for g in optimizer.param_groups)


def test_the_step_is_recorded_in_training_mode(monkeypatch):
    # Warm-up ends with an evaluation, which leaves the model in eval mode; a graph recorded
    # then would replay eval-mode batch norm for the whole run.
    modes = []

    @contextmanager
    def record_eagerly(graph):
        yield  # the body runs as it would under capture, once

    monkeypatch.setattr(torch.cuda, "CUDAGraph", lambda: object())
    monkeypatch.setattr(torch.cuda, "graph", record_eagerly)
    args, data, model, optimizer = setup()
    for m in model.modules():
        m.register_forward_pre_hook(lambda mod, inp: modes.append(mod.training))
    step_fn = torch_step.TrainStep(model, optimizer, data, args)
    step_fn(data.x_train[:args.batch_size], data.y_train[:args.batch_size])
    model.eval()
    modes.clear()
    step_fn.capture(args.batch_size)
    assert modes and all(modes)
