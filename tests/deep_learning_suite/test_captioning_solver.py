import numpy as np
import pytest

from deep_learning_suite.captioning_rnn import CaptioningRNN
from deep_learning_suite.captioning_solver import CaptioningSolver
from deep_learning_suite.coco import decode_captions, load_coco_data
from deep_learning_suite.trainer import TrainingDivergedError
from tests._coco_files import coco_arrays, write_coco_dir


def _model(data, cell_type="rnn", seed=0, wordvec_dim=32, hidden_dim=64):
    return CaptioningRNN(data["word_to_idx"], input_dim=data["train_features"].shape[1],
                         wordvec_dim=wordvec_dim, hidden_dim=hidden_dim, cell_type=cell_type, seed=seed)


@pytest.mark.parametrize("cell_type", ["rnn", "lstm"])
def test_overfits_small_data_and_samples_its_captions(tmp_path, cell_type):
    # The notebooks' "overfit small data" check, on COCO-format files written here: the loss
    # falls from about T * log(V) to near zero, and sampling reproduces the training captions.
    pytest.importorskip("h5py")
    write_coco_dir(tmp_path)
    data = load_coco_data(tmp_path, max_train=50, seed=0)
    # Over 4 seeds the last losses were 0.09-0.11 (RNN) and 0.28-0.33 (LSTM) at this size.
    model = _model(data, cell_type, wordvec_dim=64, hidden_dim=128)
    solver = CaptioningSolver(model, data, update_rule="adam", num_epochs=50, batch_size=25,
                              optim_config={"learning_rate": 5e-3}, lr_decay=0.95,
                              verbose=False, seed=0)
    solver.train()
    assert len(solver.loss_history) == 50 * 2
    assert solver.loss_history[0] > 0.8 * 8 * np.log(len(data["idx_to_word"]))
    assert np.mean(solver.loss_history[-5:]) < 1.0
    images = np.unique(data["train_image_idxs"])
    sampled = decode_captions(model.sample(data["train_features"][images]), data["idx_to_word"])
    for image, caption in zip(images, sampled):
        truth = data["train_captions"][data["train_image_idxs"] == image][0]
        # sample() starts after <START>; decode keeps <END>
        assert "<START> " + caption == decode_captions(truth, data["idx_to_word"])


def test_learning_rate_decays_every_epoch():
    data = coco_arrays()
    solver = CaptioningSolver(_model(data), data, update_rule="sgd", num_epochs=3, batch_size=10,
                              optim_config={"learning_rate": 1e-2}, lr_decay=0.5, verbose=False, seed=0)
    solver.train()
    assert len(solver.loss_history) == 3 * (24 // 10)
    assert all(c["learning_rate"] == pytest.approx(1e-2 * 0.5 ** 3) for c in solver.optim_configs.values())


def test_seed_repeats_a_run(capsys):
    data = coco_arrays()
    runs = []
    for _ in range(2):
        solver = CaptioningSolver(_model(data), data, update_rule="adam", num_epochs=2, batch_size=8,
                                  print_every=2, seed=4)
        solver.train()
        runs.append(solver.loss_history)
    assert runs[0] == runs[1]
    out = capsys.readouterr().out
    assert "(Iteration 1 / 6) loss:" in out and "(Iteration 5 / 6)" in out


def test_a_non_finite_loss_stops_training_with_advice():
    data = coco_arrays()
    model = _model(data)
    model.params["W_vocab"][0, 0] = np.nan
    solver = CaptioningSolver(model, data, verbose=False, optim_config={"learning_rate": 0.3})
    with pytest.raises(TrainingDivergedError, match=r"loss is nan at iteration 1.*now 0.3"):
        solver.train()


@pytest.mark.parametrize("kwargs, message", [
    ({"num_epoch": 3}, r"unrecognized option\(s\) \['num_epoch'\]"),
    ({"update_rule": "adamm"}, 'invalid update_rule "adamm"'),
    ({"batch_size": 0}, "batch_size must be a positive integer, got 0"),
    # int() used to truncate these: 2.5 trained with 2, 0.5 epochs trained none
    ({"batch_size": 2.5}, "batch_size must be a positive integer, got 2.5"),
    ({"batch_size": "5"}, "batch_size must be a positive integer, got '5'"),
    ({"num_epochs": 0.5}, "num_epochs must be a non-negative integer, got 0.5"),
    ({"num_epochs": -1}, "num_epochs must be a non-negative integer"),
    # used to divide by zero at the first iteration
    ({"print_every": 0}, "print_every must be a positive integer, got 0"),
    ({"print_every": 1.5}, "print_every must be a positive integer"),
    # used to fail with TypeError only when the first epoch ended
    ({"lr_decay": "0.9"}, r"lr_decay must be a number \(1.0 for no decay\), got '0.9'"),
    ({"lr_decay": None}, "lr_decay must be a number"),
    ({"lr_decay": True}, "lr_decay must be a number"),
])
def test_bad_options_are_refused(kwargs, message):
    data = coco_arrays()
    with pytest.raises(ValueError, match=message):
        CaptioningSolver(_model(data), data, **kwargs)


def test_data_without_training_captions_is_refused():
    data = coco_arrays()
    del data["train_image_idxs"]
    with pytest.raises(ValueError, match="'train_image_idxs' is missing"):
        CaptioningSolver(_model(coco_arrays()), data)


def test_whole_number_options_become_ints():
    data = coco_arrays()
    solver = CaptioningSolver(_model(data), data, batch_size=10.0, num_epochs=np.int64(2),
                              print_every=np.int32(3), verbose=False, seed=0)
    assert (solver.batch_size, solver.num_epochs, solver.print_every) == (10, 2, 3)
    assert all(type(v) is int for v in (solver.batch_size, solver.num_epochs, solver.print_every))
    solver.train()
    assert len(solver.loss_history) == 2 * (24 // 10)


@pytest.mark.parametrize("update_rule", [
    "sgd", "adam",
    # A rule of one's own that uses config['learning_rate'] as given: an np.float64 there
    # used to make the weights float64, and affine_forward then refused float32 features.
    lambda w, dw, config: (w - config["learning_rate"] * dw, config),
])
def test_numpy_scalar_hyperparameters_keep_float32_weights(update_rule):
    data = coco_arrays()
    model = _model(data)
    solver = CaptioningSolver(model, data, update_rule=update_rule, num_epochs=2, batch_size=10,
                              optim_config={"learning_rate": np.float64(1e-2)},
                              lr_decay=np.float64(0.5), verbose=False, seed=0)
    assert type(solver.lr_decay) is float and type(solver.optim_config["learning_rate"]) is float
    solver.train()
    assert all(v.dtype == np.float32 for v in model.params.values())
    for config in solver.optim_configs.values():
        assert type(config["learning_rate"]) is float
        assert config["learning_rate"] == pytest.approx(1e-2 * 0.5 ** 2)


@pytest.mark.parametrize("idxs, message", [
    # NumPy would wrap -1 round to the last image, silently pairing captions with it
    (lambda n: np.full(n, -1), r"out of range, e.g. \[-1, -1"),
    # this used to stop training mid-epoch with a bare IndexError
    (lambda n: np.full(n, 12), r"out of range, e.g. \[12.*0 <= index < 12"),
    # index 0 is a valid row: only the one bad index is counted and listed
    (lambda n: np.r_[np.zeros(n - 1, int), 12], r"holds 1 index\(es\) out of range, e.g. \[12\];"),
    (lambda n: np.zeros(n), "must hold integer rows of train_features, got dtype float64"),
])
def test_image_indices_must_be_rows_of_the_features(idxs, message):
    data = coco_arrays()
    data["train_image_idxs"] = idxs(len(data["train_captions"]))
    with pytest.raises(ValueError, match=message):
        CaptioningSolver(_model(data), data, verbose=False)


def test_learning_rate_decays_after_each_epochs_last_minibatch():
    # 24 captions in minibatches of 8 are 3 iterations per epoch: the rule sees the first
    # epoch's rate on all three, and the decayed one only from the fourth.
    data = coco_arrays()
    model = _model(data)
    seen = []

    def rule(w, dw, config):
        seen.append(config["learning_rate"])
        return w, config
    solver = CaptioningSolver(model, data, update_rule=rule, num_epochs=2, batch_size=8,
                              optim_config={"learning_rate": 1.0}, lr_decay=0.5, verbose=False, seed=0)
    solver.train()
    assert seen[::len(model.params)] == [1.0, 1.0, 1.0, 0.5, 0.5, 0.5]
    assert solver.epoch == 2


def test_a_rules_numpy_learning_rate_is_decayed_to_a_float():
    data = coco_arrays()

    def rule(w, dw, config):
        # leaves an np.float64 behind, as a rule computing its rate with NumPy would
        config["learning_rate"] = np.float64(config["learning_rate"])
        return w, config
    solver = CaptioningSolver(_model(data), data, update_rule=rule, num_epochs=1, batch_size=8,
                              optim_config={"learning_rate": 1.0}, lr_decay=0.5, verbose=False, seed=0)
    solver.train()
    assert all(type(c["learning_rate"]) is float for c in solver.optim_configs.values())
    # the model's loss is a NumPy scalar; the history holds plain floats
    assert len(solver.loss_history) == 3 and all(type(v) is float for v in solver.loss_history)


def test_caption_and_image_index_lengths_must_match():
    data = coco_arrays()
    data["train_image_idxs"] = data["train_image_idxs"][:-1]
    with pytest.raises(ValueError, match="24 train_captions but 23 train_image_idxs; they must match"):
        CaptioningSolver(_model(data), data, verbose=False)


def test_one_caption_is_enough_and_none_is_refused():
    data = coco_arrays()
    one = dict(data, train_captions=data["train_captions"][:1], train_image_idxs=data["train_image_idxs"][:1])
    solver = CaptioningSolver(_model(data), one, num_epochs=2, batch_size=1, verbose=False, seed=0)
    solver.train()
    assert len(solver.loss_history) == 2
    none = dict(data, train_captions=data["train_captions"][:0], train_image_idxs=data["train_image_idxs"][:0])
    with pytest.raises(ValueError, match="CaptioningSolver: train_captions is empty"):
        CaptioningSolver(_model(data), none, verbose=False)


def test_documented_defaults(capsys):
    # update_rule 'sgd', lr_decay 1.0, batch_size 100, num_epochs 10, print_every 10, verbose,
    # seen through what a run does: 200 captions are 2 minibatches of 100 per epoch.
    data = coco_arrays(num_train_images=100)
    model = _model(data, wordvec_dim=4, hidden_dim=4)
    batches = []
    loss = model.loss

    def recording_loss(features, captions):
        batches.append(len(captions))
        return loss(features, captions)
    model.loss = recording_loss
    solver = CaptioningSolver(model, data, optim_config={"learning_rate": 0.1})
    solver.train()
    assert batches == [100] * 20
    printed = [line.split(" / ")[0] for line in capsys.readouterr().out.splitlines()]
    assert printed == ["(Iteration 1", "(Iteration 11"]
    for config in solver.optim_configs.values():
        # sgd keeps no state (adam would add m, v and t) and the rate never decayed
        assert config == {"learning_rate": 0.1}
