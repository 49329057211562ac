import numpy as np
import pytest

torch = pytest.importorskip("torch")

from deep_learning_suite import gan  # noqa: E402
from deep_learning_suite.data import load_sample  # noqa: E402


@pytest.fixture(autouse=True)
def one_thread(torch_one_thread):
    yield


def test_sample_noise_is_uniform_in_minus_one_one_and_seedable():
    z = gan.sample_noise(2000, 7)
    assert z.shape == (2000, 7) and z.min() >= -1 and z.max() < 1
    assert abs(z.mean().item()) < 0.03 and abs(z.var().item() - 1 / 3) < 0.02
    assert torch.equal(gan.sample_noise(3, 4, seed=5), gan.sample_noise(3, 4, seed=5))
    assert not torch.equal(z[0], z[1])


@pytest.mark.parametrize("build, count", [
    # The GAN notebook's parameter-count checks (its generator checks use noise_dim 4).
    (lambda: gan.discriminator(), 267009),
    (lambda: gan.generator(4), 1858320),
    (lambda: gan.build_dc_classifier(128), 1102721),
    (lambda: gan.build_dc_generator(4), 6580801),
])
def test_parameter_counts_match_the_notebook(build, count):
    assert gan.count_params(build()) == count


def test_shapes_through_the_networks():
    x = torch.rand(6, 1, 28, 28)
    assert gan.discriminator()(x).shape == (6, 1)
    assert gan.build_dc_classifier(6)(x.reshape(6, 784)).shape == (6, 1)
    for G in (gan.generator(), gan.build_dc_generator()):
        out = G(gan.sample_noise(6, gan.NOISE_DIM))
        assert out.shape == (6, 784) and out.abs().max() <= 1


def test_losses_are_the_formulas(rng):
    real, fake = torch.tensor(rng.standard_normal((9, 1))), torch.tensor(rng.standard_normal((9, 1)))
    sig = torch.sigmoid
    d = -(torch.log(sig(real)).mean() + torch.log(1 - sig(fake)).mean())
    assert torch.isclose(gan.discriminator_loss(real, fake), d)
    assert torch.isclose(gan.generator_loss(fake), -torch.log(sig(fake)).mean())
    assert torch.isclose(gan.ls_discriminator_loss(real, fake),
                         0.5 * ((real - 1) ** 2).mean() + 0.5 * (fake ** 2).mean())
    assert torch.isclose(gan.ls_generator_loss(fake), 0.5 * ((fake - 1) ** 2).mean())
    # Stable where log(sigmoid) of the logits would overflow.
    big = torch.tensor([[1000.0], [-1000.0]])
    assert torch.isfinite(gan.discriminator_loss(big, -big)) and gan.generator_loss(big[:1]) == 0


def test_image_range_maps_round_trip():
    x = torch.rand(5)
    assert torch.allclose(gan.deprocess_img(gan.preprocess_img(x)), x)
    assert gan.preprocess_img(torch.tensor(0.0)) == -1 and gan.preprocess_img(torch.tensor(1.0)) == 1


def test_initialize_weights_is_xavier_uniform():
    torch.manual_seed(0)
    layer = torch.nn.Linear(300, 200)
    gan.initialize_weights(layer)
    bound = np.sqrt(6 / (300 + 200))
    w = layer.weight.detach()
    assert w.abs().max() <= bound and w.abs().max() > 0.95 * bound


def _loader(batch_size, n):
    images = torch.tensor(load_sample()["X_train"][:n], dtype=torch.float32)[:, None] / 255
    return [(images[i:i + batch_size], None) for i in range(0, n, batch_size)]


@pytest.mark.parametrize("losses", [(gan.discriminator_loss, gan.generator_loss),
                                    (gan.ls_discriminator_loss, gan.ls_generator_loss)])
def test_run_a_gan_trains_both_networks(losses, capsys):
    # A short run on the shipped Fashion-MNIST sample: both players take steps, and the
    # discriminator learns to score real images above generated ones.
    torch.manual_seed(0)
    D, G = gan.discriminator(), gan.generator()
    D.apply(gan.initialize_weights)
    G.apply(gan.initialize_weights)
    G0 = [p.detach().clone() for p in G.parameters()]
    loader = _loader(32, 32 * 20 + 7)           # the short last batch is skipped
    history = []
    images = gan.run_a_gan(D, G, gan.get_optimizer(D), gan.get_optimizer(G), *losses, loader,
                           show_every=10, batch_size=32, num_epochs=1, history=history)
    # the course's return value is the list of image batches the notebook shows one by one
    assert isinstance(images, list) and len(images) == 2
    assert len(history) == 20
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    for img in images:                          # the notebook's cell after training
        assert len(gan.show_images(img).axes) == 16
    plt.close("all")
    assert images[0].shape == (16, 784) and np.abs(images[0]).max() <= 1
    assert all(np.isfinite(d) and np.isfinite(g) for _, d, g in history)
    assert any(not torch.equal(a, b) for a, b in zip(G0, G.parameters()))
    assert "Iter: 0, D:" in capsys.readouterr().out
    with torch.no_grad():
        real = D(gan.preprocess_img(loader[0][0])).mean()
        fake = D(G(gan.sample_noise(32, gan.NOISE_DIM)).view(32, 1, 28, 28)).mean()
    assert real > fake


def test_optimizer_settings():
    opt = gan.get_optimizer(gan.discriminator())
    assert isinstance(opt, torch.optim.Adam)
    assert opt.defaults["lr"] == 1e-3 and opt.defaults["betas"] == (0.5, 0.999)


def test_chunk_sampler_yields_a_fixed_slice():
    sampler = gan.ChunkSampler(5, start=3)
    assert list(sampler) == [3, 4, 5, 6, 7] and len(sampler) == 5
    data = torch.utils.data.TensorDataset(torch.arange(10))
    batches = list(torch.utils.data.DataLoader(data, batch_size=2, sampler=sampler))
    assert [b[0].tolist() for b in batches] == [[3, 4], [5, 6], [7]]


def test_show_images_draws_one_panel_per_image():
    pytest.importorskip("matplotlib")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig = gan.show_images(np.random.default_rng(0).random((5, 784)))
    try:
        assert len([ax for ax in fig.axes if ax.images]) == 5 and len(fig.axes) == 9
    finally:
        plt.close(fig)


def _nan_after(loss, calls):
    """``loss``, made NaN from its ``calls``-th call on (1-based)."""
    count = [0]

    def wrapped(*args):
        count[0] += 1
        out = loss(*args)
        return out * float("nan") if count[0] >= calls else out
    return wrapped


@pytest.mark.parametrize("player", ["discriminator", "generator"])
@pytest.mark.parametrize("calls", [1, 3])
def test_run_a_gan_stops_on_a_nan_loss_before_that_step(player, calls):
    from deep_learning_suite.trainer import TrainingDivergedError
    torch.manual_seed(0)
    D, G = gan.discriminator(), gan.generator()
    D_solver, G_solver = gan.get_optimizer(D), gan.get_optimizer(G)
    d_loss, g_loss = gan.discriminator_loss, gan.generator_loss
    if player == "discriminator":
        d_loss = _nan_after(d_loss, calls)
    else:
        g_loss = _nan_after(g_loss, calls)
    stepped = []
    for solver, name in ((D_solver, "discriminator"), (G_solver, "generator")):
        solver.register_step_post_hook(lambda *a, name=name: stepped.append(name))
    loader = [(torch.rand(4, 1, 28, 28), None)] * 2
    with pytest.raises(TrainingDivergedError,
                       match=rf"the {player} loss is nan at iteration {calls - 1} "
                             rf"\(epoch {(calls - 1) // 2 + 1} of 2\); lower"):
        gan.run_a_gan(D, G, D_solver, G_solver, d_loss, g_loss, loader, batch_size=4,
                      num_epochs=2, verbose=False)
    # Every finite loss was stepped, the NaN one was not: D and G alternate.
    want = ["discriminator", "generator"] * (calls - 1) + (["discriminator"] if player == "generator" else [])
    assert stepped == want
    assert all(torch.isfinite(p).all() for p in [*D.parameters(), *G.parameters()])


@pytest.mark.parametrize("sizes, batch_size", [([4, 4], 128), ([32, 32, 7], 16), ([7], 32)])
def test_run_a_gan_refuses_a_loader_whose_batches_are_all_skipped(sizes, batch_size):
    torch.manual_seed(0)
    D, G = gan.discriminator(), gan.generator()
    loader = [(torch.rand(n, 1, 28, 28), None) for n in sizes]
    with pytest.raises(ValueError, match=rf"every batch of epoch 1 was skipped.*batch_size is "
                                         rf"{batch_size}.*batch_size={max(sizes)}.*drop_last=True"):
        gan.run_a_gan(D, G, gan.get_optimizer(D), gan.get_optimizer(G), gan.discriminator_loss,
                      gan.generator_loss, loader, batch_size=batch_size, num_epochs=1, verbose=False)
    with pytest.raises(ValueError, match="yielded no batches"):
        gan.run_a_gan(D, G, gan.get_optimizer(D), gan.get_optimizer(G), gan.discriminator_loss,
                      gan.generator_loss, [], batch_size=batch_size, verbose=False)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_run_a_gan_computes_in_the_models_dtype(dtype):
    # The loader's float32 images and the noise follow the networks' dtype, as the device does.
    torch.manual_seed(0)
    D, G = gan.discriminator().to(dtype), gan.generator().to(dtype)
    loader = [(torch.rand(4, 1, 28, 28), None)] * 2
    history = []
    images = gan.run_a_gan(D, G, gan.get_optimizer(D), gan.get_optimizer(G), gan.discriminator_loss,
                           gan.generator_loss, loader, show_every=1, batch_size=4, num_epochs=1,
                           verbose=False, history=history)
    assert len(history) == 2 and all(np.isfinite(d) and np.isfinite(g) for _, d, g in history)
    assert images[0].dtype == {torch.float32: np.float32, torch.float64: np.float64}[dtype]
    assert all(p.dtype == dtype for p in [*D.parameters(), *G.parameters()])


@pytest.mark.parametrize("logits_shape, target_shape", [
    ((4, 1), (4,)),          # the course's call: D's (N, 1) scores against torch.ones(N)
    ((1, 1), (1,)),          # N = 1, where the course's squeeze() would leave a 0-d tensor
    ((4,), (4, 1)),
    ((4, 1), (4, 1)),
])
def test_bce_loss_takes_scores_and_targets_of_one_size_in_any_shape(rng, logits_shape, target_shape):
    s = torch.tensor(rng.standard_normal(logits_shape))
    y = torch.tensor(rng.integers(0, 2, target_shape), dtype=s.dtype)
    flat_s, flat_y = s.reshape(-1), y.reshape(-1)
    want = (flat_s.clamp(min=0) - flat_s * flat_y + torch.log1p(torch.exp(-flat_s.abs()))).mean()
    assert torch.isclose(gan.bce_loss(s, y), want)


def test_bce_loss_refuses_scores_and_targets_of_different_sizes():
    with pytest.raises(ValueError, match=r"bce_loss: input has 4 scores \(shape \(4, 1\)\) but target "
                                         r"has 3 labels \(shape \(3,\)\)"):
        gan.bce_loss(torch.zeros(4, 1), torch.ones(3))
