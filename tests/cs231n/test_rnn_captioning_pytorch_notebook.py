"""``RNN_Captioning_pytorch.ipynb`` (CS231n 2025, assignment 2) through the course's imports.

The cells below are the notebook's own code (its plotting left out), run in order in one
namespace, against a small COCO folder in the course's file format; the asserts hold each
check to the error the notebook says to expect.
"""

import importlib
import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from deep_learning_suite import captioning_rnn_pytorch, captioning_solver_pytorch  # noqa: E402
from deep_learning_suite import rnn_layers_pytorch  # noqa: E402
from tests._coco_files import write_coco_dir  # noqa: E402

COURSE_NAMES = {
    "cs231n.rnn_layers_pytorch": (rnn_layers_pytorch, [
        "affine_forward", "rnn_step_forward", "rnn_forward", "word_embedding_forward",
        "lstm_step_forward", "lstm_forward", "temporal_affine_forward", "temporal_softmax_loss"]),
    "cs231n.classifiers.rnn_pytorch": (captioning_rnn_pytorch, ["CaptioningRNN"]),
    "cs231n.captioning_solver_pytorch": (captioning_solver_pytorch, ["CaptioningSolverPytorch"]),
}


@pytest.mark.parametrize("module_name", sorted(COURSE_NAMES))
def test_course_modules_give_the_toolkits_own_objects(module_name):
    home, names = COURSE_NAMES[module_name]
    shim = importlib.import_module(module_name)
    namespace = {}
    exec(f"from {module_name} import *", namespace)
    for name in names:
        assert getattr(shim, name) is getattr(home, name), name
        assert namespace[name] is getattr(home, name), name
    # only the course's names, not the modules' own imports
    assert not {"np", "torch", "F", "check_int"} & set(namespace)


def test_classifier_star_import_also_brings_the_layers():
    # The course's rnn_pytorch.py does `from ..rnn_layers_pytorch import *`.
    namespace = {}
    exec("from cs231n.classifiers.rnn_pytorch import *", namespace)
    assert namespace["rnn_forward"] is rnn_layers_pytorch.rnn_forward
    assert namespace["affine_forward"] is rnn_layers_pytorch.affine_forward


class Notebook:
    """Runs cells in one namespace, as a kernel does (the fixture restores the global RNGs)."""

    def __init__(self):
        self.ns = {}

    def run(self, source):
        exec(textwrap.dedent(source), self.ns)
        return self.ns


@pytest.fixture
def notebook(tmp_path, monkeypatch, torch_one_thread):
    write_coco_dir(tmp_path / "coco_captioning")
    monkeypatch.setenv("COCO_CAPTIONING_DIR", str(tmp_path / "coco_captioning"))
    # The sampling cell shows each image from its URL; there is no network here, and the
    # notebook skips an image that cannot be fetched ("if img is None: continue").
    monkeypatch.setattr("cs231n.image_utils.image_from_url", lambda url: None)
    np_state, torch_state = np.random.get_state(), torch.get_rng_state()
    try:
        yield Notebook()
    finally:
        np.random.set_state(np_state)
        torch.set_rng_state(torch_state)


def test_notebook_cells(notebook):
    run = notebook.run
    ns = run("""
        # Setup cell.
        import time, os, json
        import numpy as np
        import torch

        from cs231n.gradient_check import eval_numerical_gradient, eval_numerical_gradient_array
        from cs231n.rnn_layers_pytorch import *
        from cs231n.captioning_solver_pytorch import CaptioningSolverPytorch
        from cs231n.classifiers.rnn_pytorch import CaptioningRNN
        from cs231n.coco_utils import load_coco_data, sample_coco_minibatch, decode_captions
        from cs231n.image_utils import image_from_url

        def rel_error(x, y):
            \"\"\" returns relative error \"\"\"
            return np.max(np.abs(x - y) / (np.maximum(1e-8, np.abs(x) + np.abs(y))))

        data = load_coco_data(pca_features=True)
        batch_size = 3
        captions, features, urls = sample_coco_minibatch(data, batch_size=batch_size)
        for i, (caption, url) in enumerate(zip(captions, urls)):
            img = image_from_url(url)
            caption_str = decode_captions(caption, data['idx_to_word'])
    """)
    assert ns["caption_str"].startswith("<START> a ")

    # Vanilla RNN: step forward ("errors on the order of e-8 or less").
    ns = run("""
        N, D, H = 3, 10, 4

        x = torch.from_numpy(np.linspace(-0.4, 0.7, num=N*D).reshape(N, D))
        prev_h = torch.from_numpy(np.linspace(-0.2, 0.5, num=N*H).reshape(N, H))
        Wx = torch.from_numpy(np.linspace(-0.1, 0.9, num=D*H).reshape(D, H))
        Wh = torch.from_numpy(np.linspace(-0.3, 0.7, num=H*H).reshape(H, H))
        b = torch.from_numpy(np.linspace(-0.2, 0.4, num=H))

        next_h = rnn_step_forward(x, prev_h, Wx, Wh, b).numpy()
        expected_next_h = np.asarray([
          [-0.58172089, -0.50182032, -0.41232771, -0.31410098],
          [ 0.66854692,  0.79562378,  0.87755553,  0.92795967],
          [ 0.97934501,  0.99144213,  0.99646691,  0.99854353]])

        next_h_error = rel_error(expected_next_h, next_h)
    """)
    assert ns["next_h_error"] < 1e-8

    # Vanilla RNN: step backward, autograd against numerical gradients ("1e-9 or less").
    ns = run("""
        from cs231n.rnn_layers_pytorch import rnn_step_forward

        np.random.seed(231)
        N, D, H = 4, 5, 6
        x = torch.from_numpy(np.random.randn(N, D))
        h = torch.from_numpy(np.random.randn(N, H))
        Wx = torch.from_numpy(np.random.randn(D, H))
        Wh = torch.from_numpy(np.random.randn(H, H))
        b = torch.from_numpy(np.random.randn(H))

        for tensor in [x, h, Wx, Wh, b]:
          tensor.requires_grad_()
        next_h = rnn_step_forward(x, h, Wx, Wh, b)

        dnext_h = torch.from_numpy(np.random.randn(*next_h.shape))
        next_h.backward(dnext_h)

        dx = x.grad.detach().numpy()
        dh = h.grad.detach().numpy()
        dWx = Wx.grad.detach().numpy()
        dWh = Wh.grad.detach().numpy()
        db = b.grad.detach().numpy()
        dnext_h = dnext_h.detach().numpy()

        x =  x.detach().numpy()
        h =  h.detach().numpy()
        Wx = Wx.detach().numpy()
        Wh = Wh.detach().numpy()
        b =  b.detach().numpy()

        def rnn_step_forward_numpy(x, h, Wx, Wh, b):
          with torch.no_grad():
            return rnn_step_forward(
                torch.from_numpy(x),
                torch.from_numpy(h),
                torch.from_numpy(Wx),
                torch.from_numpy(Wh),
                torch.from_numpy(b),
            ).numpy()

        fx = lambda x: rnn_step_forward_numpy(x, h, Wx, Wh, b)
        fh = lambda h: rnn_step_forward_numpy(x, h, Wx, Wh, b)
        fWx = lambda Wx: rnn_step_forward_numpy(x, h, Wx, Wh, b)
        fWh = lambda Wh: rnn_step_forward_numpy(x, h, Wx, Wh, b)
        fb = lambda b: rnn_step_forward_numpy(x, h, Wx, Wh, b)

        dx_num = eval_numerical_gradient_array(fx, x, dnext_h)
        dh_num = eval_numerical_gradient_array(fh, h, dnext_h)
        dWx_num = eval_numerical_gradient_array(fWx, Wx, dnext_h)
        dWh_num = eval_numerical_gradient_array(fWh, Wh, dnext_h)
        db_num = eval_numerical_gradient_array(fb, b, dnext_h)

        step_errors = [rel_error(dx_num, dx), rel_error(dh_num, dh), rel_error(dWx_num, dWx),
                       rel_error(dWh_num, dWh), rel_error(db_num, db)]
    """)
    assert max(ns["step_errors"]) < 1e-8

    # Vanilla RNN: forward ("e-7 or less").
    ns = run("""
        from cs231n.rnn_layers_pytorch import rnn_forward

        N, T, D, H = 2, 3, 4, 5

        x = torch.from_numpy(np.linspace(-0.1, 0.3, num=N*T*D).reshape(N, T, D))
        h0 = torch.from_numpy(np.linspace(-0.3, 0.1, num=N*H).reshape(N, H))
        Wx = torch.from_numpy(np.linspace(-0.2, 0.4, num=D*H).reshape(D, H))
        Wh = torch.from_numpy(np.linspace(-0.4, 0.1, num=H*H).reshape(H, H))
        b = torch.from_numpy(np.linspace(-0.7, 0.1, num=H))

        h = rnn_forward(x, h0, Wx, Wh, b).numpy()
        expected_h = np.asarray([
          [
            [-0.42070749, -0.27279261, -0.11074945,  0.05740409,  0.22236251],
            [-0.39525808, -0.22554661, -0.0409454,   0.14649412,  0.32397316],
            [-0.42305111, -0.24223728, -0.04287027,  0.15997045,  0.35014525],
          ],
          [
            [-0.55857474, -0.39065825, -0.19198182,  0.02378408,  0.23735671],
            [-0.27150199, -0.07088804,  0.13562939,  0.33099728,  0.50158768],
            [-0.51014825, -0.30524429, -0.06755202,  0.17806392,  0.40333043]]])
        h_error = rel_error(expected_h, h)
    """)
    assert ns["h_error"] < 1e-7

    # Vanilla RNN: backward ("1e-6 or less").
    ns = run("""
        np.random.seed(231)
        N, D, T, H = 2, 3, 10, 5
        x = torch.from_numpy(np.random.randn(N, T, D))
        h0 = torch.from_numpy(np.random.randn(N, H))
        Wx = torch.from_numpy(np.random.randn(D, H))
        Wh = torch.from_numpy(np.random.randn(H, H))
        b = torch.from_numpy(np.random.randn(H))

        for tensor in [x, h0, Wx, Wh, b]:
          tensor.requires_grad_()
        h = rnn_forward(x, h0, Wx, Wh, b)

        dh = torch.from_numpy(np.random.randn(*h.shape))
        h.backward(dh)

        dx = x.grad.detach().numpy()
        dh0 = h0.grad.detach().numpy()
        dWx = Wx.grad.detach().numpy()
        dWh = Wh.grad.detach().numpy()
        db = b.grad.detach().numpy()
        dh = dh.detach().numpy()

        x =  x.detach().numpy()
        h0 =  h0.detach().numpy()
        Wx = Wx.detach().numpy()
        Wh = Wh.detach().numpy()
        b =  b.detach().numpy()

        def rnn_forward_numpy(x, h0, Wx, Wh, b):
          with torch.no_grad():
            return rnn_forward(
                torch.from_numpy(x),
                torch.from_numpy(h0),
                torch.from_numpy(Wx),
                torch.from_numpy(Wh),
                torch.from_numpy(b),
            ).numpy()

        fx = lambda x: rnn_forward_numpy(x, h0, Wx, Wh, b)
        fh0 = lambda h0: rnn_forward_numpy(x, h0, Wx, Wh, b)
        fWx = lambda Wx: rnn_forward_numpy(x, h0, Wx, Wh, b)
        fWh = lambda Wh: rnn_forward_numpy(x, h0, Wx, Wh, b)
        fb = lambda b: rnn_forward_numpy(x, h0, Wx, Wh, b)

        dx_num = eval_numerical_gradient_array(fx, x, dh)
        dh0_num = eval_numerical_gradient_array(fh0, h0, dh)
        dWx_num = eval_numerical_gradient_array(fWx, Wx, dh)
        dWh_num = eval_numerical_gradient_array(fWh, Wh, dh)
        db_num = eval_numerical_gradient_array(fb, b, dh)

        sequence_errors = [rel_error(dx_num, dx), rel_error(dh0_num, dh0), rel_error(dWx_num, dWx),
                           rel_error(dWh_num, dWh), rel_error(db_num, db)]
    """)
    assert max(ns["sequence_errors"]) < 1e-6

    # Word embedding: forward ("e-8 or less") and backward ("1e-11 or less").
    ns = run("""
        N, T, V, D = 2, 4, 5, 3

        x = torch.from_numpy(np.asarray([[0, 3, 1, 2], [2, 1, 0, 3]]))
        W = torch.from_numpy(np.linspace(0, 1, num=V*D).reshape(V, D))

        out = word_embedding_forward(x, W).numpy()
        expected_out = np.asarray([
         [[ 0.,          0.07142857,  0.14285714],
          [ 0.64285714,  0.71428571,  0.78571429],
          [ 0.21428571,  0.28571429,  0.35714286],
          [ 0.42857143,  0.5,         0.57142857]],
         [[ 0.42857143,  0.5,         0.57142857],
          [ 0.21428571,  0.28571429,  0.35714286],
          [ 0.,          0.07142857,  0.14285714],
          [ 0.64285714,  0.71428571,  0.78571429]]])

        out_error = rel_error(expected_out, out)

        np.random.seed(231)

        N, T, V, D = 50, 3, 5, 6
        x = torch.from_numpy(np.random.randint(V, size=(N, T)))
        W = torch.from_numpy(np.random.randn(V, D))
        W.requires_grad_()

        out = word_embedding_forward(x, W)
        dout = torch.from_numpy(np.random.randn(*out.shape))
        out.backward(dout)

        dW = W.grad.detach().numpy()
        x = x.detach().numpy()
        W = W.detach().numpy()
        dout = dout.detach().numpy()

        def word_embedding_forward_numpy(x, W):
          return word_embedding_forward(
              torch.from_numpy(x),
              torch.from_numpy(W),
          ).numpy()

        f = lambda W: word_embedding_forward_numpy(x, W)
        dW_num = eval_numerical_gradient_array(f, W, dout)

        dW_error = rel_error(dW, dW_num)
    """)
    assert ns["out_error"] < 2e-8 and ns["dW_error"] < 1e-11

    # Temporal affine layer ("e-9 or less").
    ns = run("""
        np.random.seed(231)

        N, T, D, M = 2, 3, 4, 5
        x = torch.from_numpy(np.random.randn(N, T, D))
        w = torch.from_numpy(np.random.randn(D, M))
        b = torch.from_numpy(np.random.randn(M))

        for tensor in [x, w, b]:
          tensor.requires_grad_()
        out = temporal_affine_forward(x, w, b)
        dout = torch.from_numpy(np.random.randn(*out.shape))
        out.backward(dout)

        dx = x.grad.detach().numpy()
        dw = w.grad.detach().numpy()
        db = b.grad.detach().numpy()

        x = x.detach().numpy()
        w = w.detach().numpy()
        b = b.detach().numpy()
        dout = dout.detach().numpy()

        def temporal_affine_forward_numpy(x, w, b):
          return temporal_affine_forward(
              torch.from_numpy(x),
              torch.from_numpy(w),
              torch.from_numpy(b),
          ).numpy()

        fx = lambda x: temporal_affine_forward_numpy(x, w, b)
        fw = lambda w: temporal_affine_forward_numpy(x, w, b)
        fb = lambda b: temporal_affine_forward_numpy(x, w, b)

        dx_num = eval_numerical_gradient_array(fx, x, dout)
        dw_num = eval_numerical_gradient_array(fw, w, dout)
        db_num = eval_numerical_gradient_array(fb, b, dout)

        affine_errors = [rel_error(dx_num, dx), rel_error(dw_num, dw), rel_error(db_num, db)]
    """)
    assert max(ns["affine_errors"]) < 1e-9

    # Temporal softmax loss: sanity check (about 2.3, 23, 2.2-2.4) and gradient ("e-7 or less").
    ns = run("""
        from cs231n.rnn_layers_pytorch import temporal_softmax_loss

        N, T, V = 100, 1, 10

        losses = []
        def check_loss(N, T, V, p):
            x = 0.001 * torch.from_numpy(np.random.randn(N, T, V))
            y = torch.from_numpy(np.random.randint(V, size=(N, T)))
            mask = torch.from_numpy(np.random.rand(N, T)) <= p
            losses.append(temporal_softmax_loss(x, y, mask).item())

        check_loss(100, 1, 10, 1.0)   # Should be about 2.3
        check_loss(100, 10, 10, 1.0)  # Should be about 23
        check_loss(5000, 10, 10, 0.1) # Should be within 2.2-2.4

        np.random.seed(231231)
        N, T, V = 7, 8, 9

        x = torch.from_numpy(np.random.randn(N, T, V))
        y = torch.from_numpy(np.random.randint(V, size=(N, T)))
        mask = torch.from_numpy(np.random.rand(N, T) > 0.5)

        x.requires_grad_()
        loss = temporal_softmax_loss(x, y, mask, verbose=False)
        loss.backward()
        dx = x.grad.detach().numpy()
        x = x.detach().numpy()
        dx_num = eval_numerical_gradient(
            lambda x: temporal_softmax_loss(torch.from_numpy(x), y, mask), x, verbose=False)

        softmax_dx_error = rel_error(dx, dx_num)
    """)
    low, ten, masked = ns["losses"]
    assert 2.2 < low < 2.4 and 22 < ten < 24 and 2.2 < masked < 2.4
    assert ns["softmax_dx_error"] < 1e-7

    # RNN for image captioning: the model's loss ("e-10 or less").
    ns = run("""
        N, D, W, H = 10, 20, 30, 40
        word_to_idx = {'<NULL>': 0, 'cat': 2, 'dog': 3}
        V = len(word_to_idx)
        T = 13

        model = CaptioningRNN(
            word_to_idx,
            input_dim=D,
            wordvec_dim=W,
            hidden_dim=H,
            cell_type='rnn',
            dtype=torch.float64
        )

        for k, v in model.params.items():
            model.params[k] = torch.from_numpy(
                np.linspace(-1.4, 1.3, num=v.numel()).reshape(*v.shape))

        features = torch.from_numpy(np.linspace(-1.5, 0.3, num=(N * D)).reshape(N, D))
        captions = torch.from_numpy((np.arange(N * T) % V).reshape(N, T))

        loss = model.loss(features, captions).item()
        expected_loss = 9.83235591003
        difference = abs(loss - expected_loss)
    """)
    assert ns["difference"] < 1e-10

    # The model's gradient check ("around the order of e-6 or less").
    ns = run("""
        np.random.seed(231)
        torch.manual_seed(231)

        batch_size = 2
        timesteps = 3
        input_dim = 4
        wordvec_dim = 5
        hidden_dim = 6
        word_to_idx = {'<NULL>': 0, 'cat': 2, 'dog': 3}
        vocab_size = len(word_to_idx)

        captions = torch.from_numpy(np.random.randint(vocab_size, size=(batch_size, timesteps)))
        features = torch.from_numpy(np.random.randn(batch_size, input_dim))

        model = CaptioningRNN(
            word_to_idx,
            input_dim=input_dim,
            wordvec_dim=wordvec_dim,
            hidden_dim=hidden_dim,
            cell_type='rnn',
            dtype=torch.float64,
        )

        for k, v in model.params.items():
          v.requires_grad_()
        loss = model.loss(features, captions)
        loss.backward()
        grads = {k: v.grad.detach().numpy() for k, v in model.params.items()}
        for k, v in model.params.items():
          v.requires_grad_(False)

        model_errors = {}
        for param_name in sorted(grads.keys()):
            def fn(val):
              model.params[param_name] = torch.from_numpy(val)
              ret = model.loss(features, captions).numpy()
              return ret

            param_grad_num = eval_numerical_gradient(
                fn, model.params[param_name].numpy(), verbose=False, h=1e-6)

            e = rel_error(param_grad_num, grads[param_name])
            model_errors[param_name] = e
    """)
    assert set(ns["model_errors"]) == {"W_embed", "W_proj", "b_proj", "Wx", "Wh", "b", "W_vocab",
                                       "b_vocab"}
    assert max(ns["model_errors"].values()) < 1e-5, ns["model_errors"]

    # Overfit on small data ("a final loss of less than 0.1"), then sample on both splits.
    ns = run("""
        np.random.seed(231)
        torch.manual_seed(231)

        small_data = load_coco_data(max_train=50)

        small_rnn_model = CaptioningRNN(
            cell_type='rnn',
            word_to_idx=data['word_to_idx'],
            input_dim=data['train_features'].shape[1],
            hidden_dim=512,
            wordvec_dim=256,
        )

        small_rnn_solver = CaptioningSolverPytorch(
            small_rnn_model, small_data,
            num_epochs=50,
            batch_size=25,
            learning_rate=5e-3,
            verbose=True, print_every=10,
        )

        small_rnn_solver.train()

        final_loss = small_rnn_solver.loss_history[-1]

        shown = []
        for split in ['train', 'val']:
            minibatch = sample_coco_minibatch(small_data, split=split, batch_size=2)
            gt_captions, features, urls = minibatch
            gt_captions = decode_captions(gt_captions, data['idx_to_word'])

            sample_captions = small_rnn_model.sample(torch.from_numpy(features)).numpy()
            sample_captions = decode_captions(sample_captions, data['idx_to_word'])

            for gt_caption, sample_caption, url in zip(gt_captions, sample_captions, urls):
                shown.append((split, gt_caption, sample_caption))
                img = image_from_url(url)
                # Skip missing URLs.
                if img is None: continue
    """)
    assert ns["final_loss"] < 0.1
    train = [(gt, sample) for split, gt, sample in ns["shown"] if split == "train"]
    assert len(train) == 2 and all(gt == "<START> " + sample for gt, sample in train)


def test_lstm_cells_through_the_pytorch_layers(notebook):
    # The LSTM checks of the NumPy edition's notebook (the PyTorch file keeps lstm_step_forward
    # and lstm_forward, and the model its 'lstm' cell), run with tensors.
    ns = notebook.run("""
        import numpy as np
        import torch
        from cs231n.rnn_layers_pytorch import *
        from cs231n.classifiers.rnn_pytorch import CaptioningRNN

        def rel_error(x, y):
            return np.max(np.abs(x - y) / (np.maximum(1e-8, np.abs(x) + np.abs(y))))

        N, D, H = 3, 4, 5
        x = torch.from_numpy(np.linspace(-0.4, 1.2, num=N*D).reshape(N, D))
        prev_h = torch.from_numpy(np.linspace(-0.3, 0.7, num=N*H).reshape(N, H))
        prev_c = torch.from_numpy(np.linspace(-0.4, 0.9, num=N*H).reshape(N, H))
        Wx = torch.from_numpy(np.linspace(-2.1, 1.3, num=4*D*H).reshape(D, 4 * H))
        Wh = torch.from_numpy(np.linspace(-0.7, 2.2, num=4*H*H).reshape(H, 4 * H))
        b = torch.from_numpy(np.linspace(0.3, 0.7, num=4*H))

        next_h, next_c = lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b)

        expected_next_h = np.asarray([
            [ 0.24635157,  0.28610883,  0.32240467,  0.35525807,  0.38474904],
            [ 0.49223563,  0.55611431,  0.61507696,  0.66844003,  0.7159181 ],
            [ 0.56735664,  0.66310127,  0.74419266,  0.80889665,  0.858299  ]])
        expected_next_c = np.asarray([
            [ 0.32986176,  0.39145139,  0.451556,    0.51014116,  0.56717407],
            [ 0.66382255,  0.76674007,  0.87195994,  0.97902709,  1.08751345],
            [ 0.74192008,  0.90592151,  1.07717006,  1.25120233,  1.42395676]])
        next_h_error = rel_error(expected_next_h, next_h.numpy())
        next_c_error = rel_error(expected_next_c, next_c.numpy())

        N, D, H, T = 2, 5, 4, 3
        x = torch.from_numpy(np.linspace(-0.4, 0.6, num=N*T*D).reshape(N, T, D))
        h0 = torch.from_numpy(np.linspace(-0.4, 0.8, num=N*H).reshape(N, H))
        Wx = torch.from_numpy(np.linspace(-0.2, 0.9, num=4*D*H).reshape(D, 4 * H))
        Wh = torch.from_numpy(np.linspace(-0.3, 0.6, num=4*H*H).reshape(H, 4 * H))
        b = torch.from_numpy(np.linspace(0.2, 0.7, num=4*H))

        h = lstm_forward(x, h0, Wx, Wh, b)

        expected_h = np.asarray([
         [[ 0.01764008,  0.01823233,  0.01882671,  0.0194232 ],
          [ 0.11287491,  0.12146228,  0.13018446,  0.13902939],
          [ 0.31358768,  0.33338627,  0.35304453,  0.37250975]],
         [[ 0.45767879,  0.4761092,   0.4936887,   0.51041945],
          [ 0.6704845,   0.69350089,  0.71486014,  0.7346449 ],
          [ 0.81733511,  0.83677871,  0.85403753,  0.86935314]]])
        h_error = rel_error(expected_h, h.numpy())

        N, D, W, H = 10, 20, 30, 40
        word_to_idx = {'<NULL>': 0, 'cat': 2, 'dog': 3}
        V = len(word_to_idx)
        T = 13

        model = CaptioningRNN(word_to_idx, input_dim=D, wordvec_dim=W, hidden_dim=H,
                              cell_type='lstm', dtype=torch.float64)
        for k, v in model.params.items():
            model.params[k] = torch.from_numpy(np.linspace(-1.4, 1.3, num=v.numel()).reshape(*v.shape))

        features = torch.from_numpy(np.linspace(-0.5, 1.7, num=N*D).reshape(N, D))
        captions = torch.from_numpy((np.arange(N * T) % V).reshape(N, T))

        loss = model.loss(features, captions).item()
        expected_loss = 9.82445935443
        difference = abs(loss - expected_loss)
    """)
    assert ns["next_h_error"] < 1e-7 and ns["next_c_error"] < 1e-7
    assert ns["h_error"] < 1e-7
    assert ns["difference"] < 1e-10
