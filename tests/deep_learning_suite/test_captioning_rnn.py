import json

import numpy as np
import pytest

from deep_learning_suite.captioning_rnn import CaptioningRNN
from deep_learning_suite.utils import eval_numerical_gradient, rel_error

TOY_VOCAB = {"<NULL>": 0, "cat": 2, "dog": 3}       # the notebook's toy vocabulary (V = 3)
VOCAB = {"<NULL>": 0, "<START>": 1, "<END>": 2, "a": 3, "cat": 4, "dog": 5}


@pytest.mark.parametrize("cell_type, lo, hi, expected", [("rnn", -1.5, 0.3, 9.83235591003),
                                                         ("lstm", -0.5, 1.7, 9.82445935443)])
def test_loss_matches_course_values(cell_type, lo, hi, expected):
    # The RNN_Captioning and LSTM_Captioning notebooks' fixed-parameter check ("difference
    # on the order of e-10 or less").
    N, D, W, H, T = 10, 20, 30, 40, 13
    model = CaptioningRNN(TOY_VOCAB, input_dim=D, wordvec_dim=W, hidden_dim=H,
                          cell_type=cell_type, dtype=np.float64)
    for k, v in model.params.items():
        model.params[k] = np.linspace(-1.4, 1.3, num=v.size).reshape(*v.shape)
    features = np.linspace(lo, hi, num=N * D).reshape(N, D)
    captions = (np.arange(N * T) % len(TOY_VOCAB)).reshape(N, T)
    loss, _ = model.loss(features, captions)
    assert abs(loss - expected) < 1e-10


@pytest.mark.parametrize("cell_type", ["rnn", "lstm"])
@pytest.mark.parametrize("N, T", [(2, 3), (3, 6)])
def test_gradients_match_numerical(rng, cell_type, N, T):
    model = CaptioningRNN(VOCAB, input_dim=4, wordvec_dim=5, hidden_dim=6, cell_type=cell_type,
                          dtype=np.float64, seed=0)
    # O(1) parameters: with the initial word vectors (scale 1e-2) many gradient entries are
    # ~1e-7, below what a centred difference of a loss of ~T resolves in relative terms.
    for k, v in model.params.items():
        model.params[k] = 0.5 * rng.standard_normal(v.shape)
    features = rng.standard_normal((N, 4))
    captions = rng.integers(len(VOCAB), size=(N, T))
    captions[0, 1] = 3                                # at least one word counts
    loss, grads = model.loss(features, captions)
    assert set(grads) == set(model.params)
    for name in sorted(grads):
        num = eval_numerical_gradient(lambda _: model.loss(features, captions)[0], model.params[name],
                                      verbose=False, h=1e-5)
        assert grads[name].shape == model.params[name].shape
        assert rel_error(grads[name], num) < 1e-6, name


def test_padding_does_not_count():
    model = CaptioningRNN(VOCAB, input_dim=4, wordvec_dim=5, hidden_dim=6, dtype=np.float64, seed=1)
    features = np.ones((2, 4))
    short = np.array([[1, 3, 4, 2, 0, 0], [1, 3, 5, 2, 0, 0]])
    loss_short, _ = model.loss(features, short[:, :4])
    loss_padded, grads = model.loss(features, short)
    # The <NULL> steps come after <END>, so the padded captions have the same loss.
    assert loss_padded == pytest.approx(loss_short, rel=1e-12)
    # A caption of padding only gives no loss and no gradient.
    loss_none, grads_none = model.loss(features, np.array([[1, 0, 0], [1, 0, 0]]))
    assert loss_none == 0 and all(np.all(g == 0) for g in grads_none.values())


def test_padding_uses_nulls_own_index():
    # <NULL> need not be 0: the mask must compare against its index, and index 0 is then
    # an ordinary word that counts.
    vocab = {"<START>": 0, "<END>": 1, "<NULL>": 2, "a": 3}
    model = CaptioningRNN(vocab, input_dim=3, wordvec_dim=4, hidden_dim=5, dtype=np.float64, seed=0)
    features = np.ones((1, 3))
    loss_short, grads_short = model.loss(features, np.array([[0, 3, 1]]))
    loss_padded, grads_padded = model.loss(features, np.array([[0, 3, 1, 2, 2]]))
    assert loss_padded == pytest.approx(loss_short, rel=1e-12)
    for k in grads_short:
        np.testing.assert_allclose(grads_padded[k], grads_short[k], rtol=1e-10, atol=1e-15, err_msg=k)
    loss_word0, _ = model.loss(features, np.array([[0, 3, 0]]))
    loss_null, _ = model.loss(features, np.array([[0, 3, 2]]))
    assert loss_word0 > loss_null > 0


@pytest.mark.parametrize("cell_type", ["rnn", "lstm"])
def test_two_word_captions_are_the_shortest_accepted(cell_type):
    # T = 2: one word read (<START>), one predicted; the docstring promises T >= 2.
    model = CaptioningRNN(VOCAB, input_dim=4, wordvec_dim=3, hidden_dim=5, cell_type=cell_type, seed=0)
    loss, grads = model.loss(np.ones((2, 4)), np.array([[1, 3], [1, 2]]))
    assert np.isfinite(loss) and loss > 0
    assert all(np.all(np.isfinite(g)) for g in grads.values())


def test_course_defaults():
    # The course's sizes: 512-d image features (VGG fc7 after PCA) and 30-word samples.
    model = CaptioningRNN(VOCAB, seed=0)
    assert model.sample(np.ones((1, 512))).shape == (1, 30)
    with pytest.raises(ValueError, match=r"features must be \(N, 512\)"):
        model.sample(np.ones((1, 511)))


def test_initial_weight_scales():
    # 1 / sqrt(fan_in) for the projections, the course's / 100 for the word vectors and zero
    # biases: the scales the training curves and learning rates were tuned for.
    model = CaptioningRNN(VOCAB, input_dim=400, wordvec_dim=300, hidden_dim=200, dtype=np.float64, seed=0)
    p = model.params
    assert p["W_proj"].std() == pytest.approx(1 / np.sqrt(400), rel=0.05)
    assert p["Wx"].std() == pytest.approx(1 / np.sqrt(300), rel=0.05)
    assert p["Wh"].std() == pytest.approx(1 / np.sqrt(200), rel=0.05)
    assert p["W_vocab"].std() == pytest.approx(1 / np.sqrt(200), rel=0.1)
    assert p["W_embed"].std() == pytest.approx(1 / 100, rel=0.1)
    assert not p["b_proj"].any() and not p["b"].any() and not p["b_vocab"].any()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept(dtype):
    model = CaptioningRNN(VOCAB, input_dim=4, wordvec_dim=5, hidden_dim=6, cell_type="lstm",
                          dtype=dtype, seed=0)
    loss, grads = model.loss(np.ones((2, 4)), np.array([[1, 3, 2], [1, 4, 2]]))
    assert all(v.dtype == dtype for v in model.params.values())
    assert all(g.dtype == dtype for g in grads.values()) and np.asarray(loss).dtype == dtype


def test_seed_fixes_the_weights_and_none_follows_np_random_seed():
    a = CaptioningRNN(VOCAB, input_dim=4, seed=5)
    b = CaptioningRNN(VOCAB, input_dim=4, seed=5)
    assert all(np.array_equal(a.params[k], b.params[k]) for k in a.params)
    np.random.seed(7)
    c = CaptioningRNN(VOCAB, input_dim=4)
    np.random.seed(7)
    d = CaptioningRNN(VOCAB, input_dim=4)
    assert all(np.array_equal(c.params[k], d.params[k]) for k in c.params)
    assert c.params["Wx"].shape == (128, 128)
    assert CaptioningRNN(VOCAB, cell_type="lstm").params["Wx"].shape == (128, 512)


def _steer(model):
    """Parameters under which greedy sampling is known in advance.

    Hidden unit i (< V) holds "the last word was i" and W_vocab scores the next word from it;
    unit 7 holds a flag copied from the image's feature 0, which favours "dog". Without the
    flag: <START> a <END>, then "cat"; with it: <START> a dog <END>, then "dog".
    """
    V, H = len(VOCAB), model.params["Wh"].shape[0]
    p = {k: np.zeros_like(v) for k, v in model.params.items()}
    p["W_embed"][:, :V] = 10 * np.eye(V)
    p["W_proj"][0, 7] = 1
    if model.cell_type == "rnn":
        p["Wx"][:V, :V] = np.eye(V)
        p["Wh"][7, 7] = 10
    else:                                    # the same through the block input g
        p["Wx"][:V, 3 * H:3 * H + V] = np.eye(V)
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
def test_sample_feeds_back_its_words_and_pads_after_end(cell_type):
    model = CaptioningRNN(VOCAB, input_dim=4, wordvec_dim=8, hidden_dim=8, cell_type=cell_type,
                          dtype=np.float64, seed=0)
    _steer(model)
    features = np.zeros((3, 4))
    features[1, 0] = 1
    captions = model.sample(features, max_length=6)
    assert captions.dtype == np.int32 and captions.shape == (3, 6)
    w = VOCAB
    short, long = [w["a"], w["<END>"], 0, 0, 0, 0], [w["a"], w["dog"], w["<END>"], 0, 0, 0]
    np.testing.assert_array_equal(captions, [short, long, short])


@pytest.mark.parametrize("make, message", [
    (lambda: CaptioningRNN(VOCAB, cell_type="gru"), "invalid cell_type 'gru'"),
    (lambda: CaptioningRNN({"a": 0}), "holds '<NULL>'"),
    (lambda: CaptioningRNN(VOCAB, hidden_dim=0), "hidden_dim must be a positive integer"),
])
def test_bad_construction_is_refused(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_bad_inputs_get_clear_errors():
    model = CaptioningRNN(VOCAB, input_dim=4, wordvec_dim=5, hidden_dim=6)
    with pytest.raises(ValueError, match=r"features must be \(N, 4\)"):
        model.loss(np.ones((2, 5)), np.ones((2, 3), int))
    with pytest.raises(ValueError, match="T >= 2"):
        model.loss(np.ones((2, 4)), np.ones((2, 1), int))
    with pytest.raises(ValueError, match="one per feature row"):
        model.loss(np.ones((2, 4)), np.ones((3, 3), int))
    with pytest.raises(ValueError, match=r"captions holds indices out of range: \[6, 6\]"):
        model.loss(np.ones((2, 4)), np.array([[1, 3, 6], [1, 6, 2]]))
    with pytest.raises(ValueError, match="captions must hold integer word indices"):
        model.loss(np.ones((2, 4)), np.ones((2, 3)))
    with pytest.raises(ValueError, match="max_length must be a positive integer"):
        model.sample(np.ones((1, 4)), max_length=0)
    with pytest.raises(ValueError, match="no '<START>'"):
        CaptioningRNN(TOY_VOCAB, input_dim=4).sample(np.ones((1, 4)))


@pytest.mark.parametrize("word_to_idx, message", [
    # <NULL> outside range(V): the loss's mask never matched it, so padding was counted
    ({"<NULL>": 5, "<START>": 1, "<END>": 2}, r"indices must be 0..2, but \{'<NULL>': 5\}"),
    # used to fail in sample() with IndexError
    ({"<NULL>": 0, "<START>": 9}, r"\{'<START>': 9\} lie outside"),
    ({"<NULL>": 0, "<END>": -1, "a": 1}, r"\{'<END>': -1\} lie outside"),
    ({"<NULL>": 0, "<START>": 1, "<END>": 3}, r"\{'<END>': 3\} lie outside"),    # V itself is past the end
    # a string index: "0" != 0, so the padding was counted
    ({"<NULL>": "0", "<START>": 1}, r"values must be integer indices, got \{'<NULL>': '0'\}"),
    ({"<NULL>": 0, "<START>": True}, r"values must be integer indices, got \{'<START>': True\}"),
    ({"<NULL>": 0, "a": 1.0}, "values must be integer indices"),
    # two words for one index: idx_to_word kept only one of them
    ({"<NULL>": 0, "<START>": 0, "<END>": 1}, r"one index to several words: \{0: \['<NULL>', "
                                              r"'<START>'\]\}"),
])
def test_a_vocabulary_that_is_not_range_v_is_refused(word_to_idx, message):
    with pytest.raises(ValueError, match=message):
        CaptioningRNN(word_to_idx, input_dim=4, wordvec_dim=3, hidden_dim=5)


@pytest.mark.filterwarnings("error")
def test_the_courses_toy_vocabulary_builds_without_a_warning():
    # The course's check cell: V = 3 with "dog": 3, an ordinary word outside 0..2.
    model = CaptioningRNN(TOY_VOCAB, input_dim=4, wordvec_dim=3, hidden_dim=5)
    assert model.params["W_embed"].shape == (3, 3)


def test_numpy_integer_indices_are_accepted():
    vocab = {w: np.int64(i) for w, i in VOCAB.items()}
    model = CaptioningRNN(vocab, input_dim=4, wordvec_dim=3, hidden_dim=5, seed=0)
    assert model.idx_to_word[2] == "<END>" and type(model._start) is int
    # Plain int keys, so that the vocabulary can be saved as JSON (np.int64 keys cannot).
    assert all(type(i) is int for i in model.idx_to_word)
    assert json.loads(json.dumps(model.idx_to_word))["2"] == "<END>"
    assert model.sample(np.ones((1, 4)), max_length=2).shape == (1, 2)


@pytest.mark.parametrize("name", ["input_dim", "wordvec_dim", "hidden_dim"])
@pytest.mark.parametrize("value", [True, 4.5, "4", None, -2])
def test_sizes_must_be_whole_numbers(name, value):
    # True used to give "an integer is required" from NumPy
    with pytest.raises(ValueError, match=f"{name} must be a positive integer, got {value!r}"):
        CaptioningRNN(VOCAB, **{"input_dim": 4, "wordvec_dim": 3, "hidden_dim": 5, name: value})


def test_whole_number_float_sizes_are_used_as_ints():
    # 4.0 used to pass the check and then fail as an array shape with TypeError
    model = CaptioningRNN(VOCAB, input_dim=4.0, wordvec_dim=np.int64(3), hidden_dim=5.0,
                          cell_type="lstm", seed=0)
    assert model.params["W_proj"].shape == (4, 5) and model.params["Wx"].shape == (3, 20)
    assert model.sample(np.ones((2, 4)), max_length=3.0).shape == (2, 3)
    for bad in (2.5, True, "3"):
        with pytest.raises(ValueError, match="max_length must be a positive integer"):
            model.sample(np.ones((1, 4)), max_length=bad)
