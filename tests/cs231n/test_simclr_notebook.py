"""The SimCLR notebook's package, loss check, data and model cells (which names each
``cs231n.simclr.*`` module gives is checked with the other notebooks', in
test_notebook_imports.py). The CIFAR-10 files and the pretrained weights are stand-ins in the
course's formats: batches written as the official pickles, a state dict with the course's
``Model`` names and shapes."""

import importlib
import textwrap

import pytest

torch = pytest.importorskip("torch")

from deep_learning_suite import simclr, utils  # noqa: E402

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
    # The namespace starts empty: every name comes from the cell's own imports, as in the
    # notebook (which never defines rel_error; the course's contrastive_loss.py does).
    namespace = {}
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
    assert namespace["rel_error"] is utils.rel_error


def test_sanity_check_cells_as_the_notebook_writes_them(tmp_path, monkeypatch, capsys):
    # The loss section's check cells, as the notebook writes them: they print rel_error against
    # simclr_sanity_check.key, with rel_error and the loss functions taken only from the
    # notebook's star imports. The key file is written here from independent formulas (torch's
    # cosine similarity; the loss as a mean of -log softmax terms over the 2N rows), under the
    # course's names. (The data-augmentation cell, the fifth rel_error user, needs torchvision's
    # CIFAR10.)
    torch.manual_seed(0)
    left, right = torch.randn(4, 8, dtype=torch.float64), torch.randn(4, 8, dtype=torch.float64)
    out = torch.cat([left, right])
    sim_matrix = torch.nn.functional.cosine_similarity(out[:, None], out[None, :], dim=-1)

    def loss(tau):
        n2 = len(out)
        e = torch.exp(sim_matrix / tau) * (1 - torch.eye(n2, dtype=out.dtype))
        pos = torch.cat([torch.arange(n2 // 2, n2), torch.arange(n2 // 2)])
        return float(-torch.log(e[torch.arange(n2), pos] / e.sum(1)).mean())

    answers = {"left": left, "right": right, "sim": torch.diagonal(sim_matrix, len(left))[:, None],
               "sim_matrix": sim_matrix, "loss": {"5.0": loss(5.0), "1.0": loss(1.0)}}
    torch.save(answers, tmp_path / "simclr_sanity_check.key")
    monkeypatch.chdir(tmp_path)
    ns = _run_cells('''
        import torch
        from cs231n.simclr.data_utils import *
        from cs231n.simclr.contrastive_loss import *
        answers = torch.load('simclr_sanity_check.key')

        def test_sim(left_vec, right_vec, correct_output):
            output = sim(left_vec, right_vec).cpu().numpy()
            print("Maximum error in sim: %g" % rel_error(correct_output.numpy(), output))

        def test_loss_naive(left, right, tau, correct_output):
            naive_loss = simclr_loss_naive(left, right, tau).item()
            print("Maximum error in simclr_loss_naive: %g" % rel_error(correct_output, naive_loss))

        def test_sim_positive_pairs(left, right, correct_output):
            sim_pair = sim_positive_pairs(left, right).cpu().numpy()
            print("Maximum error in sim_positive_pairs: %g" % rel_error(correct_output.numpy(), sim_pair))

        def test_sim_matrix(left, right, correct_output):
            out = torch.cat([left, right], dim=0)
            sim_matrix = compute_sim_matrix(out).cpu()
            assert torch.isclose(sim_matrix, correct_output).all(), \
                "correct: {}. got: {}".format(correct_output, sim_matrix)
            print("Test passed!")

        def test_loss_vectorized(left, right, tau, correct_output):
            vec_loss = simclr_loss_vectorized(left, right, tau, device=left.device).item()
            print("Maximum error in loss_vectorized: %g" % rel_error(correct_output, vec_loss))

        test_sim(answers['left'][0], answers['right'][0], answers['sim'][0])
        test_sim(answers['left'][1], answers['right'][1], answers['sim'][1])
        test_loss_naive(answers['left'], answers['right'], 5.0, answers['loss']['5.0'])
        test_loss_naive(answers['left'], answers['right'], 1.0, answers['loss']['1.0'])
        test_sim_positive_pairs(answers['left'], answers['right'], answers['sim'])
        test_sim_matrix(answers['left'], answers['right'], answers['sim_matrix'])
        test_loss_vectorized(answers['left'], answers['right'], 5.0, answers['loss']['5.0'])
        test_loss_vectorized(answers['left'], answers['right'], 1.0, answers['loss']['1.0'])
    ''', {})
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == (
        ["Maximum error in sim"] * 2 + ["Maximum error in simclr_loss_naive"] * 2
        + ["Maximum error in sim_positive_pairs", "Test passed!"] + ["Maximum error in loss_vectorized"] * 2)
    # "The error should be less than 1e-07", as each cell says.
    errors = [float(line.split(": ")[1]) for line in lines if line.startswith("Maximum")]
    assert max(errors) < 1e-7, lines
    assert ns["rel_error"] is utils.rel_error


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
