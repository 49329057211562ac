import numpy as np
import pytest

from deep_learning_suite import plots

PNG = b"\x89PNG\r\n\x1a\n"


def test_confusion_matrix_counts_match_a_loop(rng):
    y_true, y_pred = rng.integers(4, size=200), rng.integers(4, size=200)
    M = plots.confusion_matrix(y_true, y_pred, 4)
    ref = np.zeros((4, 4), int)
    for t, p in zip(y_true, y_pred):
        ref[t, p] += 1
    assert np.array_equal(M, ref)
    with pytest.raises(ValueError, match="must match"):
        plots.confusion_matrix(y_true, y_pred[:-1], 4)


@pytest.mark.parametrize("y_true, y_pred, k, match", [
    ([0, 1], [3, 1], 3, r"y_pred must hold labels in \[0, 3\).* 1 to 3"),   # was counted in row 1
    ([0, 1], [-1, 1], 3, r"y_pred must hold labels in \[0, 3\)"),           # landed in cell (0, 2)
    ([5], [0], 3, r"y_true must hold labels in \[0, 3\)"),
    ([0, -1], [1, 2], 3, r"y_true must hold labels"),
    ([0.9, 1.7], [0, 1], 3, "y_true must hold integer class labels"),     # was truncated
    ([0, 1], [np.nan, 1], 3, "y_pred must hold integer class labels"),
    (["a"], ["b"], 2, "integer class labels"),
    ([0, 1], [0, 1, 1], 3, "must match"),
    ([[0, 1]], [[0, 1]], 3, "1-D"),
    ([0], [0], 0, "num_classes must be a positive integer"),
    ([0], [0], 2.0, "num_classes must be a positive integer"),
])
def test_confusion_matrix_refuses_labels_it_would_miscount(y_true, y_pred, k, match):
    with pytest.raises(ValueError, match=match):
        plots.confusion_matrix(y_true, y_pred, k)


@pytest.mark.parametrize("y_true, y_pred, k, expect", [
    ([0, 1, 1], [1, 1, 0], 2, [[0, 1], [1, 1]]),
    (np.array([0.0, 2.0]), np.array([2, 2], np.uint8), 3, [[0, 0, 1], [0, 0, 0], [0, 0, 1]]),
    ([True, False], [True, True], np.int64(2), [[0, 1], [0, 1]]),
    ([], [], 2, [[0, 0], [0, 0]]),
])
def test_confusion_matrix_accepts_integral_labels_of_any_dtype(y_true, y_pred, k, expect):
    assert plots.confusion_matrix(y_true, y_pred, k).tolist() == expect


def test_plot_confusion_refuses_a_label_past_class_names(tmp_path):
    with pytest.raises(ValueError, match=r"y_pred must hold labels in \[0, 3\)"):
        plots.plot_confusion([0, 1], [3, 1], tmp_path / "c.png", class_names=["a", "b", "c"])


@pytest.mark.parametrize("shape, expect", [((6, 1, 5, 5), (11, 17)), ((4, 3, 3, 3), (7, 7, 3)),
                                           ((5, 2, 3, 3), (7, 11))])
def test_filter_grid_conv(rng, shape, expect):
    W = rng.standard_normal(shape)
    g = plots.filter_grid(W)
    assert g.shape == expect
    assert g.min() >= 0 and g.max() <= 1
    # the first tile is the first filter rescaled to [0, 1]
    # (only the first channel is drawn when there are neither 1 nor 3)
    f = W[0].transpose(1, 2, 0) if shape[1] == 3 else W[0, 0]
    tile = g[:shape[2], :shape[3]]
    assert np.allclose(tile, (f - f.min()) / (f.max() - f.min()))


def test_filter_grid_fc_columns_as_images(rng):
    W = rng.standard_normal((2 * 4 * 4, 9))
    g = plots.filter_grid(W, input_shape=(2, 4, 4))
    assert g.shape == (3 * 5 - 1, 3 * 5 - 1)
    with pytest.raises(ValueError, match="input_shape"):
        plots.filter_grid(W, input_shape=(3, 4, 4))


def test_plots_write_pngs(tmp_path, rng):
    loss = np.exp(-np.arange(300) / 80) + 0.1 * rng.random(300)
    paths = [
        plots.plot_loss(loss, tmp_path / "loss.png"),
        plots.plot_accuracy([0.1, 0.5, 0.7], [0.1, 0.45, 0.6], tmp_path / "acc.png"),
        plots.plot_filters(rng.standard_normal((8, 1, 5, 5)), tmp_path / "f.png"),
        plots.plot_filters(rng.standard_normal((16, 12)), tmp_path / "fc.png", input_shape=(1, 4, 4)),
        plots.plot_confusion(rng.integers(3, size=50), rng.integers(3, size=50),
                             tmp_path / "c.png", class_names=["a", "b", "c"]),
    ]
    for p in paths:
        assert p.read_bytes()[:8] == PNG and p.stat().st_size > 5000


@pytest.mark.parametrize("N, H, W, C, padding", [(5, 2, 3, 1, 1), (9, 4, 4, 3, 0), (1, 7, 5, 3, 2), (32, 7, 7, 3, 1)])
def test_visualize_grid_tiles_each_image_scaled_to_ubound(rng, N, H, W, C, padding):
    Xs = rng.standard_normal((N, H, W, C)) * rng.uniform(0.1, 10, size=(N, 1, 1, 1))
    grid = plots.visualize_grid(Xs, ubound=255.0, padding=padding)
    G = int(np.ceil(np.sqrt(N)))
    assert grid.shape == (G * H + (G - 1) * padding, G * W + (G - 1) * padding, C)
    covered = np.zeros(grid.shape[:2], bool)
    for i in range(N):
        r, c = divmod(i, G)
        y, x = r * (H + padding), c * (W + padding)
        tile = grid[y:y + H, x:x + W]
        want = 255.0 * (Xs[i] - Xs[i].min()) / (Xs[i].max() - Xs[i].min())
        assert np.allclose(tile, want, rtol=0, atol=1e-9)
        covered[y:y + H, x:x + W] = True
    assert np.all(grid[~covered] == 0)  # padding and the empty cells stay blank


def test_visualize_grid_constant_image_and_bad_input():
    grid = plots.visualize_grid(np.full((2, 3, 3, 1), 4.0), ubound=1.0)
    assert np.all(grid == 0)
    with pytest.raises(ValueError, match=r"\(N, H, W, C\).*transpose\(0, 2, 3, 1\)"):
        plots.visualize_grid(np.zeros((3, 5, 5)))
    for padding in (-1, 1.5):
        with pytest.raises(ValueError, match="padding must be an int >= 0"):
            plots.visualize_grid(np.zeros((1, 2, 2, 1)), padding=padding)


@pytest.mark.parametrize("mode, shape", [("RGB", (5, 7, 3)), ("L", (5, 7)), ("RGBA", (5, 7, 3))])
def test_image_from_url_decodes_a_file_url(tmp_path, rng, mode, shape):
    Image = pytest.importorskip("PIL.Image")
    pixels = rng.integers(256, size=(5, 7, len(mode)), dtype=np.uint8)
    path = tmp_path / "img.png"
    Image.fromarray(pixels.squeeze(-1) if mode == "L" else pixels, mode).save(path)
    img = plots.image_from_url(path.as_uri())
    assert img.dtype == np.uint8 and img.shape == shape
    np.testing.assert_array_equal(img, pixels[..., :3] if mode != "L" else pixels[..., 0])


def test_image_from_url_reports_failures_and_returns_none(tmp_path, capsys):
    pytest.importorskip("PIL.Image")
    assert plots.image_from_url((tmp_path / "gone.jpg").as_uri()) is None
    assert "URL Error" in capsys.readouterr().out
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    assert plots.image_from_url((tmp_path / "bad.jpg").as_uri()) is None
    assert "Image Error" in capsys.readouterr().out
    (tmp_path / "big.png").write_bytes(PNG + bytes(100))
    assert plots.image_from_url((tmp_path / "big.png").as_uri(), max_bytes=50) is None
    assert "more than 50 bytes" in capsys.readouterr().out


def _course_layout(tiles, fill):
    """Independent reference for vis_grid / vis_nn: each tile padded by one ``fill`` pixel
    below and to the right, the tiles joined row by row, then scaled to [0, 1]."""
    blocks = [[np.pad(t, ((0, 1), (0, 1), (0, 0)), constant_values=fill) for t in row] for row in tiles]
    G = np.concatenate([np.concatenate(row, axis=1) for row in blocks], axis=0)
    return (G - G.min()) / (G.max() - G.min())


def test_vis_grid_by_hand():
    Xs = np.array([1.0, 3, 5, 9]).reshape(2, 1, 2, 1)     # two 1x2 grey images
    g = plots.vis_grid(Xs)                                # A = 2: a 2x2 grid, one cell empty
    # min 1 -> 0, max 9 -> 1; padding and the empty cells hold the min
    want = np.array([[0, .25, 0, .5, 1, 0],
                     [0, 0, 0, 0, 0, 0],
                     [0, 0, 0, 0, 0, 0],
                     [0, 0, 0, 0, 0, 0]])[..., None]
    np.testing.assert_allclose(g, want, rtol=0, atol=1e-12)


@pytest.mark.parametrize("N, H, W, C", [(1, 3, 2, 1), (5, 2, 3, 3), (9, 4, 4, 3), (10, 3, 5, 2)])
def test_vis_grid_is_the_courses_layout_scaled_as_a_whole(rng, N, H, W, C):
    Xs = rng.standard_normal((N, H, W, C)) * rng.uniform(0.1, 10, size=(N, 1, 1, 1))
    A = int(np.ceil(np.sqrt(N)))
    blank = np.full((H, W, C), Xs.min())
    tiles = [[Xs[r * A + c] if r * A + c < N else blank for c in range(A)] for r in range(A)]
    g = plots.vis_grid(Xs)
    assert g.shape == (A * H + A, A * W + A, C)
    np.testing.assert_allclose(g, _course_layout(tiles, Xs.min()), rtol=0, atol=1e-12)


def test_vis_nn_by_hand():
    one = [np.full((1, 1, 1), v) for v in (2.0, 3, 4, 6)]
    g = plots.vis_nn([[one[0], one[1]], [one[2], one[3]]])
    want = np.array([[.2, 0, .4, 0],       # (v - 1) / 5: the course's border of 1 sets the min
                     [0, 0, 0, 0],
                     [.6, 0, 1, 0],
                     [0, 0, 0, 0]])[..., None]
    np.testing.assert_allclose(g, want, rtol=0, atol=1e-12)


@pytest.mark.parametrize("N, D, H, W, C", [(1, 1, 2, 2, 1), (2, 5, 3, 2, 3), (4, 3, 4, 4, 3)])
def test_vis_nn_is_the_courses_layout_scaled_as_a_whole(rng, N, D, H, W, C):
    rows = [[rng.uniform(-3, 7, (H, W, C)) for _ in range(D)] for _ in range(N)]
    g = plots.vis_nn(rows)
    assert g.shape == (N * H + N, D * W + D, C)
    np.testing.assert_allclose(g, _course_layout(rows, 1.0), rtol=0, atol=1e-12)
    # a (N, D, H, W, C) array is the same rows
    np.testing.assert_array_equal(plots.vis_nn(np.array(rows)), g)


def test_vis_grid_and_vis_nn_constant_images_give_zeros_not_nan():
    assert np.array_equal(plots.vis_grid(np.full((3, 2, 2, 1), 4.0)), np.zeros((6, 6, 1)))
    assert np.array_equal(plots.vis_nn([[np.full((2, 2, 3), 1.0)]]), np.zeros((3, 3, 3)))


@pytest.mark.parametrize("rows, match", [
    ([], "at least one row"),
    ([[]], "at least one image"),
    ([[np.zeros((2, 2, 1))], [np.zeros((2, 2, 1)), np.zeros((2, 2, 1))]], r"rows of one length.*\[1, 2\]"),
    ([[np.zeros((2, 2, 1)), np.zeros((2, 3, 1))]], r"one shape \(2, 2, 1\), but row 0, image 1 is \(2, 3, 1\)"),
    ([[np.zeros((2, 2))]], r"\(H, W, C\).*\(2, 2\)"),
])
def test_vis_nn_bad_rows_are_named(rows, match):
    with pytest.raises(ValueError, match=match):
        plots.vis_nn(rows)


def test_vis_grid_bad_shape():
    with pytest.raises(ValueError, match=r"vis_grid: Xs must be \(N, H, W, C\).*transpose\(0, 2, 3, 1\)"):
        plots.vis_grid(np.zeros((3, 5, 5)))
    with pytest.raises(ValueError, match="N >= 1"):
        plots.vis_grid(np.zeros((0, 5, 5, 1)))
