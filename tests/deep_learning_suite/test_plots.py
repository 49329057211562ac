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


# ----------------------------------------------------------------------------- what the saved figures show

@pytest.fixture
def saved(monkeypatch):
    """The figures the plots save, in order, so a test can look at what they draw."""
    Figure = pytest.importorskip("matplotlib.figure").Figure
    figures, savefig = [], Figure.savefig

    def record(fig, *args, **kwargs):
        figures.append(fig)
        return savefig(fig, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", record)
    return figures


def _moving_average(loss, k):
    return np.array([loss[i:i + k].mean() for i in range(len(loss) - k + 1)])


@pytest.mark.parametrize("n, smooth, k", [(300, None, 6), (120, None, 2), (40, None, None), (30, 7, 7),
                                          (5, 5, 5), (4, 5, None), (30, 1, None)])
def test_plot_loss_draws_every_loss_and_its_moving_average(tmp_path, rng, saved, n, smooth, k):
    # the window is `smooth`, else n // 50 (at least 1); a window of 1, or longer than the run, draws no average
    loss = rng.random(n)
    path = tmp_path / "loss.png"
    assert plots.plot_loss(list(loss), path, smooth=smooth) == path
    (ax,) = saved[0].axes
    points, *average = ax.get_lines()
    np.testing.assert_array_equal(points.get_xdata(), np.arange(1, n + 1))
    np.testing.assert_array_equal(points.get_ydata(), loss)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    if k is None:
        assert average == [] and labels == ["minibatch loss"]
    else:
        (avg,) = average
        np.testing.assert_array_equal(avg.get_xdata(), np.arange(k, n + 1))
        np.testing.assert_allclose(avg.get_ydata(), _moving_average(loss, k), rtol=1e-12)
        assert labels == ["minibatch loss", f"moving average ({k})"]
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_title()) == ("iteration", "loss", "Training loss")


def test_plot_accuracy_draws_train_and_val_per_epoch(tmp_path, saved):
    train, val = [0.1, 0.5, 0.7, 0.8], [0.1, 0.45, 0.6, 0.65]
    plots.plot_accuracy(train, val, tmp_path / "acc.png")
    (ax,) = saved[0].axes
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == ["train", "val"]
    for line, want in zip(lines, (train, val)):
        np.testing.assert_array_equal(line.get_xdata(), np.arange(4))
        np.testing.assert_array_equal(line.get_ydata(), want)
    assert ax.get_ylim() == (0, 1)
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_title()) == ("epoch", "accuracy", "Classification accuracy")
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["train", "val"]


@pytest.mark.parametrize("make, size", [
    (lambda p, rng: plots.plot_loss(rng.random(100), p), (700, 400)),
    (lambda p, rng: plots.plot_accuracy([0.2, 0.4], [0.1, 0.3], p), (700, 400)),
    (lambda p, rng: plots.plot_filters(rng.standard_normal((4, 3, 3, 3)), p), (600, 600)),
    (lambda p, rng: plots.plot_confusion([0, 1, 1], [0, 1, 0], p), (750, 650)),
])
def test_each_plot_is_saved_at_its_own_size(tmp_path, rng, make, size):
    Image = pytest.importorskip("PIL.Image")
    path = tmp_path / "p.png"
    make(path, rng)
    with Image.open(path) as img:
        assert img.size == size


def test_plots_keep_their_text_inside_the_figure(tmp_path, saved):
    # long class names under 45-degree ticks, and the colour bar, fit once the layout is tightened
    names = [f"a rather long class name {i}" for i in range(4)]
    plots.plot_confusion([0, 1, 2, 3], [0, 1, 2, 2], tmp_path / "c.png", class_names=names)
    fig = saved[0]
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        box = ax.get_tightbbox(renderer)
        assert box.x0 >= 0 and box.y0 >= 0 and box.x1 <= fig.bbox.width and box.y1 <= fig.bbox.height


def test_plot_confusion_shows_row_fractions_counts_and_accuracy(tmp_path, saved):
    y_true = [0, 0, 0, 0, 1, 2, 2]          # class 1 has one sample, class 3 none
    y_pred = [0, 0, 0, 1, 1, 0, 2]
    plots.plot_confusion(y_true, y_pred, tmp_path / "c.png", class_names=["w", "x", "y", "z"], title="Val")
    fig = saved[0]
    ax, bar = fig.axes
    M = plots.confusion_matrix(y_true, y_pred, 4)
    (im,) = ax.get_images()
    want = np.array([[3 / 4, 1 / 4, 0, 0], [0, 1, 0, 0], [1 / 2, 0, 1 / 2, 0], [0, 0, 0, 0]])
    np.testing.assert_allclose(im.get_array(), want, rtol=0, atol=1e-12)
    assert im.get_clim() == (0, 1) and im.get_cmap().name == "Blues"
    assert bar.get_ylabel() == "fraction of the true class"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["w", "x", "y", "z"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["w", "x", "y", "z"]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("predicted", "true")
    assert ax.get_title() == f"Val: accuracy {5 / 7:.1%}"
    # one count per non-empty cell, white on the dark cells (fraction above one half)
    texts = {(round(t.get_position()[1]), round(t.get_position()[0])): t for t in ax.texts}
    assert sorted(texts) == [tuple(ij) for ij in np.argwhere(M)]
    for (i, j), t in texts.items():
        assert t.get_text() == str(M[i, j])
        assert t.get_color() == ("white" if want[i, j] > 0.5 else "black")


def test_plot_confusion_names_classes_by_number_without_class_names(tmp_path, saved):
    plots.plot_confusion(np.array([0, 2, 1]), np.array([0, 1, 1]), tmp_path / "c.png")
    ax = saved[0].axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1", "2"]
    assert ax.get_images()[0].get_array().shape == (3, 3)
    assert ax.get_title() == f"Confusion matrix (test): accuracy {2 / 3:.1%}"
    plots.plot_confusion([1], [1], tmp_path / "one.png")
    assert saved[1].axes[0].get_title() == "Confusion matrix (test): accuracy 100.0%"


@pytest.mark.parametrize("shape, max_filters, shown", [((150, 1, 3, 3), None, 100), ((12, 3, 3, 3), 5, 5),
                                                       ((27, 12), 4, 4), ((27, 150), None, 100)])
def test_plot_filters_draws_at_most_max_filters(tmp_path, rng, saved, shape, max_filters, shown):
    W = rng.standard_normal(shape)
    kwargs = {} if max_filters is None else {"max_filters": max_filters}
    fc = len(shape) == 2
    plots.plot_filters(W.tolist(), tmp_path / "f.png", input_shape=(3, 3, 3) if fc else None, title="W1", **kwargs)
    (ax,) = saved[0].axes
    (im,) = ax.get_images()
    kept = W[:, :shown] if fc else W[:shown]
    np.testing.assert_array_equal(im.get_array(), plots.filter_grid(kept, (3, 3, 3) if fc else None))
    assert ax.get_title() == f"W1 ({shown} shown)"
    assert not ax.axison
    # one channel is drawn in grey; three in colour
    assert (im.get_cmap().name == "gray") == (shape[1] == 1)


def test_filter_grid_scales_every_filter_on_its_own_and_pads_with_white(rng):
    W = rng.standard_normal((5, 1, 2, 3)) * np.array([0.01, 1, 100, 3, 0.2])[:, None, None, None]
    g = plots.filter_grid(W.tolist())                         # n = 3 tiles a row, two rows
    assert g.shape == (2 * 3 - 1, 3 * 4 - 1)
    covered = np.zeros(g.shape, bool)
    for i, f in enumerate(W[:, 0]):
        y, x = 3 * (i // 3), 4 * (i % 3)
        np.testing.assert_allclose(g[y:y + 2, x:x + 3], (f - f.min()) / (f.max() - f.min()), rtol=0, atol=1e-12)
        covered[y:y + 2, x:x + 3] = True
    assert np.all(g[~covered] == 1)


def test_filter_grid_refuses_weights_that_are_not_filters():
    with pytest.raises(ValueError, match=r"W must be \(F, C, HH, WW\) or \(D, H\), got shape \(2, 3, 4\)"):
        plots.filter_grid(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match=r"C\*H\*W = 48, got None"):
        plots.filter_grid(np.zeros((48, 2)))


def test_visualize_grid_defaults_and_images_of_small_range(rng):
    # ubound defaults to 255 and padding to 1; an image spanning less than 1 is stretched too
    Xs = 0.01 * rng.random((2, 2, 2, 1))
    grid = plots.visualize_grid(Xs.tolist())
    assert grid.shape == (2 * 2 + 1, 2 * 2 + 1, 1)
    for i in range(2):
        want = 255.0 * (Xs[i] - Xs[i].min()) / (Xs[i].max() - Xs[i].min())
        np.testing.assert_allclose(grid[0:2, 3 * i:3 * i + 2], want, rtol=0, atol=1e-9)
    assert grid.max() == pytest.approx(255.0)


def test_confusion_matrix_of_one_class():
    assert plots.confusion_matrix([0, 0], [0, 0], 1).tolist() == [[2]]


def _png(tmp_path, rng):
    Image = pytest.importorskip("PIL.Image")
    pixels = rng.integers(256, size=(3, 4, 3), dtype=np.uint8)
    path = tmp_path / "img.png"
    Image.fromarray(pixels).save(path)
    return path, pixels


def test_image_from_url_reads_up_to_max_bytes_and_no_more(tmp_path, rng, capsys):
    path, pixels = _png(tmp_path, rng)
    size = path.stat().st_size
    np.testing.assert_array_equal(plots.image_from_url(path.as_uri(), max_bytes=size), pixels)
    assert plots.image_from_url(path.as_uri(), max_bytes=size - 1) is None   # whole file read, still refused
    assert f"more than {size - 1} bytes" in capsys.readouterr().out


def test_image_from_url_refuses_more_than_20_mib_by_default(tmp_path, capsys):
    pytest.importorskip("PIL.Image")
    path = tmp_path / "big.png"
    path.write_bytes(PNG + bytes(20 * 2**20 - len(PNG)))     # 20 MiB: read, though it does not decode
    assert plots.image_from_url(path.as_uri()) is None
    out = capsys.readouterr().out
    assert "Image Error" in out and "more than" not in out
    path.write_bytes(PNG + bytes(20 * 2**20 + 1 - len(PNG)))
    assert plots.image_from_url(path.as_uri()) is None
    assert f"more than {20 * 2**20} bytes" in capsys.readouterr().out


@pytest.mark.parametrize("kwargs, timeout", [({}, 10), ({"timeout": 2.5}, 2.5)])
def test_image_from_url_passes_its_timeout_to_the_download(tmp_path, rng, monkeypatch, kwargs, timeout):
    import urllib.request

    path, pixels = _png(tmp_path, rng)
    seen, urlopen = [], urllib.request.urlopen

    def spy(url, *args, **kw):
        seen.append(kw.get("timeout"))
        return urlopen(url, *args, **kw)

    monkeypatch.setattr(urllib.request, "urlopen", spy)
    np.testing.assert_array_equal(plots.image_from_url(path.as_uri(), **kwargs), pixels)
    assert seen == [timeout]


def test_plot_confusion_colours_on_a_fixed_zero_to_one_scale(tmp_path, saved):
    # no cell is 0 or 1 here, so a scale fitted to the data would differ
    plots.plot_confusion([0, 0, 0, 1, 1, 1], [0, 0, 1, 0, 1, 1], tmp_path / "c.png")
    (im,) = saved[0].axes[0].get_images()
    assert im.get_array().min() > 0 and im.get_array().max() < 1
    assert im.get_clim() == (0, 1)
