import random
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn as nn  # noqa: E402

from deep_learning_suite import net_visualization as nv  # noqa: E402
from deep_learning_suite.imagenet import SQUEEZENET_MEAN, SQUEEZENET_STD  # noqa: E402


def linear_model(C=4, H=6, W=5, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * H * W, C)).double().eval()


def conv_model(C=5, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Tanh(), nn.AdaptiveAvgPool2d(2),
                         nn.Flatten(), nn.Linear(32, C)).double().eval()


@pytest.mark.parametrize("N", [1, 3])
def test_saliency_of_a_linear_model_is_the_largest_weight_magnitude(N):
    model = linear_model()
    X = torch.randn(N, 3, 6, 5, dtype=torch.float64)
    y = torch.tensor([2, 0, 3][:N])
    sal = nv.compute_saliency_maps(X, y, model)
    W = model[1].weight.detach().view(4, 3, 6, 5)
    torch.testing.assert_close(sal, W[y].abs().amax(dim=1))


def test_saliency_matches_the_jacobian_of_a_nonlinear_model():
    model = conv_model()
    X = torch.randn(2, 3, 7, 7, dtype=torch.float64)
    y = torch.tensor([4, 1])
    jac = torch.autograd.functional.jacobian(model, X)  # (2, 5, 2, 3, 7, 7)
    want = torch.stack([jac[i, y[i], i].abs().amax(dim=0) for i in range(2)])
    before = X.clone()
    torch.testing.assert_close(nv.compute_saliency_maps(X, y, model), want)
    torch.testing.assert_close(X, before, rtol=0, atol=0)
    assert X.grad is None and all(p.grad is None for p in model.parameters())


def test_saliency_rejects_bad_labels():
    model, X = linear_model(), torch.randn(2, 3, 6, 5, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"labels must be in 0\.\.3"):
        nv.compute_saliency_maps(X, torch.tensor([0, 4]), model)
    with pytest.raises(ValueError, match="2 integer labels"):
        nv.compute_saliency_maps(X, torch.tensor([0.0, 1.0]), model)
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        nv.compute_saliency_maps(X[0], torch.tensor([0]), model)


@pytest.mark.parametrize("target", [0, 2, 4])
def test_fooling_image_is_classified_as_the_target_and_leaves_x_alone(target):
    model = conv_model()
    X = torch.randn(1, 3, 8, 8, dtype=torch.float64)
    before = X.clone()
    X_fool = nv.make_fooling_image(X, target, model, learning_rate=0.5, max_iter=500)
    assert int(model(X_fool).argmax(1)) == target
    torch.testing.assert_close(X, before, rtol=0, atol=0)
    assert not X_fool.requires_grad
    if int(model(X).argmax(1)) == target:
        torch.testing.assert_close(X_fool, X)


@pytest.mark.parametrize("kwargs, steps, length", [({"learning_rate": 1e-3}, 3, 3e-3), ({}, 1, 1.0)],
                         ids=["given", "default"])
def test_fooling_steps_have_the_learning_rate_as_length(kwargs, steps, length):
    # A linear model's gradient is constant, so k steps move X by k * lr along W[t] / ||W[t]||.
    model = linear_model()
    X = torch.randn(1, 3, 6, 5, dtype=torch.float64)
    target = (int(model(X).argmax(1)) + 1) % 4
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        X1 = nv.make_fooling_image(X, target, model, max_iter=steps, **kwargs)
    w = model[1].weight.detach()[target].view(1, 3, 6, 5)
    torch.testing.assert_close(X1 - X, length * w / w.norm())


def test_fooling_warns_when_it_runs_out_of_steps():
    model = linear_model()
    X = torch.randn(1, 3, 6, 5, dtype=torch.float64)
    target = (int(model(X).argmax(1)) + 1) % 4
    with pytest.warns(RuntimeWarning, match="still predicts"):
        nv.make_fooling_image(X, target, model, learning_rate=1e-6, max_iter=2)
    with pytest.raises(ValueError, match=r"class index in 0\.\.3"):
        nv.make_fooling_image(X, 9, model)
    with pytest.raises(ValueError, match="one image, got a batch of 2"):
        nv.make_fooling_image(torch.cat([X, X]), 1, model)
    with pytest.raises(ValueError, match=r"make_fooling_image: X must be a float tensor of shape \(N, 3, H, W\)"):
        nv.make_fooling_image(X.numpy(), 1, model)


def test_class_visualization_step_is_normalised_ascent_with_l2_penalty():
    model = linear_model()
    img = torch.randn(1, 3, 6, 5, dtype=torch.float64)
    start = img.clone()
    out = nv.class_visualization_update_step(img, model, 1, l2_reg=0.1, learning_rate=2.0)
    g = model[1].weight.detach()[1].view(1, 3, 6, 5) - 2 * 0.1 * start  # d/dI (s_y - l2 ||I||^2)
    assert out is img
    torch.testing.assert_close(img, start + 2.0 * g / g.norm())


def test_class_visualization_raises_the_target_score_and_is_reproducible():
    model = conv_model()
    dtype = torch.float64
    out = nv.create_class_visualization(3, model, dtype, l2_reg=1e-3, learning_rate=5, num_iterations=30,
                                        max_jitter=2, image_size=16, seed=0)
    assert out.dtype == np.uint8 and out.shape == (16, 16, 3)
    again = nv.create_class_visualization(3, model, dtype, learning_rate=5, num_iterations=30,
                                          max_jitter=2, image_size=16, seed=0)
    np.testing.assert_array_equal(out, again)
    x = nv.preprocess(out, size=None).double()
    noise = torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(0), dtype=dtype)
    noise = torch.maximum(torch.minimum(noise, nv_hi(dtype)), nv_lo(dtype))
    with torch.no_grad():
        assert model(x)[0, 3] > model(noise)[0, 3]
        assert int(model(x).argmax(1)) == 3


def nv_lo(dtype):
    return torch.as_tensor(-SQUEEZENET_MEAN / SQUEEZENET_STD, dtype=dtype).view(1, 3, 1, 1)


def nv_hi(dtype):
    return torch.as_tensor((1 - SQUEEZENET_MEAN) / SQUEEZENET_STD, dtype=dtype).view(1, 3, 1, 1)


@pytest.mark.parametrize("shape,sigma", [((2, 3, 9, 7), 1.0), ((1, 3, 3, 4), 2.5), ((1, 1, 2, 2), 0.5)])
def test_blur_image_matches_scipy_in_place(shape, sigma):
    ndimage = pytest.importorskip("scipy.ndimage")
    X = torch.randn(*shape, dtype=torch.float64)
    want = ndimage.gaussian_filter1d(ndimage.gaussian_filter1d(X.numpy(), sigma, axis=2), sigma, axis=3)
    out = nv.blur_image(X, sigma=sigma)
    assert out is X
    np.testing.assert_allclose(X.numpy(), want, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="sigma must be positive"):
        nv.blur_image(X, sigma=0)


@pytest.mark.parametrize("ox,oy", [(0, 0), (3, 1), (-2, 4), (5, 0)])
def test_jitter_is_the_courses_wrap_around_shift_and_undoes_itself(ox, oy):
    X = torch.randn(2, 3, 6, 7)
    want = X
    if ox:
        want = torch.cat([want[:, :, :, -ox:], want[:, :, :, :-ox]], dim=3)
    if oy:
        want = torch.cat([want[:, :, -oy:], want[:, :, :-oy]], dim=2)
    torch.testing.assert_close(nv.jitter(X, ox, oy), want, rtol=0, atol=0)
    torch.testing.assert_close(nv.jitter(nv.jitter(X, ox, oy), -ox, -oy), X, rtol=0, atol=0)


def test_preprocess_resizes_and_normalises_and_deprocess_inverts_it():
    Image = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (12, 20, 3), dtype=np.uint8)
    x = nv.preprocess(img, size=6)
    assert x.shape == (1, 3, 6, 10) and x.dtype == torch.float32
    small = np.asarray(Image.fromarray(img).resize((10, 6), Image.Resampling.BILINEAR)) / 255.0
    want = (small - SQUEEZENET_MEAN) / SQUEEZENET_STD
    np.testing.assert_allclose(x[0].permute(1, 2, 0).numpy(), want, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(nv.deprocess(nv.preprocess(img, size=None), should_rescale=False), img)
    stretched = nv.deprocess(nv.preprocess(img, size=None))
    assert stretched.min() == 0 and stretched.max() == 255
    with pytest.raises(ValueError, match="one image"):
        nv.deprocess(torch.zeros(2, 3, 4, 4))


def test_rescale_spans_zero_to_one():
    x = torch.tensor([2.0, 4.0, 3.0])
    torch.testing.assert_close(nv.rescale(x), torch.tensor([0.0, 1.0, 0.5]))
    torch.testing.assert_close(nv.rescale(torch.full((3,), 7.0)), torch.zeros(3))


def test_class_visualization_takes_the_notebooks_tensor_type():
    # The notebooks set dtype = torch.FloatTensor (a type, not a torch.dtype).
    model = conv_model().float()
    kwargs = dict(learning_rate=5, num_iterations=3, max_jitter=2, image_size=16, seed=0)
    legacy = nv.create_class_visualization(3, model, torch.FloatTensor, **kwargs)
    np.testing.assert_array_equal(legacy, nv.create_class_visualization(3, model, torch.float32, **kwargs))
    with pytest.raises(ValueError, match="dtype must be a torch dtype"):
        nv.create_class_visualization(3, model, "float32", **kwargs)


@pytest.mark.parametrize("target, max_iter, message", [
    (9, 0, r"class index in 0\.\.3, got 9"),     # no step taken, still checked
    (-1, 0, r"class index in 0\.\.3, got -1"),
    (4, 0, r"class index in 0\.\.3, got 4"),      # one past the last class
    (1.5, 3, r"class index in 0\.\.3, got 1\.5"),
    (1, -1, "max_iter must be a non-negative int"),
    (1, 2.0, "max_iter must be a non-negative int"),
])
def test_fooling_checks_its_arguments_whatever_max_iter(target, max_iter, message):
    with pytest.raises(ValueError, match=message):
        nv.make_fooling_image(torch.randn(1, 3, 6, 5, dtype=torch.float64), target, linear_model(),
                              max_iter=max_iter)


def test_fooling_with_no_steps_returns_a_copy_or_warns():
    model = linear_model()
    X = torch.randn(1, 3, 6, 5, dtype=torch.float64)
    pred = int(model(X).argmax(1))
    out = nv.make_fooling_image(X, pred, model, max_iter=0)
    torch.testing.assert_close(out, X, rtol=0, atol=0)
    with pytest.warns(RuntimeWarning, match="after 0 steps"):
        nv.make_fooling_image(X, (pred + 1) % 4, model, max_iter=0)


@pytest.mark.parametrize("model_dtype, input_dtype", [(torch.float32, torch.float64),
                                                      (torch.float64, torch.float32)])
@pytest.mark.parametrize("use", ["saliency", "fooling", "visualization"])
def test_inputs_are_cast_to_the_models_dtype(model_dtype, input_dtype, use):
    # As style_transfer and CaptioningTransformer do: the model's parameters set the dtype,
    # so a float64 image and a float32 network work together, with the model-dtype result.
    model = conv_model().to(model_dtype)
    X = torch.randn(1, 3, 7, 7, dtype=torch.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if use == "saliency":
            got = nv.compute_saliency_maps(X.to(input_dtype), torch.tensor([2]), model)
            want = nv.compute_saliency_maps(X.to(model_dtype), torch.tensor([2]), model)
        elif use == "fooling":
            got = nv.make_fooling_image(X.to(input_dtype), 2, model, max_iter=3)
            want = nv.make_fooling_image(X.to(input_dtype).to(model_dtype), 2, model, max_iter=3)
        else:
            kw = dict(num_iterations=3, image_size=7, max_jitter=2, seed=0)
            got = nv.create_class_visualization(2, model, input_dtype, **kw)
            want = nv.create_class_visualization(2, model, model_dtype, **kw)
            # uint8 images from the same steps, taken in two precisions: a level apart at most
            assert np.abs(got.astype(int) - want.astype(int)).max() <= 1
            return
    assert got.dtype == model_dtype
    torch.testing.assert_close(got, want)


def _dropout_model(C=4, H=6, W=5):
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(3 * H * W, C)).double()   # train mode


@pytest.mark.parametrize("call", ["saliency", "fooling", "class_step"])
def test_each_function_puts_the_model_in_eval_mode_as_the_course_does(call):
    # The notebook never calls model.eval(); with dropout on, every look at the scores
    # would be a new draw and the fooling cell's "is it fooled?" check would fail at random.
    model = _dropout_model()
    X = torch.randn(1, 3, 6, 5, dtype=torch.float64)
    if call == "saliency":
        first = nv.compute_saliency_maps(X, torch.tensor([1]), model)
        torch.testing.assert_close(nv.compute_saliency_maps(X, torch.tensor([1]), model), first)
    elif call == "fooling":
        target = int(model.eval()(X).argmin(dim=1))
        model.train()
        fooled = nv.make_fooling_image(X, target, model, max_iter=200)
        assert int(model(fooled).argmax(dim=1)) == target
    else:
        nv.class_visualization_update_step(X.clone(), model, 0, 1e-3, 1.0)
    assert not model.training


def test_preprocess_resizes_the_shorter_side_to_224_by_default():
    pytest.importorskip("PIL.Image")
    img = np.random.default_rng(0).integers(0, 256, (10, 15, 3), dtype=np.uint8)
    assert nv.preprocess(img).shape == (1, 3, 224, 336)


def _normalised(pixels):
    return torch.from_numpy(((pixels / 255.0 - SQUEEZENET_MEAN) / SQUEEZENET_STD).transpose(2, 0, 1).copy())


def test_deprocess_stretches_by_default_and_clips_without_stretching():
    # pixels of 100..150 come back as they are without the stretch, and span 0..255 with it
    pixels = np.random.default_rng(1).integers(100, 151, (4, 5, 3)).astype(np.float64)
    pixels[0, 0], pixels[0, 1] = 100, 150
    x = _normalised(pixels)
    np.testing.assert_array_equal(nv.deprocess(x[None], should_rescale=False), pixels.astype(np.uint8))
    lo, hi = pixels.min(), pixels.max()
    want = np.round((pixels - lo) / (hi - lo) * 255)
    np.testing.assert_allclose(nv.deprocess(x).astype(float), want, atol=1)
    assert nv.deprocess(x).min() == 0 and nv.deprocess(x).max() == 255
    # values outside an image's range are clipped to 0 and 255
    wild = pixels.copy()
    wild[1, 1], wild[2, 2] = -300, 900
    out = nv.deprocess(_normalised(wild), should_rescale=False)
    assert out.dtype == np.uint8 and out[1, 1].tolist() == [0, 0, 0] and out[2, 2].tolist() == [255, 255, 255]


@pytest.mark.parametrize("shape, message", [((2, 3, 4, 4), "one image, got a batch of 2"),
                                            ((1, 4, 4, 4), r"\(1, 3, H, W\) or \(3, H, W\) image, got \(1, 4, 4, 4\)"),
                                            ((4, 4, 3), r"got \(4, 4, 3\)"), ((3, 4), r"got \(3, 4\)")])
def test_deprocess_refuses_what_is_not_one_image(shape, message):
    with pytest.raises(ValueError, match=message):
        nv.deprocess(torch.zeros(*shape))


def test_blur_image_sigma_defaults_to_one_and_needs_4d_images():
    ndimage = pytest.importorskip("scipy.ndimage")
    X = torch.randn(1, 3, 6, 5, dtype=torch.float64)
    want = ndimage.gaussian_filter1d(ndimage.gaussian_filter1d(X.numpy(), 1.0, axis=2), 1.0, axis=3)
    np.testing.assert_allclose(nv.blur_image(X).numpy(), want, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match=r"blur_image expects \(N, C, H, W\), got shape \(3, 6, 5\)"):
        nv.blur_image(X[0])


def test_fooling_takes_at_most_100_steps_by_default():
    model = linear_model()
    X = torch.randn(1, 3, 6, 5, dtype=torch.float64)
    target = (int(model(X).argmax(1)) + 1) % 4
    # a class no step can reach: its weights are zero and another class always wins
    with torch.no_grad():
        model[1].weight[target] = 0
        model[1].bias[target] = -1e6
    with pytest.warns(RuntimeWarning, match="after 100 steps"):
        nv.make_fooling_image(X, target, model)


@pytest.mark.parametrize("as_labels", [list, np.array])
def test_saliency_takes_labels_as_a_list_or_array(as_labels):
    model = linear_model()
    X = torch.randn(2, 3, 6, 5, dtype=torch.float64)
    torch.testing.assert_close(nv.compute_saliency_maps(X, as_labels([2, 0]), model),
                               nv.compute_saliency_maps(X, torch.tensor([2, 0]), model))


@pytest.mark.parametrize("img, target, message", [
    (np.zeros((1, 3, 6, 5)), 1, r"class_visualization_update_step: X must be a float tensor"),
    (torch.zeros(1, 3, 6, 5, dtype=torch.float64), 4,
     r"class_visualization_update_step: target_y must be a class index in 0\.\.3, got 4"),
    (torch.zeros(1, 3, 6, 5, dtype=torch.float64), 0.5, r"got 0\.5"),
])
def test_class_visualization_step_checks_its_arguments(img, target, message):
    with pytest.raises(ValueError, match=message):
        nv.class_visualization_update_step(img, linear_model(), target, 1e-3, 1.0)


def test_class_visualization_defaults(monkeypatch):
    # 100 steps of length 25 with l2_reg 1e-3, shifts of 0..16 pixels, a blur after steps 0, 10, ..., 90,
    # and a 224-pixel image
    calls, step = [], nv.class_visualization_update_step
    shifts, jitter = [], nv.jitter

    def spy_step(img, model, target_y, l2_reg, learning_rate):
        calls.append(("step", l2_reg, learning_rate))
        return step(img, model, target_y, l2_reg, learning_rate)

    def spy_jitter(X, ox, oy):
        shifts.extend([ox, oy])
        return jitter(X, ox, oy)

    monkeypatch.setattr(nv, "class_visualization_update_step", spy_step)
    monkeypatch.setattr(nv, "jitter", spy_jitter)
    monkeypatch.setattr(nv, "blur_image", lambda X, sigma: calls.append(("blur", sigma)) or X)
    out = nv.create_class_visualization(1, linear_model(H=8, W=8), torch.float64, image_size=8, seed=0)
    assert out.shape == (8, 8, 3)
    steps = [c for c in calls if c[0] == "step"]
    assert steps == [("step", 1e-3, 25)] * 100
    blurred_after = [sum(c[0] == "step" for c in calls[:i]) - 1 for i, c in enumerate(calls) if c[0] == "blur"]
    assert blurred_after == list(range(0, 100, 10)) and {c[1] for c in calls if c[0] == "blur"} == {0.5}
    assert min(shifts[::4]) == min(shifts[1::4]) == 0 and max(shifts[::4]) == max(shifts[1::4]) == 16
    noise = nv.create_class_visualization(1, conv_model(), torch.float64, num_iterations=0, seed=0)
    assert noise.shape == (224, 224, 3)


def test_class_visualization_of_a_model_without_parameters():
    model = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())     # the scores are the channel means
    out = nv.create_class_visualization(2, model, torch.float64, num_iterations=3, max_jitter=1, image_size=6, seed=0)
    assert out.shape == (6, 6, 3) and out.dtype == np.uint8


def test_class_visualization_undoes_each_jitter_and_clamps_to_the_image_range(monkeypatch):
    # No gradient and no L2 term leave the noise alone: what comes out is the starting noise,
    # unshifted, clamped to the range a real image normalises to.
    model = linear_model(H=8, W=8)
    with torch.no_grad():
        model[1].weight.zero_()
    seen, deprocess = [], nv.deprocess
    monkeypatch.setattr(nv, "deprocess",
                        lambda img, *a, **k: seen.append(img.detach().clone()) or deprocess(img, *a, **k))
    nv.create_class_visualization(1, model, torch.float64, l2_reg=0, num_iterations=3, blur_every=0, max_jitter=4,
                                  image_size=8, seed=0)
    noise = torch.randn(1, 3, 8, 8, generator=torch.Generator().manual_seed(0)).double()
    lo = torch.as_tensor(-SQUEEZENET_MEAN / SQUEEZENET_STD).view(1, 3, 1, 1)
    hi = torch.as_tensor((1 - SQUEEZENET_MEAN) / SQUEEZENET_STD).view(1, 3, 1, 1)
    torch.testing.assert_close(seen[-1], torch.maximum(torch.minimum(noise, hi), lo))
    assert (noise > hi).any() and (noise < lo).any()            # the clamp had work to do
    rng = random.Random(0)
    assert any(rng.randint(0, 4) for _ in range(6))             # and so did the jitter


@pytest.mark.parametrize("class_names, name", [(["a", "b", "c", "d"], "b"), (None, "class 1")])
def test_class_visualization_shows_the_first_every_show_every_th_and_the_last_step(monkeypatch, class_names, name):
    plt = pytest.importorskip("matplotlib.pyplot")
    shown = []

    def show():
        ax = plt.gca()
        shown.append((ax.get_title(), tuple(plt.gcf().get_size_inches()), ax.axison,
                      ax.get_images()[-1].get_array().shape))
        plt.close("all")

    monkeypatch.setattr(plt, "show", show)
    nv.create_class_visualization(1, linear_model(H=8, W=8), torch.float64, class_names, num_iterations=7,
                                  show_every=3, image_size=8, seed=0)
    assert shown == [(f"{name}\nIteration {t} / 7", (4.0, 4.0), False, (8, 8, 3)) for t in (1, 3, 6, 7)]
    shown.clear()
    nv.create_class_visualization(1, linear_model(H=8, W=8), torch.float64, num_iterations=3, image_size=8, seed=0)
    assert shown == []
