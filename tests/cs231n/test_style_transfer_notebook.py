"""The StyleTransfer notebook imports from ``cs231n.style_transfer_pytorch``: those names must be
the toolkit's own objects, and the notebook's loss cells must run on them."""

import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from deep_learning_suite import style_transfer, utils  # noqa: E402

NAMES = {
    style_transfer: ["content_loss", "gram_matrix", "style_loss", "tv_loss", "extract_features",
                     "features_from_img", "style_transfer"],
    utils: ["rel_error"],
}


def test_star_import_gives_the_toolkits_own_objects_and_nothing_else():
    namespace = {}
    exec("from cs231n.style_transfer_pytorch import *", namespace)
    for home, names in NAMES.items():
        for name in names:
            assert namespace[name] is getattr(home, name), name
    assert "np" not in namespace and "torch" not in namespace and "nn" not in namespace
    assert sorted(k for k in namespace if k != "__builtins__") == sorted(sum(NAMES.values(), []))


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
