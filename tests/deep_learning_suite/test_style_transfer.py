import numpy as np
import pytest

torch = pytest.importorskip("torch")

from deep_learning_suite import style_transfer as st  # noqa: E402

nn = torch.nn
MEAN = np.array([0.485, 0.456, 0.406])
STD = np.array([0.229, 0.224, 0.225])


@pytest.fixture(autouse=True)
def one_thread(torch_one_thread):
    yield


def _t(a):
    return torch.from_numpy(np.ascontiguousarray(a))


def _preprocess(img, dtype=torch.float64):
    """A stand-in for net_visualization.preprocess: (H, W, 3) uint8 -> (1, 3, H, W), normalised."""
    x = (img.astype(np.float64) / 255 - MEAN) / STD
    return _t(x.transpose(2, 0, 1)[None]).to(dtype)


def _cnn(dtype=torch.float64, seed=0):
    # 5 layers: features at 16x16 (0, 1), 8x8 (2) and 8x8 (3, 4).
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(6, 8, 3, padding=1), nn.ReLU()).to(dtype)


def _images(rng, size=16):
    content = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    style = rng.integers(0, 256, (size + 4, size, 3), dtype=np.uint8)
    return content, style


def _run(rng, dtype=torch.float64, cnn=None, **kw):
    content, style = _images(rng)
    args = dict(content_image=_preprocess(content, dtype), style_image=_preprocess(style, dtype),
                image_size=16, style_size=16, content_layer=3, content_weight=0.05,
                style_layers=(0, 1, 4), style_weights=(2e4, 5e3, 1e3), tv_weight=0.02,
                cnn=_cnn(dtype) if cnn is None else cnn, num_iterations=20, decay_lr_at=15,
                initial_lr=0.05, decayed_lr=0.01, clamp_until=18)
    args.update(kw)
    return st.style_transfer(**args)


SHAPES = [(1, 3, 4, 5), (1, 8, 2, 2), (1, 1, 7, 3)]
DTYPES = [torch.float32, torch.float64]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_content_loss_is_the_weighted_sum_of_squares(rng, shape, dtype):
    cur, orig = rng.standard_normal(shape), rng.standard_normal(shape)
    loss = st.content_loss(0.7, _t(cur).to(dtype), _t(orig).to(dtype))
    assert loss.ndim == 0 and loss.dtype == dtype
    np.testing.assert_allclose(loss.item(), 0.7 * np.sum((cur - orig) ** 2), rtol=1e-5)
    assert st.content_loss(0.7, _t(cur), _t(cur)).item() == 0


def test_content_loss_rejects_mismatched_or_non_tensor_features():
    with pytest.raises(ValueError, match="same layer"):
        st.content_loss(1.0, torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 5))
    with pytest.raises(TypeError, match="torch.Tensor"):
        st.content_loss(1.0, np.zeros((1, 3, 4, 4)), torch.zeros(1, 3, 4, 4))


@pytest.mark.parametrize("shape", SHAPES + [(3, 4, 5, 2)])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("normalize", [True, False])
def test_gram_matrix_against_einsum_and_a_loop(rng, shape, dtype, normalize):
    x = rng.standard_normal(shape)
    N, C, H, W = shape
    gram = st.gram_matrix(_t(x).to(dtype), normalize=normalize)
    assert gram.shape == (N, C, C) and gram.dtype == dtype
    scale = H * W * C if normalize else 1
    expected = np.einsum("nchw,ndhw->ncd", x, x) / scale
    loop = np.zeros((N, C, C))
    for n in range(N):
        for c in range(C):
            for d in range(C):
                loop[n, c, d] = np.sum(x[n, c] * x[n, d]) / scale
    rtol = 1e-5 if dtype == torch.float32 else 1e-12
    np.testing.assert_allclose(gram.numpy(), expected, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(expected, loop, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gram.numpy(), gram.numpy().transpose(0, 2, 1), rtol=rtol)


def test_gram_matrix_default_normalizes_and_wants_4d(rng):
    x = _t(rng.standard_normal((1, 3, 4, 5)))
    assert torch.allclose(st.gram_matrix(x), st.gram_matrix(x, normalize=False) / 60)
    with pytest.raises(ValueError, match="4-D"):
        st.gram_matrix(x[0])


def _feats(rng):
    shapes = [(1, 3, 6, 6), (1, 4, 5, 5), (1, 5, 3, 4), (1, 2, 2, 2)]
    return [rng.standard_normal(s) for s in shapes]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layers", [[0], [0, 2, 3], [3, 1, -4]])
def test_style_loss_against_numpy(rng, dtype, layers):
    feats = _feats(rng)
    targets = [rng.standard_normal((1, feats[i].shape[1], feats[i].shape[1])) * 0.1 for i in layers]
    weights = rng.random(len(layers)) * 10
    expected = 0.0
    for i, a, w in zip(layers, targets, weights):
        f = feats[i][0]
        C, H, W = f.shape
        g = f.reshape(C, -1) @ f.reshape(C, -1).T / (C * H * W)
        expected += w * np.sum((g - a[0]) ** 2)
    loss = st.style_loss([_t(f).to(dtype) for f in feats], layers, [_t(a).to(dtype) for a in targets],
                         list(weights))
    assert loss.ndim == 0 and loss.dtype == dtype
    np.testing.assert_allclose(loss.item(), expected, rtol=1e-5 if dtype == torch.float32 else 1e-12)


def test_style_loss_with_no_layers_is_zero_and_checks_its_input(rng):
    feats = [_t(f) for f in _feats(rng)]
    assert st.style_loss(feats, [], [], []).item() == 0
    with pytest.raises(ValueError, match="one entry per style layer"):
        st.style_loss(feats, [0, 1], [st.gram_matrix(feats[0])], [1.0, 1.0])
    with pytest.raises(ValueError, match="same layers"):
        st.style_loss(feats, [1], [st.gram_matrix(feats[0])], [1.0])
    with pytest.raises(ValueError, match="out of range"):
        st.style_loss(feats, [4], [st.gram_matrix(feats[0])], [1.0])


@pytest.mark.parametrize("shape", [(1, 3, 5, 4), (1, 3, 1, 6), (2, 2, 3, 3)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_tv_loss_against_loops(rng, shape, dtype):
    x = rng.standard_normal(shape)
    N, C, H, W = shape
    expected = 0.0
    for n in range(N):
        for c in range(C):
            for i in range(H):
                for j in range(W):
                    if i + 1 < H:
                        expected += (x[n, c, i + 1, j] - x[n, c, i, j]) ** 2
                    if j + 1 < W:
                        expected += (x[n, c, i, j + 1] - x[n, c, i, j]) ** 2
    loss = st.tv_loss(_t(x).to(dtype), 0.3)
    assert loss.ndim == 0 and loss.dtype == dtype
    np.testing.assert_allclose(loss.item(), 0.3 * expected, rtol=1e-5)
    assert st.tv_loss(torch.ones(1, 3, 4, 4), 5.0).item() == 0
    with pytest.raises(ValueError, match="4-D"):
        st.tv_loss(_t(x)[0], 0.3)


def test_losses_pass_gradcheck(rng):
    def leaf(*shape):
        return _t(rng.standard_normal(shape)).requires_grad_()

    a, b = leaf(1, 3, 4, 5), leaf(1, 3, 4, 5)
    assert torch.autograd.gradcheck(lambda x, y: st.content_loss(0.6, x, y), (a, b))
    x = leaf(2, 3, 4, 3)
    assert torch.autograd.gradcheck(st.gram_matrix, (x,))
    assert torch.autograd.gradcheck(lambda x: st.gram_matrix(x, normalize=False), (x,))
    f0, f1, f2 = leaf(1, 3, 5, 5), leaf(1, 4, 3, 3), leaf(1, 2, 2, 2)
    targets = [_t(rng.standard_normal((1, 3, 3))), _t(rng.standard_normal((1, 2, 2)))]
    assert torch.autograd.gradcheck(
        lambda f0, f1, f2: st.style_loss([f0, f1, f2], [0, 2], targets, [3.0, 0.5]), (f0, f1, f2))
    assert torch.autograd.gradcheck(lambda x: st.tv_loss(x, 0.4), (leaf(1, 3, 4, 6),))


def test_extract_features_applies_each_child_in_turn(rng):
    cnn = _cnn()
    x = _t(rng.standard_normal((2, 3, 8, 8)))
    feats = st.extract_features(x, cnn)
    assert len(feats) == len(list(cnn.children())) == 5
    out = x
    for layer, f in zip(cnn, feats):
        out = layer(out)
        assert torch.equal(f, out)
    assert [tuple(f.shape) for f in feats] == [(2, 6, 8, 8), (2, 6, 8, 8), (2, 6, 4, 4), (2, 8, 4, 4),
                                               (2, 8, 4, 4)]


def test_extract_features_counts_a_reused_layer_each_time(rng):
    # children() would list the shared ReLU once; the layer indices follow the Sequential.
    relu = nn.ReLU()
    cnn = nn.Sequential(relu, nn.Conv2d(3, 3, 1).double(), relu)
    feats = st.extract_features(_t(rng.standard_normal((1, 3, 4, 4))), cnn)
    assert len(feats) == 3 and torch.equal(feats[2], torch.relu(feats[1]))


def test_extract_features_wants_a_module_of_layers(rng):
    x = torch.zeros(1, 3, 4, 4)
    with pytest.raises(ValueError, match="no child modules"):
        st.extract_features(x, nn.ReLU())
    with pytest.raises(TypeError, match="nn.Module"):
        st.extract_features(x, [nn.ReLU()])


@pytest.mark.parametrize("dtype", DTYPES)
def test_style_transfer_lowers_the_loss(rng, dtype):
    img, losses = _run(rng, dtype)
    assert img.shape == (1, 3, 16, 16) and img.dtype == dtype and not img.requires_grad
    assert len(losses) == 20 and all(isinstance(v, float) and np.isfinite(v) for v in losses)
    assert losses[-1] < 0.7 * losses[0]


def test_first_loss_is_the_three_terms_on_the_clamped_content_image():
    content, style = (_preprocess(a) for a in _images(np.random.default_rng(5)))
    cnn = _cnn()
    _, losses = st.style_transfer(content, style, 16, 16, 3, 0.05, (0, 4), (2e4, 1e3), 0.02, cnn=cnn,
                                  num_iterations=1)
    x = content.clamp(-1.5, 1.5)
    feats = st.extract_features(x, cnn)
    styles = st.extract_features(style, cnn)
    expected = (st.content_loss(0.05, feats[3], st.extract_features(content, cnn)[3])
                + st.style_loss(feats, [0, 4], [st.gram_matrix(styles[i]) for i in (0, 4)], [2e4, 1e3])
                + st.tv_loss(x, 0.02))
    assert content.abs().max() > 1.5    # the clamp matters here
    np.testing.assert_allclose(losses[0], expected.item(), rtol=1e-12)


def test_style_transfer_clamps_while_told_to(rng):
    content, style = (_preprocess(a) for a in _images(rng))
    content = 3 * content / content.abs().max()      # pixels out to +-3
    kw = dict(content_image=content, style_image=style, num_iterations=6, initial_lr=0.01)
    img, _ = _run(rng, clamp_until=7, **kw)
    assert img.abs().max() <= 1.5
    img, _ = _run(rng, clamp_until=6, **kw)         # the returned image counts as t = 6
    # One unclamped Adam step of lr 0.01 (Adam's steps stay under ~3.2 lr with its default betas).
    assert 1.5 < img.abs().max() < 1.5 + 0.04
    img, _ = _run(rng, clamp_until=0, **kw)
    assert img.abs().max() > 2.9


def test_style_transfer_switches_to_the_decayed_rate(rng):
    # A decayed rate of 0 from iteration 5: the image stops moving once Adam restarts.
    img, losses = _run(rng, num_iterations=10, decay_lr_at=5, decayed_lr=0.0, clamp_until=0)
    assert losses[4] != losses[5] and len(set(losses[5:])) == 1
    # Adam restarts, as in the course: its first step moves every pixel by the new rate.
    before, _ = _run(np.random.default_rng(2), num_iterations=5, clamp_until=0)
    after, _ = _run(np.random.default_rng(2), num_iterations=6, decay_lr_at=5, decayed_lr=0.003,
                    clamp_until=0)
    np.testing.assert_allclose((after - before).abs().numpy(), 0.003, rtol=1e-4)
    content = _preprocess(_images(np.random.default_rng(0))[0])
    img, losses = _run(np.random.default_rng(0), num_iterations=4, decay_lr_at=0, decayed_lr=0.0,
                       clamp_until=0)
    assert torch.equal(img, content) and len(set(losses)) == 1


def test_style_transfer_is_deterministic_and_seeds_its_random_start():
    a, la = _run(np.random.default_rng(1), num_iterations=5)
    b, lb = _run(np.random.default_rng(1), num_iterations=5)
    assert torch.equal(a, b) and la == lb
    state = torch.get_rng_state()
    r1, l1 = _run(np.random.default_rng(1), num_iterations=5, init_random=True, seed=3)
    assert torch.equal(torch.get_rng_state(), state)
    r2, l2 = _run(np.random.default_rng(1), num_iterations=5, init_random=True, seed=3)
    r3, _ = _run(np.random.default_rng(1), num_iterations=5, init_random=True, seed=4)
    assert torch.equal(r1, r2) and l1 == l2 and not torch.equal(r1, r3)
    assert not torch.allclose(r1, a)


def test_random_start_is_uniform_noise_and_still_descends(rng):
    noise, losses = _run(rng, num_iterations=0, init_random=True, seed=0)
    assert losses == [] and noise.shape == (1, 3, 16, 16)
    assert noise.min() >= 0 and noise.max() < 1 and 0.4 < noise.mean() < 0.6
    _, losses = _run(rng, num_iterations=20, init_random=True, seed=0, initial_lr=0.1)
    assert losses[-1] < 0.7 * losses[0]


def test_style_transfer_freezes_the_cnn_and_uses_its_dtype(rng):
    cnn = _cnn(torch.float32).train()
    img, _ = _run(rng, torch.float64, cnn=cnn, num_iterations=2)   # images cast to the cnn's dtype
    assert img.dtype == torch.float32
    assert not cnn.training and not any(p.requires_grad for p in cnn.parameters())


def test_style_transfer_rejects_bad_input(rng):
    content, style = _images(rng)
    base = dict(content_image=_preprocess(content), style_image=_preprocess(style), image_size=16,
                style_size=16, content_layer=3, content_weight=1.0, style_layers=(0, 1),
                style_weights=(1.0, 1.0), tv_weight=0.0, num_iterations=1)
    with pytest.raises(ValueError, match=r"needs a cnn.*squeezenet1_1\(weights=path\)\.features"):
        st.style_transfer(**base)
    cases = [
        (dict(content_layer=5), ValueError, "content_layer = 5 is out of range for a cnn with 5 layers"),
        (dict(content_layer=-6), ValueError, "out of range"),
        (dict(content_layer=1.0), TypeError, "int layer index"),
        (dict(style_layers=(0, 9)), ValueError, r"style_layers\[1\] = 9"),
        (dict(style_weights=(1.0,)), ValueError, "lengths 2 and 1"),
        (dict(num_iterations=-1), ValueError, "num_iterations"),
        (dict(show_every=0), ValueError, "show_every"),
        (dict(content_image=_preprocess(content)[0]), ValueError, "4-D"),
        (dict(style_image=torch.zeros(2, 3, 8, 8)), ValueError, r"\(1, 3, H, W\)"),
        (dict(content_image=5), TypeError, "path, a PIL image"),
        (dict(style_image=np.zeros((8, 8, 3))), ValueError, "uint8"),
    ]
    for change, error, message in cases:
        with pytest.raises(error, match=message):
            st.style_transfer(**{**base, "cnn": _cnn(), **change})


def test_features_from_img_checks_its_input_before_loading():
    with pytest.raises(TypeError, match="path, a PIL image"):
        st.features_from_img(3.5, 16, _cnn())
    with pytest.raises(ValueError, match=r"uint8 \(H, W, 3\) array, got uint8 array of shape \(8, 8, 4\)"):
        st.features_from_img(np.zeros((8, 8, 4), np.uint8), 16, _cnn())
    with pytest.raises(ValueError, match="no child modules"):
        st.features_from_img(np.zeros((8, 8, 3), np.uint8), 16, nn.ReLU())


def test_end_to_end_from_files_arrays_and_pil_images(rng, tmp_path):
    # Uses the toolkit's preprocess and deprocess (deep_learning_suite.net_visualization).
    nv = pytest.importorskip("deep_learning_suite.net_visualization")
    pytest.importorskip("matplotlib")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    content, style = _images(rng, size=24)
    path = tmp_path / "content.png"
    Image.fromarray(content).save(path)
    cnn = _cnn()
    feats, img = st.features_from_img(str(path), 16, cnn)
    assert img.shape == (1, 3, 16, 16) and img.dtype == torch.float64 and len(feats) == 5
    assert torch.allclose(img, nv.preprocess(Image.fromarray(content), size=16).double())
    for source in (path, content, Image.fromarray(content)):
        assert torch.allclose(st.features_from_img(source, 16, cnn)[1], img)
    try:
        out, losses = st.style_transfer(path, Image.fromarray(style), 16, 20, 3, 0.05, (0, 1, 4),
                                        (2e4, 5e3, 1e3), 0.02, cnn=cnn, num_iterations=12,
                                        decay_lr_at=10, initial_lr=0.05, clamp_until=11, show_every=5)
        assert len(plt.get_fignums()) == 4      # iterations 0, 5, 10 and the end
    finally:
        plt.close("all")
    assert out.shape == (1, 3, 16, 16) and losses[-1] < losses[0]
    shown = nv.deprocess(out.float())
    assert shown.shape == (16, 16, 3) and shown.dtype == np.uint8


def _shrinking_cnn():
    # Unpadded: 5x5 conv (H - 4), pool (/2), 3x3 conv (- 2): layer 3 needs H >= 10, layer 0 H >= 5.
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 4, 3)).double()


@pytest.mark.parametrize("change, message", [
    (dict(style_size=8), r"style_image is 10 x 8 pixels.*first 4 layers.*at least 10 x 10\. "
                         r"Pass a larger style_size \(at least 10\)"),
    (dict(image_size=9), r"content_image is 9 x 9 pixels.*image_size \(at least 10\)"),
    (dict(content_image="tensor"), r"content_image \(a tensor, used at its own size\) is 6 x 7 "
                                   r"pixels.*at least 10 x 10.*larger image tensor"),
    (dict(style_size=4, content_layer=1, style_layers=(0,)), r"style_image is 5 x 4.*first 2 layers.*"
                                                             r"at least 5 x 5"),
])
def test_style_transfer_names_an_image_too_small_for_the_cnn(rng, change, message):
    # The style image is 4 px taller than wide; style_size sets its shorter side.
    content, style = _images(rng)
    kwargs = dict(content_image=content, style_image=style, image_size=16, style_size=16,
                  content_layer=3, content_weight=1.0, style_layers=(0, 3), style_weights=(1.0,) * 2,
                  tv_weight=0.0, cnn=_shrinking_cnn(), num_iterations=1)
    kwargs.update(change)
    kwargs["style_weights"] = (1.0,) * len(kwargs["style_layers"])
    if isinstance(kwargs["content_image"], str):
        kwargs["content_image"] = torch.zeros(1, 3, 6, 7)
    with pytest.raises(ValueError, match=message):
        st.style_transfer(**kwargs)


def test_style_transfer_checks_only_the_layers_it_uses(rng):
    # 8 pixels are too few for layer 3 but plenty for layers 0 and 1.
    content, style = _images(rng)
    img, _ = st.style_transfer(content, style, 16, 8, 1, 1.0, (0,), (1.0,), 0.0, cnn=_shrinking_cnn(),
                               num_iterations=1)
    assert img.shape == (1, 3, 16, 16)


def test_squeezenet_needs_17_pixels(rng):
    sq = pytest.importorskip("deep_learning_suite.squeezenet")
    cnn = sq.squeezenet1_1().features.double()
    content, style = _images(rng)
    with pytest.raises(ValueError, match=r"style_image is 12 x 10.*at least 17 x 17.*style_size \(at least 17\)"):
        st.style_transfer(content, style, 17, 10, 3, 1.0, (1, 12), (1.0, 1.0), 1.0, cnn=cnn, num_iterations=1)
    with pytest.raises(ValueError, match=r"the image is 16 x 16.*imgsize \(at least 17\)"):
        st.features_from_img(content, 16, cnn)
    assert len(st.features_from_img(content, 17, cnn)[0]) == 13


def test_errors_that_are_not_about_the_size_stay_torchs(rng):
    content, style = _images(rng)
    cnn = nn.Sequential(nn.Conv2d(4, 4, 3), nn.ReLU()).double()     # wants 4 channels
    with pytest.raises(RuntimeError, match="channels"):
        st.style_transfer(content, style, 16, 16, 1, 1.0, (0,), (1.0,), 0.0, cnn=cnn, num_iterations=1)
