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


def test_fooling_steps_have_the_learning_rate_as_length():
    # A linear model's gradient is constant, so k steps move X by k * lr along W[t] / ||W[t]||.
    model = linear_model()
    X = torch.randn(1, 3, 6, 5, dtype=torch.float64)
    target = (int(model(X).argmax(1)) + 1) % 4
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        X1 = nv.make_fooling_image(X, target, model, learning_rate=1e-3, max_iter=3)
    w = model[1].weight.detach()[target].view(1, 3, 6, 5)
    torch.testing.assert_close(X1 - X, 3e-3 * w / w.norm())


def test_fooling_warns_when_it_runs_out_of_steps():
    model = linear_model()
    X = torch.randn(1, 3, 6, 5, dtype=torch.float64)
    target = (int(model(X).argmax(1)) + 1) % 4
    with pytest.warns(RuntimeWarning, match="still predicts"):
        nv.make_fooling_image(X, target, model, learning_rate=1e-6, max_iter=2)
    with pytest.raises(ValueError, match=r"class index in 0\.\.3"):
        nv.make_fooling_image(X, 9, model)
    with pytest.raises(ValueError, match="one image"):
        nv.make_fooling_image(torch.cat([X, X]), 1, model)


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
