"""The StyleTransfer notebook's loss cells, through ``cs231n.style_transfer_pytorch`` (which names it
gives is checked with the other notebooks', in test_notebook_imports.py)."""

import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from deep_learning_suite import utils  # noqa: E402


def test_notebook_gram_matrix_and_tv_loss_cells():
    # The notebook's checks compare against saved answers; here the answers are computed in NumPy.
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 16, 6, 7))
    img = rng.standard_normal((1, 3, 9, 8))
    ns = {"np": np, "torch": torch, "x_np": x, "img_np": img}
    exec(textwrap.dedent("""
        from cs231n.style_transfer_pytorch import *

        gram = gram_matrix(torch.tensor(x_np), normalize=True).numpy()
        tv = tv_loss(torch.tensor(img_np), 0.25).item()
        feats = [torch.tensor(x_np)]
        s = style_loss(feats, [0], [gram_matrix(torch.zeros(1, 16, 6, 7))], [2.0]).item()
        c = content_loss(3.0, torch.tensor(x_np), torch.zeros(1, 16, 6, 7)).item()
    """), ns)
    f = x[0].reshape(16, -1)
    answer = f @ f.T / (16 * 6 * 7)
    assert utils.rel_error(ns["gram"][0], answer) < 1e-12
    tv = 0.25 * (np.sum(np.diff(img, axis=2) ** 2) + np.sum(np.diff(img, axis=3) ** 2))
    assert utils.rel_error(ns["tv"], tv) < 1e-12
    assert utils.rel_error(ns["s"], 2.0 * np.sum(answer ** 2)) < 1e-12
    assert utils.rel_error(ns["c"], 3.0 * np.sum(x ** 2)) < 1e-12
