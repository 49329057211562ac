import numpy as np
import pytest

torch = pytest.importorskip("torch")

from deep_learning_suite import captioning_rnn  # noqa: E402
from deep_learning_suite.captioning_rnn_pytorch import CaptioningRNN  # noqa: E402
from deep_learning_suite.captioning_solver_pytorch import CaptioningSolverPytorch  # noqa: E402
from deep_learning_suite.coco import decode_captions  # noqa: E402
from deep_learning_suite.trainer import TrainingDivergedError  # noqa: E402
from deep_learning_suite.utils import rel_error  # noqa: E402
from tests._coco_files import coco_arrays  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_one_thread")

TOY_VOCAB = {"<NULL>": 0, "cat": 2, "dog": 3}       # the notebook's toy vocabulary (V = 3)
VOCAB = {"<NULL>": 0, "<START>": 1, "<END>": 2, "a": 3, "cat": 4, "dog": 5}


def _pair(cell_type, rng, D=4, W=5, H=6, vocab=VOCAB, scale=0.5):
    """A NumPy model and a PyTorch one holding the same float64 parameters."""
    ref = captioning_rnn.CaptioningRNN(vocab, input_dim=D, wordvec_dim=W, hidden_dim=H,
                                       cell_type=cell_type, dtype=np.float64, seed=0)
    for k, v in ref.params.items():
        ref.params[k] = scale * rng.standard_normal(v.shape)
    model = CaptioningRNN(vocab, input_dim=D, wordvec_dim=W, hidden_dim=H, cell_type=cell_type,
                          dtype=torch.float64)
    assert set(model.params) == set(ref.params)
    for k, v in ref.params.items():
        assert tuple(model.params[k].shape) == v.shape, k
        model.params[k] = torch.from_numpy(v.copy())
    return ref, model


@pytest.mark.parametrize("cell_type, lo, hi, expected", [("rnn", -1.5, 0.3, 9.83235591003),
                                                         ("lstm", -0.5, 1.7, 9.82445935443)])
def test_loss_matches_course_values(cell_type, lo, hi, expected):
    # The notebooks' fixed-parameter check ("difference on the order of e-10 or less").
    N, D, W, H, T = 10, 20, 30, 40, 13
    model = CaptioningRNN(TOY_VOCAB, input_dim=D, wordvec_dim=W, hidden_dim=H,
                          cell_type=cell_type, dtype=torch.float64)
    for k, v in model.params.items():
        model.params[k] = torch.from_numpy(np.linspace(-1.4, 1.3, num=v.numel()).reshape(*v.shape))
    features = torch.from_numpy(np.linspace(lo, hi, num=N * D).reshape(N, D))
    captions = torch.from_numpy((np.arange(N * T) % len(TOY_VOCAB)).reshape(N, T))
    loss = model.loss(features, captions)
    assert loss.dim() == 0 and loss.dtype == torch.float64
    assert abs(loss.item() - expected) < 1e-10


@pytest.mark.parametrize("cell_type", ["rnn", "lstm"])
@pytest.mark.parametrize("N, T", [(2, 3), (3, 7)])
def test_loss_and_autograd_match_the_numpy_model(rng, cell_type, N, T):
    ref, model = _pair(cell_type, rng)
    features = rng.standard_normal((N, 4))
    captions = rng.integers(len(VOCAB), size=(N, T))
    captions[0, 1], captions[-1, -1] = 3, 0           # a counted word and some padding
    ref_loss, ref_grads = ref.loss(features, captions)
    for v in model.params.values():
        v.requires_grad_()
    loss = model.loss(torch.from_numpy(features), torch.from_numpy(captions))
    loss.backward()
    assert abs(loss.item() - ref_loss) < 1e-12
    for k, g in ref_grads.items():
        assert rel_error(model.params[k].grad.numpy(), g) < 1e-10, k


@pytest.mark.parametrize("cell_type", ["rnn", "lstm"])
def test_sample_matches_the_numpy_model(rng, cell_type):
    ref, model = _pair(cell_type, rng, scale=1.5)
    features = rng.standard_normal((5, 4))
    captions = model.sample(torch.from_numpy(features), max_length=9)
    assert isinstance(captions, torch.Tensor) and captions.dtype == torch.int64
    assert tuple(captions.shape) == (5, 9) and captions.device.type == "cpu"
    np.testing.assert_array_equal(captions.numpy(), ref.sample(features, max_length=9))


def _steer(model):
    """Parameters under which greedy sampling is known in advance (as in test_captioning_rnn).

    Hidden unit i (< V) holds "the last word was i"; unit 7 holds a flag copied from the
    image's feature 0, which favours "dog". Without the flag: <START> a <END>, then "cat";
    with it: <START> a dog <END>, then "dog".
    """
    V, H = len(VOCAB), model.params["Wh"].shape[0]
    p = {k: torch.zeros_like(v) for k, v in model.params.items()}
    p["W_embed"][:, :V] = 10 * torch.eye(V)
    p["W_proj"][0, 7] = 1
    if model.cell_type == "rnn":
        p["Wx"][:V, :V] = torch.eye(V)
        p["Wh"][7, 7] = 10
    else:                                    # the same through the block input g
        p["Wx"][:V, 3 * H:3 * H + V] = torch.eye(V)
        p["Wh"][7, 3 * H + 7] = 10
        p["b"][:H] = p["b"][2 * H:3 * H] = 10      # input and output gates open
        p["b"][H:2 * H] = -10                      # forget the previous word
    w = VOCAB
    for prev, word, score in [("<START>", "a", 30), ("a", "<END>", 10), ("dog", "<END>", 30),
                              ("<END>", "cat", 10)]:
        p["W_vocab"][w[prev], w[word]] = score
    p["W_vocab"][7, w["dog"]] = 15
    model.params.update(p)


@pytest.mark.parametrize("cell_type", ["rnn", "lstm"])
def test_sample_stops_at_end_and_pads_with_null(cell_type):
    model = CaptioningRNN(VOCAB, input_dim=4, wordvec_dim=8, hidden_dim=8, cell_type=cell_type,
                          dtype=torch.float64)
    _steer(model)
    features = torch.zeros(3, 4, dtype=torch.float64)
    features[1, 0] = 1
    captions = model.sample(features, max_length=6)
    w = VOCAB
    short, long = [w["a"], w["<END>"], 0, 0, 0, 0], [w["a"], w["dog"], w["<END>"], 0, 0, 0]
    np.testing.assert_array_equal(captions.numpy(), [short, long, short])
    idx_to_word = {i: s for s, i in VOCAB.items()}
    assert decode_captions(captions.numpy(), idx_to_word) == ["a <END>", "a dog <END>", "a <END>"]


def test_padding_does_not_count():
    model = CaptioningRNN(VOCAB, input_dim=4, wordvec_dim=5, hidden_dim=6, dtype=torch.float64, seed=1)
    features = torch.ones(2, 4, dtype=torch.float64)
    short = torch.tensor([[1, 3, 4, 2, 0, 0], [1, 3, 5, 2, 0, 0]])
    assert model.loss(features, short).item() == pytest.approx(model.loss(features, short[:, :4]).item(),
                                                               rel=1e-12)
    for v in model.params.values():
        v.requires_grad_()
    loss = model.loss(features, torch.tensor([[1, 0, 0], [1, 0, 0]]))
    loss.backward()
    assert loss.item() == 0 and all(torch.all(v.grad == 0) for v in model.params.values())


def test_dtype_device_seed_and_the_global_generator():
    m32 = CaptioningRNN(VOCAB, input_dim=4, wordvec_dim=5, hidden_dim=6, cell_type="lstm", seed=3)
    assert m32.dtype == torch.float32 and m32.device == torch.device("cpu")
    assert all(v.dtype == torch.float32 and not v.requires_grad for v in m32.params.values())
    assert tuple(m32.params["Wx"].shape) == (5, 24) and tuple(m32.params["W_vocab"].shape) == (6, 6)
    # float64 features into a float32 model are cast; so are NumPy arrays.
    loss = m32.loss(np.ones((2, 4)), np.array([[1, 3, 2], [1, 4, 2]], dtype=np.int32))
    assert loss.dtype == torch.float32
    m64 = CaptioningRNN(VOCAB, input_dim=4, wordvec_dim=5, hidden_dim=6, cell_type="lstm",
                        dtype=np.float64, seed=3, device="cpu")
    # The same draws in either dtype: the weights are drawn in float32, then cast.
    assert all(v.dtype == torch.float64 for v in m64.params.values())
    assert all(torch.equal(m64.params[k].float(), m32.params[k]) for k in m32.params)
    torch.manual_seed(231)
    a = CaptioningRNN(VOCAB, input_dim=4)
    torch.manual_seed(231)
    b = CaptioningRNN(VOCAB, input_dim=4)
    assert all(torch.equal(a.params[k], b.params[k]) for k in a.params)
    assert tuple(a.params["Wx"].shape) == (128, 128)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_model_and_solver_on_cuda():
    data = coco_arrays(num_train_images=4, captions_per_image=1)
    model = CaptioningRNN(data["word_to_idx"], input_dim=16, wordvec_dim=8, hidden_dim=8,
                          cell_type="lstm", device="cuda", seed=0)
    assert all(v.device.type == "cuda" for v in model.params.values())
    # NumPy batches are moved to the parameters' device.
    assert model.loss(data["train_features"][:2], data["train_captions"][:2]).device.type == "cuda"
    solver = CaptioningSolverPytorch(model, data, num_epochs=2, batch_size=2, verbose=False, seed=0)
    solver.train()
    assert len(solver.loss_history) == 4 and all(v.device.type == "cuda" for v in model.params.values())
    captions = model.sample(torch.from_numpy(data["train_features"]), max_length=5)
    assert captions.device.type == "cpu" and tuple(captions.shape) == (4, 5)


@pytest.mark.parametrize("make, message", [
    (lambda: CaptioningRNN(VOCAB, cell_type="gru"), "invalid cell_type 'gru'"),
    (lambda: CaptioningRNN({"a": 0}), "holds '<NULL>'"),
    (lambda: CaptioningRNN(VOCAB, hidden_dim=0), "hidden_dim must be a positive integer"),
    (lambda: CaptioningRNN(VOCAB, dtype=torch.int64), "dtype must be a floating dtype"),
])
def test_bad_construction_is_refused(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_bad_inputs_get_clear_errors():
    model = CaptioningRNN(VOCAB, input_dim=4, wordvec_dim=5, hidden_dim=6)
    ones = torch.ones
    with pytest.raises(ValueError, match=r"features must be \(N, 4\)"):
        model.loss(ones(2, 5), ones(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="T >= 2"):
        model.loss(ones(2, 4), ones(2, 1, dtype=torch.long))
    with pytest.raises(ValueError, match="one per feature row"):
        model.loss(ones(2, 4), ones(3, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"captions holds indices out of range: \[6, 6\]"):
        model.loss(ones(2, 4), torch.tensor([[1, 3, 6], [1, 6, 2]]))
    with pytest.raises(ValueError, match="captions must hold integer word indices"):
        model.loss(ones(2, 4), ones(2, 3))
    with pytest.raises(ValueError, match="max_length must be a positive integer"):
        model.sample(ones(1, 4), max_length=0)
    with pytest.raises(ValueError, match="no '<START>'"):
        CaptioningRNN(TOY_VOCAB, input_dim=4).sample(ones(1, 4))


# ----------------------------------------------------------------------------- the solver

@pytest.mark.parametrize("cell_type", ["rnn", "lstm"])
def test_solver_overfits_a_tiny_dataset_and_samples_its_captions(cell_type):
    data = coco_arrays()           # 12 images, 2 identical captions each, D = 16
    torch.manual_seed(0)
    model = CaptioningRNN(data["word_to_idx"], input_dim=data["train_features"].shape[1],
                          wordvec_dim=32, hidden_dim=64, cell_type=cell_type)
    params_before = dict(model.params)
    solver = CaptioningSolverPytorch(model, data, num_epochs=60, batch_size=8, learning_rate=1e-2,
                                     verbose=False, seed=0)
    solver.train()
    history = solver.loss_history
    assert len(history) == 60 * (24 // 8) and all(isinstance(x, float) for x in history)
    assert history[0] > 15 and np.mean(history[-5:]) < 0.1 and history[-1] < history[0] / 100
    # Adam updated the model's own tensors in place, and training left them without grads.
    assert all(model.params[k] is v for k, v in params_before.items())
    assert not any(v.requires_grad for v in model.params.values())
    captions = model.sample(torch.from_numpy(data["train_features"]), max_length=30)
    assert tuple(captions.shape) == (12, 30) and captions.dtype == torch.int64
    words = data["idx_to_word"]
    truth = decode_captions(data["train_captions"][::2], words)
    assert ["<START> " + s for s in decode_captions(captions.numpy(), words)] == truth
    end = data["word_to_idx"]["<END>"]
    for row in captions.numpy():           # <END> once, then only <NULL>
        stop = list(row).index(end)
        assert np.all(row[stop + 1:] == data["word_to_idx"]["<NULL>"])


def test_solver_options_learning_rate_decay_and_the_numpy_spelling():
    data = coco_arrays(num_train_images=4, captions_per_image=1)
    model = CaptioningRNN(data["word_to_idx"], input_dim=16, wordvec_dim=8, hidden_dim=8, seed=0)
    solver = CaptioningSolverPytorch(model, data, update_rule="adam", optim_config={"learning_rate": 4e-3},
                                     lr_decay=0.5, num_epochs=3, batch_size=2, verbose=False, seed=1)
    assert solver.learning_rate == 4e-3 and isinstance(solver.optim, torch.optim.Adam)
    solver.train()
    assert solver.epoch == 3 and len(solver.loss_history) == 6
    assert solver.optim.param_groups[0]["lr"] == pytest.approx(4e-3 * 0.5 ** 3)
    # The same seed draws the same minibatches: the same losses from the same start.
    runs = []
    for _ in range(2):
        m = CaptioningRNN(data["word_to_idx"], input_dim=16, wordvec_dim=8, hidden_dim=8, seed=0)
        s = CaptioningSolverPytorch(m, data, num_epochs=2, batch_size=2, verbose=False, seed=5)
        s.train()
        runs.append(s.loss_history)
    assert runs[0] == runs[1]


def test_solver_prints_every_print_every(capsys):
    data = coco_arrays(num_train_images=4, captions_per_image=1)
    model = CaptioningRNN(data["word_to_idx"], input_dim=16, wordvec_dim=8, hidden_dim=8, seed=0)
    CaptioningSolverPytorch(model, data, num_epochs=2, batch_size=1, print_every=3, seed=0).train()
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(")")[0] for line in lines] == ["(Iteration 1 / 8", "(Iteration 4 / 8",
                                                      "(Iteration 7 / 8"]


def test_solver_follows_params_the_notebook_replaces():
    data = coco_arrays(num_train_images=4, captions_per_image=1)
    model = CaptioningRNN(data["word_to_idx"], input_dim=16, wordvec_dim=8, hidden_dim=8, seed=0)
    solver = CaptioningSolverPytorch(model, data, num_epochs=1, batch_size=2, verbose=False, seed=0)
    model.params["W_vocab"] = model.params["W_vocab"].clone()
    replaced = model.params["W_vocab"].clone()
    solver.train()
    assert not torch.equal(model.params["W_vocab"], replaced)       # the new tensor was trained
    assert any(p is model.params["W_vocab"] for p in solver.optim.param_groups[0]["params"])


def test_solver_stops_on_a_diverged_loss():
    data = coco_arrays(num_train_images=4, captions_per_image=1)
    model = CaptioningRNN(data["word_to_idx"], input_dim=16, wordvec_dim=8, hidden_dim=8, seed=0)
    model.params["W_vocab"][0, 0] = float("nan")
    solver = CaptioningSolverPytorch(model, data, num_epochs=1, batch_size=2, verbose=False)
    with pytest.raises(TrainingDivergedError, match="at iteration 1"):
        solver.train()
    assert not any(v.requires_grad for v in model.params.values())


@pytest.mark.parametrize("kwargs, message", [
    ({"lr": 1e-3}, r"unrecognized option\(s\) \['lr'\]"),
    ({"update_rule": "sgd"}, "update_rule must be 'adam'"),
    ({"optim_config": {"momentum": 0.9}}, r"optim_config takes .* got \['momentum'\]"),
    ({"learning_rate": 1e-3, "optim_config": {"learning_rate": 1e-2}}, "disagree"),
    ({"learning_rate": -1.0}, "learning_rate must be a positive number"),
    ({"batch_size": 0}, "batch_size must be a positive integer"),
    ({"lr_decay": 0}, "lr_decay must be a positive number"),
])
def test_solver_refuses_bad_options(kwargs, message):
    data = coco_arrays(num_train_images=2, captions_per_image=1)
    model = CaptioningRNN(data["word_to_idx"], input_dim=16, wordvec_dim=4, hidden_dim=4, seed=0)
    with pytest.raises(ValueError, match=message):
        CaptioningSolverPytorch(model, data, **kwargs)


def test_solver_refuses_data_without_training_arrays():
    model = CaptioningRNN(VOCAB, input_dim=4, wordvec_dim=4, hidden_dim=4, seed=0)
    with pytest.raises(ValueError, match="'train_features' is missing"):
        CaptioningSolverPytorch(model, {"train_captions": np.zeros((2, 3), int),
                                        "train_image_idxs": np.zeros(2, int)})


@pytest.mark.parametrize("word_to_idx, message", [
    ({"<NULL>": 5, "<START>": 1, "<END>": 2}, r"\{'<NULL>': 5\} lie outside"),
    ({"<NULL>": "0", "<START>": 1}, "values must be integer indices"),
    ({"<NULL>": 0, "<START>": 0, "<END>": 1}, "one index to several words"),
])
def test_the_vocabulary_meets_the_numpy_models_rules(word_to_idx, message):
    with pytest.raises(ValueError, match=message):
        CaptioningRNN(word_to_idx, input_dim=4, wordvec_dim=3, hidden_dim=5)
