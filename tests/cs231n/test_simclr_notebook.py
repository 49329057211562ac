"""The SimCLR notebook's package, loss check, data and model cells (which names each
``cs231n.simclr.*`` module gives is checked with the other notebooks', in
test_notebook_imports.py). The CIFAR-10 files and the pretrained weights are stand-ins in the
course's formats: batches written as the official pickles, a state dict with the course's
``Model`` names and shapes."""

import importlib
import textwrap

import pytest

torch = pytest.importorskip("torch")

from deep_learning_suite import simclr  # noqa: E402
from deep_learning_suite.utils import rel_error  # noqa: E402

from ..deep_learning_suite.test_data import write_cifar  # noqa: E402
from ..deep_learning_suite.test_simclr import (  # noqa: E402
    course_state_dict,
    course_state_dict_shapes,
)


@pytest.fixture(autouse=True)
def one_thread(torch_one_thread):
    yield


def test_package_is_only_a_docstring():
    package = importlib.import_module("cs231n.simclr")
    assert package.__doc__
    assert not [n for n in vars(package) if not n.startswith("_")
                and n not in ("contrastive_loss", "data_utils", "utils", "model")]


def test_notebook_imports_and_loss_check_cell():
    # The notebook's imports, then its naive-versus-vectorized comparison on random inputs.
    namespace = {"rel_error": rel_error}
    state = torch.random.get_rng_state()
    try:
        exec(textwrap.dedent("""
            import torch
            from cs231n.simclr.contrastive_loss import *
            from cs231n.simclr.data_utils import *
            from cs231n.simclr.utils import *
            from cs231n.simclr.model import Model

            torch.manual_seed(231)
            errors = []
            for N, D, tau in [(2, 3, 0.5), (4, 16, 0.1), (8, 128, 1.0)]:
                out_left = torch.randn(N, D, dtype=torch.float64)
                out_right = torch.randn(N, D, dtype=torch.float64)
                naive = simclr_loss_naive(out_left, out_right, tau)
                vectorized = simclr_loss_vectorized(out_left, out_right, tau, device='cpu')
                errors.append(rel_error(naive.item(), vectorized.item()))
            sim_err = rel_error(sim(out_left[0], out_right[0]).item(),
                                sim_positive_pairs(out_left, out_right)[0, 0].item())
            view = compute_train_transform()(torch.randint(0, 256, (32, 32, 3), dtype=torch.uint8).numpy())
        """), namespace)
    finally:
        torch.random.set_rng_state(state)
    assert max(namespace["errors"]) < 1e-10 and namespace["sim_err"] < 1e-12
    assert namespace["view"].shape == (3, 32, 32)
    assert namespace["Model"] is simclr.Model and namespace["test"] is simclr.test


def _run_cells(source, namespace):
    state = torch.random.get_rng_state()
    try:
        exec(textwrap.dedent(source), namespace)
    finally:
        torch.random.set_rng_state(state)
    return namespace


def test_pretraining_cells_with_the_course_data_and_model(tmp_path, monkeypatch):
    # The notebook reads CIFAR-10 from root='data' under its working folder.
    write_cifar(tmp_path / "data" / "cifar-10-batches-py", n=4)
    monkeypatch.chdir(tmp_path)
    ns = _run_cells("""
        import numpy as np
        import torch
        import torch.optim as optim
        from torch.utils.data import DataLoader
        from cs231n.simclr.data_utils import *
        from cs231n.simclr.utils import *
        from cs231n.simclr.model import Model

        feature_dim, temperature, k, batch_size, epochs, percentage = 128, 0.5, 200, 4, 1, 0.2
        device = 'cpu'
        train_transform = compute_train_transform()
        train_data = CIFAR10Pair(root='data', train=True, transform=train_transform,
                                 download=True)
        train_data = torch.utils.data.Subset(
            train_data, list(np.arange(int(len(train_data) * percentage))))
        train_loader = DataLoader(train_data, batch_size=batch_size, shuffle=True, num_workers=0,
                                  drop_last=True)
        test_transform = compute_test_transform()
        memory_data = CIFAR10Pair(root='data', train=True, transform=test_transform, download=True)
        memory_loader = DataLoader(memory_data, batch_size=batch_size, shuffle=False)
        test_data = CIFAR10Pair(root='data', train=False, transform=test_transform, download=True)
        test_loader = DataLoader(test_data, batch_size=batch_size, shuffle=False)

        torch.manual_seed(231)
        model = Model(feature_dim).to(device)
        optimizer = optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-6)
        c = len(memory_data.classes)
        for epoch in range(1, epochs + 1):
            train_loss = train(model, train_loader, optimizer, epoch, epochs, batch_size=batch_size,
                               temperature=temperature, device=device)
            test_acc_1, test_acc_5 = test(model, memory_loader, test_loader, epoch, epochs, c,
                                          k=k, temperature=temperature, device=device)
    """, {})
    assert len(ns["train_data"]) == 4 and len(ns["memory_data"]) == 20 and ns["c"] == 10
    assert 0 < ns["train_loss"] < 10
    assert 0 <= ns["test_acc_1"] <= ns["test_acc_5"] <= 100
    got = [(key, tuple(v.shape)) for key, v in ns["model"].state_dict().items()]
    assert got == course_state_dict_shapes(128)


def test_classifier_cell_loads_course_weights_and_trains_the_linear_layer(tmp_path):
    # The pretrained file holds Model(128)'s state dict: f.* and g.* keys.
    pretrained_path = tmp_path / "pretrained_simclr_model.pth"
    torch.save(course_state_dict(128), pretrained_path)
    ns = _run_cells("""
        import torch
        import torch.nn as nn
        import torch.optim as optim
        from cs231n.simclr.utils import *
        from cs231n.simclr.model import Model

        class Classifier(nn.Module):
            def __init__(self, num_class):
                super(Classifier, self).__init__()
                # Encoder.
                self.f = Model().f
                # Classifier.
                self.fc = nn.Linear(2048, num_class, bias=True)

            def forward(self, x):
                x = self.f(x)
                feature = torch.flatten(x, start_dim=1)
                out = self.fc(feature)
                return out

        device = 'cpu'
        torch.manual_seed(0)
        model = Classifier(num_class=10).to(device)
        for param in model.f.parameters():
            param.requires_grad = False
        result = model.load_state_dict(torch.load(pretrained_path, map_location='cpu'),
                                       strict=False)
        optimizer = optim.Adam(model.fc.parameters(), lr=1e-3, weight_decay=1e-6)
        x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
        y = torch.tensor([0, 3, 3, 9])
        fc_before = model.fc.weight.detach().clone()
        train_loss, train_acc_1, train_acc_5 = train_val(model, [(x, y)], optimizer, 1, 1,
                                                         device=device)
    """, {"pretrained_path": str(pretrained_path)})
    model, result, sd = ns["model"], ns["result"], course_state_dict(128)
    assert sorted(result.missing_keys) == ["fc.bias", "fc.weight"]
    assert sorted(result.unexpected_keys) == sorted(k for k in sd if k.startswith("g."))
    for key, value in model.f.state_dict().items():
        if "running" not in key and "num_batches" not in key:   # train mode moves BN stats
            assert torch.equal(value, sd["f." + key]), key
    assert all(p.grad is None for p in model.f.parameters())
    assert model.fc.weight.grad is not None and not torch.equal(model.fc.weight, ns["fc_before"])
    assert ns["train_loss"] > 0 and ns["train_acc_5"] >= ns["train_acc_1"]
