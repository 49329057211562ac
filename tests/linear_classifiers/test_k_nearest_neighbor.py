import numpy as np
import pytest
import torch

from deep_learning_suite.utils import rel_error
from linear_classifiers import k_nearest_neighbor
from linear_classifiers.k_nearest_neighbor import KNearestNeighbor, best_k, cross_validate_k


def brute_force_distances(X_test, X_train):
    """Reference: one np.linalg.norm per pair, in float64."""
    X_test, X_train = X_test.astype(np.float64), X_train.astype(np.float64)
    return np.array([[np.linalg.norm(a - b) for b in X_train] for a in X_test])


@pytest.mark.parametrize("num_train, num_test, D", [(20, 7, 5), (1, 3, 4), (13, 1, 30), (40, 9, 1)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_three_distance_versions_agree_with_brute_force(rng, num_train, num_test, D, dtype):
    X_train = (3 * rng.standard_normal((num_train, D)) + 1).astype(dtype)
    X_test = (3 * rng.standard_normal((num_test, D)) + 1).astype(dtype)
    knn = KNearestNeighbor().train(X_train, rng.integers(4, size=num_train))
    ref = brute_force_distances(X_test, X_train)
    tol = 1e-6 if dtype == np.float64 else 1e-5
    versions = [knn.compute_distances_two_loops, knn.compute_distances_one_loop, knn.compute_distances_no_loops]
    dists = [f(X_test) for f in versions]
    for d in dists:
        assert d.shape == (num_test, num_train)
        assert d.dtype == dtype
        assert rel_error(d, ref) < tol
    assert rel_error(dists[0], dists[1]) < tol
    assert rel_error(dists[0], dists[2]) < tol
    # torch.cdist is an independent implementation of the same matrix.
    assert rel_error(dists[2], torch.cdist(torch.tensor(X_test, dtype=torch.float64),
                                           torch.tensor(X_train, dtype=torch.float64)).numpy()) < tol


def test_no_loop_distance_is_never_nan_and_self_distance_is_tiny(rng):
    # The expansion ||a||^2 + ||b||^2 - 2ab can round to a tiny negative number; it must be
    # clipped before the square root rather than give NaN.
    X = 1e3 * rng.standard_normal((30, 50)) + 5e3
    knn = KNearestNeighbor().train(X, np.arange(30))
    with np.errstate(invalid="raise"):
        d = knn.compute_distances_no_loops(X)
    assert np.all(np.isfinite(d)) and np.all(d >= 0)
    assert np.all(np.diag(d) <= 1e-6 * np.linalg.norm(X, axis=1))
    assert np.array_equal(knn.predict(X, k=1), np.arange(30))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_no_loop_distance_survives_a_large_common_offset(rng, dtype):
    # Nearby points far from the origin: expanding around the origin would lose every
    # digit (even in float64 here); centring on the training mean keeps them.
    base = 1e3 + rng.standard_normal(64) if dtype == np.float32 else 1e7 + rng.standard_normal(64)
    X_train = (base + 1e-2 * rng.standard_normal((10, 64))).astype(dtype)
    X_test = (base + 1e-2 * rng.standard_normal((4, 64))).astype(dtype)
    knn = KNearestNeighbor().train(X_train, np.zeros(10, dtype=int))
    ref = brute_force_distances(X_test, X_train)
    tol = 1e-4 if dtype == np.float32 else 1e-6
    assert rel_error(knn.compute_distances_no_loops(X_test), ref) < tol


def test_no_loop_distance_follows_retraining(rng):
    # The centred training copy is cached between calls; a new train() must replace it.
    knn = KNearestNeighbor()
    X_test = rng.standard_normal((4, 6))
    for offset in (0.0, 5.0):
        X_train = rng.standard_normal((9, 6)) + offset
        knn.train(X_train, np.arange(9) % 3)
        for _ in range(2):
            ref = np.linalg.norm(X_test[:, None, :] - X_train[None, :, :], axis=2)
            assert rel_error(knn.compute_distances_no_loops(X_test), ref) < 1e-9


@pytest.mark.parametrize("replace", [
    lambda X, y, rng: (X + 5.0, y),                                  # same shape, new values
    lambda X, y, rng: (X[:5], y[:5]),                                # a subset: a view of the old copy
    lambda X, y, rng: (rng.standard_normal((14, 6)), np.arange(14) % 4),
], ids=["shifted", "subset", "more rows"])
def test_assigning_a_new_x_train_rebuilds_the_no_loop_cache(rng, replace):
    # The no-loop distances cache the centred training data; a user may swap the data by
    # attribute assignment instead of train(), and the cache must follow.
    knn = KNearestNeighbor().train(rng.standard_normal((9, 6)), np.arange(9) % 3)
    X_test = rng.standard_normal((4, 6))
    knn.predict(X_test, k=3)                       # builds the cache from the first data
    knn.X_train, knn.y_train = replace(knn.X_train, knn.y_train, rng)
    for _ in range(2):
        dists = knn.compute_distances_no_loops(X_test)
        assert dists.shape == (4, knn.X_train.shape[0])
        assert rel_error(dists, brute_force_distances(X_test, knn.X_train)) < 1e-9
    assert np.array_equal(knn.predict(X_test, k=3), knn.predict(X_test, k=3, num_loops=2))


def test_an_assigned_x_train_is_copied_so_editing_it_in_place_changes_nothing(rng):
    knn = KNearestNeighbor().train(rng.standard_normal((9, 6)), np.arange(9) % 3)
    A = rng.standard_normal((7, 6))
    knn.X_train, knn.y_train = A, np.arange(7) % 3
    X_test = rng.standard_normal((4, 6))
    before = knn.compute_distances_no_loops(X_test)        # builds the cache from A
    A += 5.0
    assert rel_error(knn.compute_distances_no_loops(X_test), before) < 1e-12
    assert rel_error(knn.compute_distances_two_loops(X_test), before) < 1e-12
    assert not knn.X_train.flags.writeable
    knn.X_train = np.arange(42, dtype=np.uint8).reshape(7, 6)          # pixels become float64, as in train
    assert knn.X_train.dtype == np.float64
    with pytest.raises(ValueError, match=r"X_train must be 2-D \(N, D\)"):
        knn.X_train = np.zeros(6)


def test_integer_pixels_do_not_wrap_around():
    X_train = np.array([[250, 0], [0, 0]], dtype=np.uint8)
    X_test = np.array([[0, 0]], dtype=np.uint8)
    knn = KNearestNeighbor().train(X_train, np.array([0, 1]))
    for f in (knn.compute_distances_two_loops, knn.compute_distances_one_loop, knn.compute_distances_no_loops):
        assert np.allclose(f(X_test), [[250.0, 0.0]])


def test_predict_labels_majority_vote_and_ties_to_smaller_label():
    knn = KNearestNeighbor().train(np.zeros((6, 1)), np.array([3, 1, 1, 3, 2, 0]))
    # Distances chosen so the ranking is 0, 1, 2, 3, 4, 5 (labels 3, 1, 1, 3, 2, 0).
    dists = np.array([[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]])
    assert knn.predict_labels(dists, k=1).tolist() == [3]
    assert knn.predict_labels(dists, k=2).tolist() == [1]  # 3 vs 1 tie -> 1
    assert knn.predict_labels(dists, k=3).tolist() == [1]  # 1 wins 2 to 1
    assert knn.predict_labels(dists, k=4).tolist() == [1]  # 1 and 3 tie 2-2 -> 1
    assert knn.predict_labels(dists, k=6).tolist() == [1]  # 3, 1 tie at 2, above 2 and 0
    reversed_dists = dists[:, ::-1].copy()  # ranking labels 0, 2, 3, 1, 1, 3
    assert knn.predict_labels(reversed_dists, k=3).tolist() == [0]  # three-way tie -> 0
    assert knn.predict_labels(reversed_dists, k=5).tolist() == [1]


def test_predict_labels_ties_on_every_one_of_40_rows(rng):
    # Each test row has, nearest first, a training sample of label b, one of a, one of b,
    # one of a (a < b), then the rest far away: k = 1 and k = 3 pick b, the 2-2 tie of
    # k = 4 goes to a although b is nearer. 40 rows, so any blocking of rows is crossed.
    y_train = np.repeat(np.arange(5), 4)
    knn = KNearestNeighbor().train(np.zeros((20, 1)), y_train)
    num_test = 40
    dists = 1.0 + rng.random((num_test, 20))
    smaller, larger = np.empty(num_test, dtype=np.int64), np.empty(num_test, dtype=np.int64)
    for i in range(num_test):
        a, b = np.sort(rng.choice(5, size=2, replace=False))
        b1, b2 = rng.choice(np.flatnonzero(y_train == b), size=2, replace=False)
        a1, a2 = rng.choice(np.flatnonzero(y_train == a), size=2, replace=False)
        dists[i, [b1, a1, b2, a2]] = [0.1, 0.2, 0.3, 0.4]
        smaller[i], larger[i] = a, b
    assert np.array_equal(knn.predict_labels(dists, k=1), larger)
    assert np.array_equal(knn.predict_labels(dists, k=3), larger)     # b wins 2 to 1
    assert np.array_equal(knn.predict_labels(dists, k=4), smaller)    # 2-2: the smaller label
    # The same rows in any order and any number give the same answers row by row.
    perm = rng.permutation(num_test)
    assert np.array_equal(knn.predict_labels(dists[perm], k=4), smaller[perm])
    assert np.array_equal(knn.predict_labels(np.tile(dists, (3, 1)), k=4), np.tile(smaller, 3))


def test_predict_labels_equal_distances_break_by_training_order():
    knn = KNearestNeighbor().train(np.zeros((3, 2)), np.array([2, 0, 1]))
    assert knn.predict_labels(np.zeros((2, 3)), k=1).tolist() == [2, 2]


@pytest.mark.parametrize("k", [1, 3, 7])
def test_predict_matches_brute_force_vote_for_every_num_loops(rng, k):
    X_train = rng.standard_normal((30, 6))
    y_train = rng.integers(4, size=30)
    X_test = rng.standard_normal((8, 6))
    ref_d = brute_force_distances(X_test, X_train)
    expected = []
    for row in ref_d:
        counts = np.bincount(y_train[np.argsort(row)[:k]], minlength=4)
        expected.append(int(np.flatnonzero(counts == counts.max())[0]))
    knn = KNearestNeighbor().train(X_train, y_train)
    for num_loops in (0, 1, 2):
        assert knn.predict(X_test, k=k, num_loops=num_loops).tolist() == expected


@pytest.mark.parametrize("num_loops", [0, 2])
def test_predict_in_chunks_matches_one_matrix(rng, monkeypatch, num_loops):
    X_train, y_train = rng.standard_normal((20, 4)), rng.integers(5, size=20)
    X_test = rng.standard_normal((10, 4))
    knn = KNearestNeighbor().train(X_train, y_train)
    whole = knn.predict_labels(knn.compute_distances_no_loops(X_test), k=3)
    monkeypatch.setattr(k_nearest_neighbor, "MAX_DISTANCES_PER_CHUNK", 60)  # 3 test rows per chunk
    assert np.array_equal(knn.predict(X_test, k=3, num_loops=num_loops), whole)
    assert knn.predict(X_test[:0], k=3).shape == (0,)


def test_cross_validation_picks_a_small_k_on_separable_data(rng):
    # Two tight, far-apart clusters: small k is perfect, while k=90 (every training
    # sample of a fold split) gives one answer for all test points.
    centres = 10 * np.eye(3)[:2]
    X = np.vstack([c + 0.1 * rng.standard_normal((60, 3)) for c in centres])
    y = np.repeat([0, 1], 60)
    perm = rng.permutation(120)
    X, y = X[perm], y[perm]
    acc = cross_validate_k(X, y, [1, 3, 50, 90], num_folds=4)
    assert sorted(acc) == [1, 3, 50, 90]
    assert all(len(v) == 4 for v in acc.values())
    assert np.mean(acc[1]) == 1.0 and np.mean(acc[3]) == 1.0
    assert np.mean(acc[90]) < 0.75
    assert best_k(acc) == 1


def test_cross_validation_prefers_larger_k_with_label_noise(rng):
    # Separable clusters whose labels are 20 % flipped: averaging over neighbours wins.
    centres = 6 * np.eye(4)[:3]
    X = np.vstack([c + rng.standard_normal((100, 4)) for c in centres])
    y = np.repeat([0, 1, 2], 100)
    flip = rng.random(300) < 0.2
    y[flip] = (y[flip] + 1) % 3
    perm = rng.permutation(300)
    X, y = X[perm], y[perm]
    acc = cross_validate_k(X, y, [1, 15], num_folds=5)
    assert np.mean(acc[15]) > np.mean(acc[1]) + 0.05
    assert best_k(acc) == 15


def test_best_k_ties_go_to_smaller_k():
    assert best_k({5: [0.5, 0.7], 3: [0.6, 0.6], 9: [0.1, 0.2]}) == 3


def test_predict_before_train_is_a_clear_error(rng):
    with pytest.raises(RuntimeError, match="train"):
        KNearestNeighbor().predict(rng.standard_normal((2, 3)))


@pytest.mark.parametrize(
    "X, y, msg",
    [
        (np.zeros((4, 2, 2)), np.zeros(4, dtype=int), r"2-D.*\(4, 2, 2\)"),
        (np.zeros((4, 3)), np.zeros(3, dtype=int), "4 labels"),
        (np.zeros((4, 3)), np.array([0.0, 1.0, 0.0, 1.0]), "integer"),
        (np.zeros((4, 3)), np.array([0, -1, 0, 1]), "negative"),
    ],
)
def test_train_rejects_bad_shapes_and_labels(X, y, msg):
    with pytest.raises(ValueError, match=msg):
        KNearestNeighbor().train(X, y)


def test_bad_test_data_k_and_num_loops_are_rejected(rng):
    knn = KNearestNeighbor().train(rng.standard_normal((5, 3)), np.arange(5))
    with pytest.raises(ValueError, match=r"\(2, 4\).*D = 3"):
        knn.predict(rng.standard_normal((2, 4)))
    with pytest.raises(ValueError, match="exceeds"):
        knn.predict(rng.standard_normal((2, 3)), k=6)
    with pytest.raises(ValueError, match="positive integer"):
        knn.predict(rng.standard_normal((2, 3)), k=0)
    with pytest.raises(ValueError, match="num_loops"):
        knn.predict(rng.standard_normal((2, 3)), num_loops=3)
    with pytest.raises(ValueError, match=r"\(2, 4\).*5 training"):
        knn.predict_labels(np.zeros((2, 4)))


def test_cross_validation_rejects_bad_folds(rng):
    X, y = rng.standard_normal((10, 2)), np.arange(10) % 2
    with pytest.raises(ValueError, match="num_folds"):
        cross_validate_k(X, y, [1], num_folds=1)
    with pytest.raises(ValueError, match="exceeds"):
        cross_validate_k(X, y, [9], num_folds=5)


@pytest.mark.parametrize("num_folds, msg", [
    (11, r"num_folds must be between 2 and N = 10, got 11"),     # a fold would be empty
    (100, r"num_folds must be between 2 and N = 10, got 100"),
    (1, r"num_folds must be between 2 and N = 10, got 1"),       # nothing left to train on
    (0, r"num_folds must be a positive integer, got 0"),
    (-3, r"num_folds must be a positive integer, got -3"),
    (2.0, r"num_folds must be a positive integer, got 2\.0"),
])
def test_cross_validation_names_a_bad_num_folds(rng, num_folds, msg):
    X, y = rng.standard_normal((10, 2)), np.arange(10) % 2
    with pytest.raises(ValueError, match=r"cross_validate_k: " + msg):
        cross_validate_k(X, y, [1], num_folds=num_folds)


@pytest.mark.parametrize("num_folds", [2, 3, 10], ids=["2", "3", "N: leave-one-out"])
def test_cross_validation_accepts_num_folds_from_2_to_n(rng, num_folds):
    X, y = rng.standard_normal((10, 2)), np.arange(10) % 2
    acc = cross_validate_k(X, y, [1], num_folds=num_folds)
    # Each fold's 1-NN accuracy, from the whole-data distances with the fold's columns masked.
    d = brute_force_distances(X, X)
    expected = []
    for fold in np.array_split(np.arange(10), num_folds):
        held_out = d[fold].copy()
        held_out[:, fold] = np.inf
        expected.append(float(np.mean(y[held_out.argmin(axis=1)] == y[fold])))
    assert acc == {1: expected}


@pytest.mark.parametrize("edit", [
    lambda X: X.__isub__(5.0),
    lambda X: X.__imul__(-3.0),
    lambda X: X.__setitem__((slice(0, 4),), 100.0),
], ids=["X -= 5", "X *= -3", "X[:4] = 100"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_in_place_edit_of_the_callers_array_leaves_the_model_unchanged(rng, edit, dtype):
    # train() keeps its own copy: the no-loop cache built by a first predict must not go
    # stale (and disagree with the loop versions) when the caller edits X_train in place.
    X_train = rng.standard_normal((25, 4)).astype(dtype)
    y_train = rng.integers(3, size=25)
    X_test = rng.standard_normal((6, 4)).astype(dtype)
    original = X_train.copy()
    knn = KNearestNeighbor().train(X_train, y_train)
    before = knn.predict(X_test, k=3)              # builds the no-loop cache
    edit(X_train)
    ref = brute_force_distances(X_test, original)
    tol = 1e-6 if dtype == np.float64 else 1e-5
    for f in (knn.compute_distances_two_loops, knn.compute_distances_one_loop,
              knn.compute_distances_no_loops):
        assert rel_error(f(X_test), ref) < tol
    for num_loops in (0, 1, 2):
        assert np.array_equal(knn.predict(X_test, k=3, num_loops=num_loops), before)
    # The model's copy is read-only, so its cache cannot go stale through it either.
    with pytest.raises(ValueError, match="read-only"):
        knn.X_train -= 1.0
    # Training again picks the edit up.
    knn.train(X_train, y_train)
    assert rel_error(knn.compute_distances_no_loops(X_test),
                     brute_force_distances(X_test, X_train)) < tol


def test_integer_training_data_is_converted_once_and_not_aliased():
    X = np.arange(12, dtype=np.uint8).reshape(4, 3)
    knn = KNearestNeighbor().train(X, np.arange(4))
    X[0] = 200
    assert knn.X_train.dtype == np.float64 and knn.X_train[0].tolist() == [0.0, 1.0, 2.0]


@pytest.mark.parametrize("labels, expected", [
    ([0, 10 ** 10], [0, 10 ** 10]),
    ([10 ** 12, 7], [10 ** 12, 7]),
    ([np.iinfo(np.int64).max, 3], [np.iinfo(np.int64).max, 3]),
])
def test_sparse_large_labels_do_not_allocate_a_vote_per_label_value(labels, expected):
    # Votes over 0..max(label) would need a (num_test, 10**10) matrix: a MemoryError.
    X_train = np.array([[0.0], [10.0]])
    knn = KNearestNeighbor().train(X_train, np.array(labels))
    assert knn.predict(np.array([[1.0], [9.0]]), k=1).tolist() == expected
    # A 1-1 tie still goes to the smaller label, whatever the training order.
    assert knn.predict(np.array([[5.0]]), k=2).tolist() == [min(labels)]


def test_ties_go_to_the_smaller_label_with_gaps_between_labels():
    knn = KNearestNeighbor().train(np.zeros((6, 1)), np.array([900, 40, 40, 900, 7, 10 ** 9]))
    dists = np.array([[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]])
    assert knn.predict_labels(dists, k=1).tolist() == [900]
    assert knn.predict_labels(dists, k=2).tolist() == [40]       # 900 vs 40 -> 40
    assert knn.predict_labels(dists, k=4).tolist() == [40]       # 2-2 -> 40
    assert knn.predict_labels(dists[:, ::-1].copy(), k=3).tolist() == [7]  # three-way tie
    assert knn.predict_labels(dists, k=1).dtype == np.int64


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", ["train", "predict", "distances", "cross_validate_k"])
def test_non_finite_rows_are_refused_with_their_indices(rng, bad, where):
    X = rng.standard_normal((20, 3))
    y = np.arange(20) % 2
    X_bad = X.copy()
    X_bad[4, 1] = X_bad[11, 0] = bad               # a NaN row made every no-loop distance NaN
    with pytest.raises(ValueError, match=r"X holds NaN or inf in 2 row\(s\), e\.g\. rows \[4, 11\]"):
        if where == "train":
            KNearestNeighbor().train(X_bad, y)
        elif where == "predict":
            KNearestNeighbor().train(X, y).predict(X_bad)
        elif where == "distances":
            KNearestNeighbor().train(X, y).compute_distances_two_loops(X_bad)
        else:
            cross_validate_k(X_bad, y, [1, 3], num_folds=2)


def test_cross_validation_counts_a_repeated_k_once(rng):
    X, y = rng.standard_normal((30, 2)), np.arange(30) % 3
    acc = cross_validate_k(X, y, [3, 1, 3, np.int64(1)], num_folds=3)
    assert list(acc) == [3, 1]                     # first-seen order
    assert all(len(v) == 3 for v in acc.values())  # one accuracy per fold, not two
    assert acc == cross_validate_k(X, y, [3, 1], num_folds=3)
