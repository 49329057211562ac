import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from deep_learning_suite.captioning_transformer import (  # noqa: E402
    CaptioningSolverTransformer,
    CaptioningTransformer,
    temporal_cross_entropy,
)
from deep_learning_suite.coco import decode_captions, sample_coco_minibatch  # noqa: E402
from deep_learning_suite.trainer import TrainingDivergedError  # noqa: E402
from deep_learning_suite.transformer_layers import (  # noqa: E402
    PositionalEncoding,
    TransformerDecoder,
    TransformerDecoderLayer,
)
from deep_learning_suite.utils import generator  # noqa: E402
from tests._coco_files import WORDS, coco_arrays  # noqa: E402

VOCAB = {"<NULL>": 0, "<START>": 1, "<END>": 2, "a": 3, "cat": 4, "dog": 5}


@pytest.fixture(autouse=True)
def one_thread(torch_one_thread):
    yield


def _model(**kwargs):
    torch.manual_seed(0)
    args = dict(input_dim=4, wordvec_dim=8, num_heads=2, num_layers=2, max_length=12, dim_feedforward=16)
    return CaptioningTransformer(VOCAB, **{**args, **kwargs})


def test_scores_at_a_position_see_only_the_words_up_to_it():
    model = _model().eval()
    features = torch.randn(3, 4)
    captions = torch.tensor([[1, 3, 4, 2, 0], [1, 5, 2, 0, 0], [1, 3, 3, 5, 2]])
    scores = model(features, captions)
    assert scores.shape == (3, 5, len(VOCAB))
    changed = captions.clone()
    changed[:, 3:] = 4
    later = model(features, changed)
    assert torch.allclose(scores[:, :3], later[:, :3]) and not torch.allclose(scores[:, 3:], later[:, 3:])
    other_image = model(features + 1, captions)
    assert not torch.allclose(scores[:, 0], other_image[:, 0])     # the image reaches every position


def test_model_records_its_vocabulary_and_casts_features_to_its_dtype():
    model = _model().eval()
    assert model.idx_to_word == {0: "<NULL>", 1: "<START>", 2: "<END>", 3: "a", 4: "cat", 5: "dog"}
    features = torch.randn(2, 4)
    captions = torch.tensor([[1, 3, 4], [1, 5, 2]])
    # float64 features (NumPy's default) work with the float32 model, as the float32 values
    assert torch.equal(model(features.double(), captions), model(features, captions))
    assert np.array_equal(model.sample(features.double().numpy(), max_length=4),
                          model.sample(features.numpy(), max_length=4))


def test_null_inputs_give_no_gradient_to_the_null_embedding():
    # <NULL> is the embedding's padding_idx: captions padded with it never train its row.
    model = _model()
    captions = torch.tensor([[1, 3, 2, 0, 0], [1, 5, 4, 2, 0]])
    model(torch.randn(2, 4), captions).square().sum().backward()
    grad = model.embedding.weight.grad
    assert torch.all(grad[VOCAB["<NULL>"]] == 0)
    assert all(grad[VOCAB[w]].abs().sum() > 0 for w in ("<START>", "a", "cat", "dog", "<END>"))


def test_the_courses_defaults():
    # 4 heads, 2 layers, 50 positions, a 2048-wide feed-forward block, dropout 0.1
    model = CaptioningTransformer(VOCAB, input_dim=4, wordvec_dim=8)
    assert len(model.transformer.layers) == 2 and model.transformer.layers[0].self_attn.n_head == 4
    assert model.positional_encoding.pe.shape[1] == 50 == model.max_length
    assert model.transformer.layers[0].ffn.fc1.out_features == 2048
    assert {m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)} == {0.1}


def test_dropout_reaches_every_layer():
    # The positional encoding and each decoder layer's six dropouts use the model's rate.
    model = _model(dropout=0.3, num_layers=3)
    rates = [m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)]
    assert rates == [0.3] * (1 + 3 * 6)


def _course_init(module):
    # The 2025 course's CaptioningTransformer._init_weights, as its file states it: N(0, 0.02)
    # for every Linear and Embedding weight (the <NULL> row too), zero biases, LayerNorm at 1, 0.
    if isinstance(module, (torch.nn.Linear, torch.nn.Embedding)):
        module.weight.data.normal_(mean=0.0, std=0.02)
        if isinstance(module, torch.nn.Linear) and module.bias is not None:
            module.bias.data.zero_()
    elif isinstance(module, torch.nn.LayerNorm):
        module.bias.data.zero_()
        module.weight.data.fill_(1.0)


def test_padding_embedding_is_drawn_as_the_courses_and_never_trained():
    # The course draws the <NULL> row with the others; padding_idx keeps it out of training,
    # and the loss skips <NULL> targets, so it never moves.
    data = coco_arrays()
    null = data["word_to_idx"]["<NULL>"]
    torch.manual_seed(0)
    model = CaptioningTransformer(data["word_to_idx"], input_dim=16, wordvec_dim=8, num_heads=2,
                                  num_layers=1, max_length=30, dim_feedforward=16)
    start = model.embedding.weight.detach().clone()
    assert start[null].abs().min() > 0 and start[null].std() < 0.1
    solver = CaptioningSolverTransformer(model, data, data["idx_to_word"], num_epochs=3, batch_size=10,
                                         verbose=False, seed=0)
    solver.train()
    moved = (model.embedding.weight != start).any(dim=1)
    assert not moved[null] and moved[data["word_to_idx"]["<START>"]]      # other rows do train
    a, b = _model().transformer.layers
    assert a.ffn.fc1.weight.data_ptr() != b.ffn.fc1.weight.data_ptr()


def test_scores_do_not_depend_on_the_scores_at_null_targets():
    # The loss ignores positions whose target is <NULL>: changing those scores changes nothing.
    scores = torch.randn(2, 4, len(VOCAB), requires_grad=True)
    y = torch.tensor([[3, 4, 2, 0], [5, 2, 0, 0]])
    loss = temporal_cross_entropy(scores, y, y != VOCAB["<NULL>"])
    (grad,) = torch.autograd.grad(loss, scores)
    assert torch.all(grad[y == 0] == 0) and torch.all(grad[y != 0].abs().sum(-1) > 0)


def test_loss_averages_over_every_position():
    scores = torch.randn(2, 3, 4)
    y = torch.tensor([[1, 2, 0], [3, 0, 0]])
    mask = y != 0
    per = torch.nn.functional.cross_entropy(scores.reshape(6, 4), y.reshape(6), reduction="none")
    assert torch.isclose(temporal_cross_entropy(scores, y, mask), per[mask.reshape(6)].sum() / 6)


def test_sample_is_greedy_in_eval_mode_and_pads_after_end():
    model = _model(dropout=0.5)
    model.train()
    features = np.random.default_rng(0).standard_normal((4, 4)).astype(np.float32)
    captions = model.sample(features, max_length=6)
    assert model.training                                     # the flag is put back
    assert captions.dtype == np.int32 and captions.shape == (4, 6)
    # Greedy: feeding the sampled words back gives the same argmax at every step.
    model.eval()
    for row, feature in zip(captions, features):
        words = [VOCAB["<START>"]]
        for w in row:
            best = model(torch.as_tensor(feature[None]), torch.tensor([words]))[0, -1].argmax().item()
            if words[-1] == VOCAB["<END>"] and len(words) > 1:
                assert w == VOCAB["<NULL>"]
                continue
            assert w == best
            words.append(best)
    assert np.array_equal(captions, model.sample(features, max_length=6))


def test_sample_runs_in_eval_mode_whatever_the_mode_and_restores_it():
    # With dropout active the greedy words would change from draw to draw; sample() turns it
    # off, so any seed gives the evaluation-mode captions, and it leaves the flag as it was.
    model = _model(dropout=0.5)
    with torch.no_grad():
        for p in model.parameters():       # weights large enough that dropout moves the argmax
            p.normal_()
    features = np.random.default_rng(1).standard_normal((4, 4)).astype(np.float32)
    model.eval()
    want = model.sample(features, max_length=6)
    assert not model.training
    model.train()
    inputs = torch.as_tensor(features), torch.tensor([[1, 3, 3, 4, 5]] * 4)
    assert not torch.equal(model(*inputs).argmax(-1), model.eval()(*inputs).argmax(-1))
    model.train()
    for seed in range(3):
        torch.manual_seed(seed)
        assert np.array_equal(model.sample(features, max_length=6), want)
        assert model.training


def test_sample_feeds_back_its_words_after_start_and_pads_after_end(monkeypatch):
    # A scripted model that goes on after <END> (as a real one may): each row's caption still
    # stops at its first <END>, later words become <NULL>, and once every row has ended no
    # further step is run.
    model = _model()
    a, cat, dog, end, start = (VOCAB[w] for w in ("a", "cat", "dog", "<END>", "<START>"))
    script = torch.tensor([[a, cat, end, dog, dog, a, a], [dog, a, a, a, end, cat, dog]])
    calls = []

    def scripted(features, partial):
        calls.append(partial.clone())
        N, T = partial.shape
        scores = torch.zeros(N, T, len(VOCAB))
        scores[torch.arange(N), -1, script[:, T - 1]] = 1
        return scores
    monkeypatch.setattr(model, "forward", scripted)
    captions = model.sample(np.zeros((2, 4), np.float32), max_length=7)
    np.testing.assert_array_equal(captions, [[a, cat, end, 0, 0, 0, 0], [dog, a, a, a, end, 0, 0]])
    assert len(calls) == 5
    for t, partial in enumerate(calls):     # <START>, then the words sampled so far
        assert torch.equal(partial, torch.cat([torch.full((2, 1), start), script[:, :t]], dim=1))


def test_overfits_small_data_and_samples_its_captions():
    # The notebook's "overfit a small sample" check at a size that runs in seconds: the loss
    # (the course's mean over all positions) ends near zero and sampling gives back the captions.
    data = coco_arrays()
    torch.manual_seed(0)
    model = CaptioningTransformer(data["word_to_idx"], input_dim=16, wordvec_dim=64, num_heads=2,
                                  num_layers=2, max_length=30, dim_feedforward=256)
    solver = CaptioningSolverTransformer(model, data, data["idx_to_word"], num_epochs=200, batch_size=25,
                                         learning_rate=2e-3, verbose=False, seed=0)
    solver.train()
    assert len(solver.loss_history) == 200
    assert solver.loss_history[0] > 1.0 and np.mean(solver.loss_history[-5:]) < 0.05
    images = np.unique(data["train_image_idxs"])
    sampled = decode_captions(model.sample(data["train_features"][images]), data["idx_to_word"])
    for image, caption in zip(images, sampled):
        truth = data["train_captions"][data["train_image_idxs"] == image][0]
        assert "<START> " + caption == decode_captions(truth, data["idx_to_word"])


def test_a_non_finite_loss_stops_training():
    data = coco_arrays()
    model = CaptioningTransformer(data["word_to_idx"], input_dim=16, wordvec_dim=8, num_heads=2,
                                  num_layers=1, max_length=20, dim_feedforward=16)
    with torch.no_grad():
        model.output.bias[0] = float("nan")
    solver = CaptioningSolverTransformer(model, data, data["idx_to_word"], verbose=False)
    with pytest.raises(TrainingDivergedError, match="loss is nan at iteration 1"):
        solver.train()


@pytest.mark.parametrize("call, message", [
    (lambda m: m(torch.zeros(2, 5), torch.zeros(2, 3, dtype=torch.long)), r"features must be \(N, 4\)"),
    (lambda m: m(torch.zeros(2, 4), torch.zeros(3, 3, dtype=torch.long)), r"captions must be \(N, T\)"),
    (lambda m: m(torch.zeros(2, 4), torch.zeros(2, 13, dtype=torch.long)), "exceed max_length 12"),
    (lambda m: m(torch.zeros(1, 4), torch.tensor([[1, 6]])), r"out of range: \[6\]"),
    (lambda m: m(torch.zeros(1, 4), torch.tensor([[1, -1, 3]])), r"out of range: \[-1\]"),
    (lambda m: m(torch.zeros(1, 4), torch.tensor([[1.0, 2.0]])), "integer word indices"),
    (lambda m: m.sample(np.zeros((1, 4)), max_length=13), r"max_length must be in \[1, 12\]"),
])
def test_bad_inputs_get_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call(_model())


def _data_model(data, **kwargs):
    torch.manual_seed(0)
    args = dict(input_dim=16, wordvec_dim=8, num_heads=2, num_layers=1, max_length=30, dim_feedforward=16)
    return CaptioningTransformer(data["word_to_idx"], **{**args, **kwargs})


def _data_with_null_at(index):
    # The stand-in data with <NULL> moved to `index` (swapped with the word there), so that a
    # loss masking index 0 rather than <NULL>'s index would show.
    data = coco_arrays()
    perm = np.arange(len(WORDS))
    perm[[0, index]] = [index, 0]
    for split in ("train", "val"):
        data[f"{split}_captions"] = perm[data[f"{split}_captions"]].astype(np.int32)
    data["word_to_idx"] = {w: int(perm[i]) for i, w in enumerate(WORDS)}
    data["idx_to_word"] = [WORDS[j] for j in perm]      # perm is its own inverse
    return data


def test_the_recorded_loss_is_the_masked_cross_entropy_of_the_seeded_minibatch():
    # Teacher forcing: the scores at t are scored against word t + 1, skipping <NULL> targets,
    # averaged over every position (the course's); the minibatch is the one the seed draws.
    data = _data_with_null_at(7)
    null = data["word_to_idx"]["<NULL>"]
    n = len(data["train_captions"])
    model = _data_model(data, dropout=0.0)
    captions, features, _ = sample_coco_minibatch(data, n, "train", generator(3))
    captions = torch.as_tensor(captions, dtype=torch.long)
    with torch.no_grad():
        scores = model(torch.as_tensor(features), captions[:, :-1])
    targets = captions[:, 1:]
    per = torch.nn.functional.cross_entropy(scores.reshape(-1, scores.shape[-1]), targets.reshape(-1),
                                            reduction="none")
    want = per[(targets != null).reshape(-1)].sum().item() / per.numel()
    solver = CaptioningSolverTransformer(model, data, data["idx_to_word"], batch_size=n, num_epochs=1,
                                         verbose=False, seed=3)
    solver.train()
    assert solver.loss_history == [pytest.approx(want, rel=1e-5)]


def test_a_seed_repeats_the_run_and_another_seed_does_not():
    data = coco_arrays()

    def run(seed):
        solver = CaptioningSolverTransformer(_data_model(data, dropout=0.0), data, data["idx_to_word"], batch_size=5,
                                             num_epochs=1, verbose=False, seed=seed)
        solver.train()
        return solver.loss_history
    np.random.seed(0)       # a solver ignoring its seed would follow np.random: runs would differ
    first = run(1)
    assert run(1) == first and run(2) != first


def test_the_first_adam_step_moves_parameters_by_the_learning_rate():
    # Adam's first update is lr * g / (|g| + eps): lr for every weight with a gradient well
    # above eps, so the largest change is the learning rate given (not Adam's default 1e-3).
    data = coco_arrays()
    model = _data_model(data, dropout=0.0)
    before = [p.detach().clone() for p in model.parameters()]
    solver = CaptioningSolverTransformer(model, data, data["idx_to_word"], learning_rate=0.05,
                                         batch_size=len(data["train_captions"]), num_epochs=1, verbose=False)
    solver.train()
    moved = max((p.detach() - b).abs().max().item() for p, b in zip(model.parameters(), before))
    assert moved == pytest.approx(0.05, rel=1e-4)


def test_train_puts_the_model_in_training_mode():
    data = coco_arrays()
    model = _data_model(data).eval()
    CaptioningSolverTransformer(model, data, data["idx_to_word"], num_epochs=0, verbose=False).train()
    assert model.training


@pytest.mark.parametrize("verbose", [False, True])
def test_verbose_decides_whether_progress_is_printed(verbose, capsys):
    data = coco_arrays()
    solver = CaptioningSolverTransformer(_data_model(data), data, data["idx_to_word"], batch_size=12,
                                         num_epochs=1, print_every=1, verbose=verbose)
    solver.train()
    out = capsys.readouterr().out
    if verbose:
        assert "(Iteration 1 / 2) loss: " in out and "(Iteration 2 / 2) loss: " in out
    else:
        assert out == ""


@pytest.mark.parametrize("change, message", [
    (lambda d: d.pop("train_image_idxs"), "data must hold .*'train_image_idxs' is missing"),
    (lambda d: d.update(train_image_idxs=d["train_image_idxs"][:-1]), "24 train_captions but 23 train_image_idxs"),
])
def test_inconsistent_training_data_is_refused(change, message):
    data = coco_arrays()
    change(data)
    with pytest.raises(ValueError, match="CaptioningSolverTransformer: " + message):
        CaptioningSolverTransformer(_model(input_dim=16), data, data["idx_to_word"])


@pytest.mark.parametrize("max_length", [0, -1, 2.5, 13])
def test_sample_lengths_outside_one_to_the_models_max_length_are_refused(max_length):
    with pytest.raises(ValueError, match=r"max_length must be in \[1, 12\] \(the model's max_length\)"):
        _model().sample(np.zeros((1, 4), np.float32), max_length=max_length)


def test_lengths_at_the_bounds_are_accepted():
    # Captions as long as the model's max_length are scored; one to max_length words sampled,
    # 30 by default (the course's).
    model = _model()
    assert model(torch.zeros(2, 4), torch.ones(2, 12, dtype=torch.long)).shape == (2, 12, len(VOCAB))
    for length in (1, 12):
        assert model.sample(np.zeros((2, 4), np.float32), max_length=length).shape == (2, length)
    assert _model(max_length=30).sample(np.zeros((1, 4), np.float32)).shape == (1, 30)


def test_sampling_needs_a_start_token():
    model = CaptioningTransformer({"<NULL>": 0, "<END>": 1, "cat": 2}, input_dim=4, wordvec_dim=8, num_heads=2,
                                  num_layers=1, max_length=12, dim_feedforward=16)
    with pytest.raises(ValueError, match="the vocabulary has no '<START>' token"):
        model.sample(np.zeros((1, 4), np.float32), max_length=5)


def test_bad_solver_options_are_refused():
    data = coco_arrays()
    with pytest.raises(ValueError, match=r"unrecognized option\(s\) \['lr'\]"):
        CaptioningSolverTransformer(_model(input_dim=16), data, data["idx_to_word"], lr=1e-3)


def test_sample_stops_each_caption_at_its_end(monkeypatch):
    model = _model()

    def scripted(features, partial):          # row 0 ends after two words, row 1 after four
        N, T = partial.shape
        scores = torch.zeros(N, T, len(VOCAB))
        ends = torch.tensor([2, 4])
        word = torch.where(T - 1 >= ends, torch.tensor(VOCAB["<END>"]), torch.tensor(VOCAB["dog"]))
        scores[torch.arange(N), -1, word] = 1
        return scores
    monkeypatch.setattr(model, "forward", scripted)
    captions = model.sample(np.zeros((2, 4), np.float32), max_length=7)
    d, e = VOCAB["dog"], VOCAB["<END>"]
    np.testing.assert_array_equal(captions, [[d, d, e, 0, 0, 0, 0], [d, d, d, d, e, 0, 0]])


def test_construction_draws_the_weights_in_the_courses_order():
    # The course applies _init_weights (N(0, 0.02) weights, zero biases, the <NULL> row
    # included) before it makes `output`, which so keeps PyTorch's default init, and a seeded
    # construction draws every weight in that order: the same seed gives the course's model.
    model = _model()
    bound = 1 / math.sqrt(8)                       # nn.Linear's default: U(-1/sqrt(W), 1/sqrt(W))
    w, b = model.output.weight, model.output.bias
    assert w.abs().max() <= bound and b.abs().max() <= bound
    assert w.std() > 0.1 and b.abs().min() > 0     # not N(0, 0.02), bias not zeroed
    torch.manual_seed(0)
    course = torch.nn.Module()
    course.visual_projection = torch.nn.Linear(4, 8)
    course.embedding = torch.nn.Embedding(len(VOCAB), 8, padding_idx=VOCAB["<NULL>"])
    course.positional_encoding = PositionalEncoding(8, max_len=12)
    course.transformer = TransformerDecoder(TransformerDecoderLayer(8, 2, dim_feedforward=16), num_layers=2)
    course.apply(_course_init)
    course.output = torch.nn.Linear(8, len(VOCAB))
    mine, theirs = dict(model.named_parameters()), dict(course.named_parameters())
    assert list(mine) == list(theirs)
    for name in mine:
        assert torch.equal(mine[name], theirs[name]), name


@pytest.mark.parametrize("vocab, message", [
    ({"<NULL>": 0, "<START>": 7, "a": 2}, r"indices must be 0..2, but \{'<START>': 7\} lie outside"),
    ({"<NULL>": 5, "<START>": 1, "a": 2}, r"\{'<NULL>': 5\} lie outside"),
    ({"<NULL>": 0, "<START>": 1, "<END>": -1}, r"\{'<END>': -1\} lie outside"),
    ({"<NULL>": 0, "a": "1", "b": 2}, "values must be integer indices"),
    ({"<NULL>": 0, "a": 1, "b": 1}, "one index to several words"),
    (["<NULL>"], "must be a dict of word -> index"),
    ({"a": 0}, "holds '<NULL>'"),
])
def test_the_vocabulary_is_checked_when_the_model_is_made(vocab, message):
    # Checked as the CaptioningRNN checks it, rather than failing later in sample() (a <START>
    # of 7 is "captions holds indices out of range") or in nn.Embedding (a bare AssertionError).
    with pytest.raises(ValueError, match="CaptioningTransformer: .*" + message):
        CaptioningTransformer(vocab, input_dim=4, wordvec_dim=8, num_heads=2, num_layers=1,
                              max_length=12, dim_feedforward=16)


def test_the_notebooks_vocabulary_with_a_gap_is_accepted():
    model = CaptioningTransformer({"<NULL>": 0, "cat": 2, "dog": 3}, input_dim=4, wordvec_dim=8,
                                  num_heads=2, num_layers=1, max_length=12, dim_feedforward=16)
    assert model.vocab_size == 3


@pytest.mark.parametrize("option, value, message", [
    ("print_every", 0, "print_every must be a positive integer, got 0"),
    ("print_every", 2.5, "print_every must be a positive integer, got 2.5"),
    ("batch_size", 2.5, "batch_size must be a positive integer, got 2.5"),
    ("batch_size", True, "batch_size must be a positive integer, got True"),
    ("batch_size", 0, "batch_size must be a positive integer, got 0"),
    ("num_epochs", 0.5, "num_epochs must be a non-negative integer, got 0.5"),
    ("num_epochs", -1, "num_epochs must be a non-negative integer, got -1"),
    ("learning_rate", "1e-3", "learning_rate must be a positive number, got '1e-3'"),
    ("learning_rate", 0, "learning_rate must be a positive number, got 0"),
    ("learning_rate", -1e-3, "learning_rate must be a positive number"),
    ("learning_rate", float("nan"), "learning_rate must be a positive number, got nan"),
])
def test_solver_options_of_the_wrong_kind_are_refused(option, value, message):
    # As CaptioningSolverPytorch checks them: print_every = 0 used to divide by zero after the
    # first update, 2.5 or True were truncated to a batch size, 0.5 epochs to none.
    data = coco_arrays()
    with pytest.raises(ValueError, match=r"CaptioningSolverTransformer: " + message):
        CaptioningSolverTransformer(_model(input_dim=16), data, data["idx_to_word"], **{option: value})


def test_the_solvers_defaults_are_the_courses():
    data = coco_arrays()
    solver = CaptioningSolverTransformer(_data_model(data), data, data["idx_to_word"])
    assert (solver.learning_rate, solver.batch_size, solver.num_epochs, solver.print_every) == (1e-3, 100, 10, 10)
    assert solver.verbose is True and solver.epoch == 0 and solver.loss_history == []


def test_epochs_are_counted():
    data = coco_arrays()
    solver = CaptioningSolverTransformer(_data_model(data), data, data["idx_to_word"], batch_size=12, num_epochs=2,
                                         verbose=False)
    solver.train()
    assert solver.epoch == 2 and len(solver.loss_history) == 4      # 24 captions: 2 batches an epoch


def test_whole_number_solver_options_become_ints():
    data = coco_arrays()
    solver = CaptioningSolverTransformer(_model(input_dim=16), data, data["idx_to_word"], batch_size=np.int64(5),
                                         num_epochs=2.0, print_every=3.0, learning_rate=np.float32(1e-3))
    assert (solver.batch_size, solver.num_epochs, solver.print_every) == (5, 2, 3)
    assert all(type(v) is int for v in (solver.batch_size, solver.num_epochs, solver.print_every))
    assert type(solver.learning_rate) is float
