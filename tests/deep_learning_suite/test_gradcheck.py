"""The ``gradcheck`` table checks what it says: every gradient, at the project's tolerances.

Tolerances (the project standard, see ``deep_learning_suite/gradcheck.py``): 1e-7 for affine,
ReLU, dropout, the recurrent layers and the losses; 1e-6 for the norms, conv and pool; 1e-5 for
whole models, and 1e-8 absolute for a model gradient that is zero in exact arithmetic.
"""

import re

import numpy as np
import pytest

from deep_learning_suite import gradcheck

LAYER, NORM, MODEL, ZERO = 1e-7, 1e-6, 1e-5, 1e-8


def _each(names, suffixes=("",)):
    """Every row name with every suffix, suffix by suffix."""
    return [f"{n}{s}" for s in suffixes for n in names]


XWB, NORMED_IN, DX = ("dx", "dw", "db"), ("dx", "dgamma", "dbeta"), ("dx",)
RNN_SEQ = ("dx", "dh0", "dWx", "dWh", "db")


_FC = ["W1", "W2", "W3", "b1", "b2", "b3"]
_NORMED = _FC + ["beta1", "beta2", "gamma1", "gamma2"]
_CAPTION = ["W_embed", "W_proj", "W_vocab", "Wh", "Wx", "b", "b_proj", "b_vocab"]

# check -> (tolerance, the rows it must print): one row per input of the layer's forward,
# for every variant it checks, and one per parameter of each model.
EXPECTED = {
    "affine": (LAYER, _each(XWB)),
    "relu": (LAYER, _each(DX)),
    "softmax_loss": (LAYER, ["dx"]),
    "svm_loss": (LAYER, ["dx"]),
    "batchnorm": (NORM, _each(NORMED_IN, (" (backward)", " (backward_alt)"))),
    "spatial_batchnorm": (NORM, _each(NORMED_IN)),
    "layernorm": (NORM, _each(NORMED_IN)),
    "spatial_groupnorm": (NORM, _each(NORMED_IN)),
    "dropout": (LAYER, _each(DX)),
    "conv_naive": (NORM, _each(XWB, (" s1p1", " s2p0"))),
    "conv_fast": (NORM, _each(XWB, (" s1p1", " s2p0"))),
    "max_pool_naive": (NORM, _each(DX)),
    "max_pool_fast": (NORM, _each(DX)),
    "rnn": (LAYER, _each(("dx", "dprev_h", "dWx", "dWh", "db"), (" (step)",)) + _each(RNN_SEQ, (" (sequence)",))),
    "lstm": (LAYER, _each(("dx", "dprev_h", "dprev_c", "dWx", "dWh", "db"), (" (step)",))
             + _each(RNN_SEQ, (" (sequence)",))),
    "word_embedding": (LAYER, _each(("dW",))),
    "temporal_affine": (LAYER, _each(XWB)),
    "temporal_softmax_loss": (LAYER, ["dx"]),
    "FullyConnectedNet": (MODEL, [f"{p} (plain)" for p in _FC]
                          + [f"{p} ({n})" for n in ("batchnorm", "layernorm") for p in _NORMED]),
    "ThreeLayerConvNet": (MODEL, _FC),
    "CaptioningRNN": (MODEL, [f"{p} ({c})" for c in ("rnn", "lstm") for p in _CAPTION]),
}
# the biases right before a batchnorm: their gradient is zero, so they are compared absolutely
ABSOLUTE = {("FullyConnectedNet", "b1 (batchnorm)"), ("FullyConnectedNet", "b2 (batchnorm)")}
_ABS_MARK = " [~0, abs]"


def _rows(name):
    """``{row name: (err, tol)}`` of one check, the ``[~0, abs]`` mark moved out of the name."""
    rows = dict(gradcheck.CHECKS)[name](np.random.default_rng(0))
    out = {}
    for grad, err, tol in rows:
        absolute = _ABS_MARK in grad
        key = grad.replace(_ABS_MARK, "")
        assert key not in out, f"{name}: row {key} twice"
        out[key] = (err, tol, absolute)
    return out


def _failing(rows):
    return {k for k, (err, tol, _) in rows.items() if not (np.isfinite(err) and err <= tol)}


def test_the_table_runs_every_check():
    assert [n for n, _ in gradcheck.CHECKS] == list(EXPECTED)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_each_check_lists_every_gradient_at_the_project_tolerance(name):
    tol, names = EXPECTED[name]
    rows = _rows(name)
    assert sorted(rows) == sorted(names)
    for key, (err, row_tol, absolute) in rows.items():
        assert absolute == ((name, key) in ABSOLUTE), key
        assert row_tol == (ZERO if absolute else tol), key
    assert not _failing(rows)


def _skew(fn, k, e):
    """``fn`` with the ``k``-th of its returned values (a gradient) scaled by ``1 + e``."""
    def wrong(*args, **kwargs):
        out = fn(*args, **kwargs)
        vals = list(out) if isinstance(out, tuple) else [out]
        vals[k] = vals[k] * (1 + e)
        return tuple(vals) if isinstance(out, tuple) else vals[0]
    return wrong


# (check, module, backward, which returned gradient, the rows that gradient is checked in)
_BACKWARDS = [("affine", "layers", "affine_backward", k, "") for k in range(3)] + [
    ("relu", "layers", "relu_backward", 0, ""),
    ("softmax_loss", "layers", "softmax_loss", 1, ""),
    ("svm_loss", "layers", "svm_loss", 1, ""),
    ("dropout", "dropout", "dropout_backward", 0, ""),
    ("max_pool_naive", "conv_layers", "max_pool_backward_naive", 0, ""),
    ("max_pool_fast", "fast_layers", "max_pool_backward_fast", 0, ""),
    ("word_embedding", "rnn_layers", "word_embedding_backward", 0, ""),
    ("temporal_softmax_loss", "rnn_layers", "temporal_softmax_loss", 1, ""),
] + [(c, "batchnorm", b, k, "") for k in range(3) for c, b in (
    ("spatial_batchnorm", "spatial_batchnorm_backward"), ("layernorm", "layernorm_backward"),
    ("spatial_groupnorm", "spatial_groupnorm_backward"))] + [
    ("batchnorm", "batchnorm", b, k, f" ({b[10:]})") for k in range(3)
    for b in ("batchnorm_backward", "batchnorm_backward_alt")] + [
    ("conv_naive", "conv_layers", "conv_backward_naive", k, "") for k in range(3)] + [
    ("conv_fast", "fast_layers", "conv_backward_fast", k, "") for k in range(3)] + [
    ("temporal_affine", "rnn_layers", "temporal_affine_backward", k, "") for k in range(3)] + [
    ("rnn", "rnn_layers", "rnn_step_backward", k, " (step)") for k in range(5)] + [
    ("rnn", "rnn_layers", "rnn_backward", k, " (sequence)") for k in range(5)] + [
    ("lstm", "rnn_layers", "lstm_step_backward", k, " (step)") for k in range(6)] + [
    ("lstm", "rnn_layers", "lstm_backward", k, " (sequence)") for k in range(5)]


@pytest.mark.parametrize("check, module, backward, k, variant", _BACKWARDS,
                         ids=[f"{b}-{k}" for _, _, b, k, _ in _BACKWARDS])
def test_a_gradient_off_by_ten_times_the_tolerance_fails_its_row(monkeypatch, check, module, backward,
                                                                 k, variant):
    # rel_error of g * (1 + e) against g is e / 2: five times the tolerance, so a check run at a
    # looser tolerance than the standard, or one that skips this gradient, lets it through
    tol, names = EXPECTED[check]
    mod = gradcheck._mod(module)
    monkeypatch.setattr(mod, backward, _skew(getattr(mod, backward), k, 10 * tol))
    # the row of returned gradient k; a loss returns (loss, dx), its one row
    bases = list(dict.fromkeys(n.split()[0] for n in names if n.endswith(variant)))
    row = bases[k] if len(bases) > 1 else bases[0]
    assert _failing(_rows(check)) == {n for n in names if n.split()[0] == row and n.endswith(variant)}


_PARAMS = [("FullyConnectedNet", "fully_connected_net", "FullyConnectedNet", p) for p in ("W1", "b3", "gamma1")] + \
    [("ThreeLayerConvNet", "cnn_model", "ThreeLayerConvNet", p) for p in ("W1", "b3")] + \
    [("CaptioningRNN", "captioning_rnn", "CaptioningRNN", p) for p in ("W_embed", "Wh", "b_vocab")]


@pytest.mark.parametrize("check, module, cls, param", _PARAMS, ids=[f"{c}-{p}" for c, _, _, p in _PARAMS])
def test_a_model_gradient_off_by_ten_times_the_tolerance_fails_its_row(monkeypatch, check, module, cls,
                                                                       param):
    model_cls = getattr(gradcheck._mod(module), cls)
    loss = model_cls.loss

    def wrong(self, *args, **kwargs):
        value, grads = loss(self, *args, **kwargs)
        return value, {k: g * (1 + 10 * MODEL) if k == param else g for k, g in grads.items()}
    monkeypatch.setattr(model_cls, "loss", wrong)
    assert _failing(_rows(check)) == {n for n in EXPECTED[check][1] if n.split()[0] == param}


# --- wrong backwards the check's data must be rich enough to expose ----------------------

def _with(monkeypatch, module, name, make):
    mod = gradcheck._mod(module)
    monkeypatch.setattr(mod, name, make(getattr(mod, name)))


@pytest.mark.parametrize("check, loss", [("softmax_loss", "softmax_loss"), ("svm_loss", "svm_loss")])
def test_a_loss_gradient_that_ignores_the_labels_fails(monkeypatch, check, loss):
    # with every label the same class, dx computed for class 0 would be right by accident
    _with(monkeypatch, "layers", loss,
          lambda f: lambda x, y: (f(x, y)[0], f(x, np.zeros_like(y))[1]))
    assert _failing(_rows(check)) == {"dx"}


def test_a_temporal_loss_gradient_that_ignores_the_mask_fails(monkeypatch):
    _with(monkeypatch, "rnn_layers", "temporal_softmax_loss",
          lambda f: lambda x, y, mask: (f(x, y, mask)[0], f(x, y, np.ones_like(mask))[1]))
    assert _failing(_rows("temporal_softmax_loss")) == {"dx"}


def test_a_dropout_backward_that_ignores_the_mask_fails(monkeypatch):
    # with a keep probability of 1 the mask is all ones and dout would be the right answer
    _with(monkeypatch, "dropout", "dropout_backward", lambda f: lambda dout, cache: dout)
    assert _failing(_rows("dropout")) == {"dx"}


def test_a_groupnorm_backward_that_ignores_the_groups_fails(monkeypatch):
    # the backward of a single group (layer norm over C, H, W): right only when G = 1
    B = gradcheck._mod("batchnorm")
    forward, backward = B.spatial_groupnorm_forward, B.spatial_groupnorm_backward

    def fwd(x, gamma, beta, G, gn_param):
        out, _ = forward(x, gamma, beta, G, gn_param)
        return out, forward(x, gamma, beta, 1, gn_param)[1]
    monkeypatch.setattr(B, "spatial_groupnorm_forward", fwd)
    monkeypatch.setattr(B, "spatial_groupnorm_backward", backward)
    assert "dx" in _failing(_rows("spatial_groupnorm"))


@pytest.mark.parametrize("check, module, cls", [
    ("FullyConnectedNet", "fully_connected_net", "FullyConnectedNet"),
    ("ThreeLayerConvNet", "cnn_model", "ThreeLayerConvNet"),
])
def test_a_model_gradient_that_forgets_the_regularisation_fails(monkeypatch, check, module, cls):
    # the loss adds reg * sum(W**2) / 2 but the gradients leave out reg * W: caught only if reg > 0
    model_cls = getattr(gradcheck._mod(module), cls)
    loss = model_cls.loss

    def wrong(self, *args, **kwargs):
        value, grads = loss(self, *args, **kwargs)
        return value, {k: g - self.reg * self.params[k] if k.startswith("W") else g for k, g in grads.items()}
    monkeypatch.setattr(model_cls, "loss", wrong)
    failing = _failing(_rows(check))
    assert {n.split()[0] for n in failing} == {"W1", "W2", "W3"}


def test_relu_check_keeps_its_inputs_off_the_kink():
    # an rng that draws a value within h of 0: there the centred difference reads 0.5, not 1
    class AtTheKink:
        def __init__(self):
            self.rng, self.first = np.random.default_rng(0), True

        def standard_normal(self, shape):
            x = self.rng.standard_normal(shape)
            if self.first:
                x.flat[0], self.first = 1e-7, False
            return x
    rows = gradcheck.check_relu(AtTheKink())
    assert [(n, err <= tol) for n, err, tol in rows] == [("dx", True)]


# --- _model_rows: relative unless both gradients are (near) zero --------------------------

class _Model:
    """A stand-in model: ``loss`` returns ``loss_fn(params)`` and the (possibly wrong) ``grads``."""

    def __init__(self, params, loss_fn, grads):
        self.params, self.loss_fn, self.grads = params, loss_fn, grads

    def loss(self, X, y):
        return self.loss_fn(self.params), self.grads


def test_a_small_but_nonzero_model_gradient_is_compared_relatively():
    # gradient 2e-5 * w: absolutely, an error of 1e-4 of it (4e-9) would pass the 1e-8 bound
    w = np.array([0.5, -1.0, 1.0])
    rows = gradcheck._model_rows(_Model({"w": w}, lambda p: 1e-5 * np.sum(p["w"] ** 2),
                                        {"w": 2e-5 * w * (1 + 1e-4)}), None, None)
    [(name, err, tol)] = rows
    assert (name, tol) == ("w", MODEL) and err > tol


def test_a_forgotten_model_gradient_reads_as_a_relative_error_of_one():
    w = np.array([0.5, -1.0, 1.0])
    rows = gradcheck._model_rows(_Model({"w": w}, lambda p: np.sum(p["w"] ** 2), {"w": np.zeros(3)}),
                                 None, None)
    [(name, err, tol)] = rows
    assert (name, tol) == ("w", MODEL) and np.isclose(err, 1.0)


def test_a_near_zero_model_gradient_is_compared_by_its_largest_absolute_error():
    # true gradient [-9e-9, 0]; the analytic one has the sign wrong in the first entry: 1.8e-8 off
    rows = gradcheck._model_rows(_Model({"w": np.array([1.0, 1.0])}, lambda p: -9e-9 * p["w"][0],
                                        {"w": np.array([9e-9, 0.0])}), None, None)
    [(name, err, tol)] = rows
    assert (name, tol) == ("w" + _ABS_MARK, ZERO)
    assert np.isclose(err, 1.8e-8, rtol=1e-4) and err > tol


# --- run(): --only, the failure count and the exit code -----------------------------------

def _table(capsys, only):
    code = gradcheck.run(only)
    lines = capsys.readouterr().out.splitlines()
    return code, sorted({line.split()[0] for line in lines[1:-1]}), lines


@pytest.mark.parametrize("only, names", [
    ("pool", ["max_pool_fast", "max_pool_naive"]),                   # substrings, not whole names
    ("relu, affine", ["affine", "relu", "temporal_affine"]),
    ("spatial", ["spatial_batchnorm", "spatial_groupnorm"]),
    ("svm_loss", ["svm_loss"]),
])
def test_only_runs_the_checks_whose_names_contain_a_given_substring(capsys, only, names):
    code, ran, lines = _table(capsys, only)
    assert code == 0 and ran == names and lines[-1] == "all gradient checks passed"


def test_every_failing_row_and_every_raising_check_is_counted(monkeypatch, capsys):
    def boom(rng):
        raise RuntimeError("module broke")
    monkeypatch.setattr(gradcheck, "CHECKS", [
        ("good", lambda rng: [("a", 1e-9, 1e-7), ("at_tol", 1e-7, 1e-7)]),   # within tol: passes
        ("bad", lambda rng: [("a", 2e-7, 1e-7), ("nan", float("nan"), 1e-7), ("b", 0.0, 1e-7)]),
        ("broken", boom),
    ])
    code, _, lines = _table(capsys, None)
    assert code == 1 and lines[-1] == "3 check(s) FAILED"
    verdicts = [(line.split()[0], line.split()[1], line.split()[4]) for line in lines[1:-1]]
    assert verdicts == [("good", "a", "PASS"), ("good", "at_tol", "PASS"), ("bad", "a", "FAIL"),
                        ("bad", "nan", "FAIL"), ("bad", "b", "PASS"), ("broken", "-", "FAIL")]
    assert re.search(r"^broken\s.*FAIL \(RuntimeError: module broke\)$", "\n".join(lines), re.M)


def test_a_check_that_raises_makes_the_run_fail(monkeypatch, capsys):
    def broken(*args):
        raise ImportError("no relu today")
    monkeypatch.setattr(gradcheck._mod("layers"), "relu_forward", broken)
    code, ran, lines = _table(capsys, "relu")
    assert code == 1 and ran == ["relu"] and lines[-1] == "1 check(s) FAILED"
    assert "FAIL (ImportError: no relu today)" in lines[1]


def test_a_backward_returning_too_few_gradients_is_a_failing_row(monkeypatch, capsys):
    # zip would silently check only the gradients that came back
    layers = gradcheck._mod("layers")
    backward = layers.affine_backward
    monkeypatch.setattr(layers, "affine_backward", lambda dout, cache: backward(dout, cache)[:2])
    assert gradcheck.run("affine") == 1
    assert "returned 2 gradient(s), expected dx, dw, db" in capsys.readouterr().out
