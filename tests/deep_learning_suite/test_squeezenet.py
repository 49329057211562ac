import os
import pickle

import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

from deep_learning_suite import squeezenet as sq  # noqa: E402


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return sq.squeezenet1_1().eval()


def test_parameter_count_and_names_match_torchvision(model):
    # torchvision.models.squeezenet1_1() has 1,235,496 parameters in 52 state-dict entries.
    assert sum(p.numel() for p in model.parameters()) == 1_235_496
    keys = list(model.state_dict())
    assert len(keys) == 52
    assert keys[:4] == ["features.0.weight", "features.0.bias", "features.3.squeeze.weight",
                        "features.3.squeeze.bias"]
    assert keys[-2:] == ["classifier.1.weight", "classifier.1.bias"]
    assert len(model.features) == 13


@pytest.mark.parametrize("size,fmap", [(224, 13), (64, 3), (17, 1)])
def test_feature_and_score_shapes(model, size, fmap):
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        assert model.features(x).shape == (2, 512, fmap, fmap)
        assert model(x).shape == (2, 1000)


def test_fire_module_is_squeeze_then_two_expands_concatenated():
    torch.manual_seed(1)
    fire = sq.Fire(8, 3, 5, 7).double()
    x = torch.randn(2, 8, 6, 6, dtype=torch.float64)
    s = F.relu(F.conv2d(x, fire.squeeze.weight, fire.squeeze.bias))
    want = torch.cat([F.relu(F.conv2d(s, fire.expand1x1.weight, fire.expand1x1.bias)),
                      F.relu(F.conv2d(s, fire.expand3x3.weight, fire.expand3x3.bias, padding=1))], 1)
    torch.testing.assert_close(fire(x), want)
    assert fire(x).shape == (2, 12, 6, 6)


def test_num_classes_and_classifier_init():
    m = sq.squeezenet1_1(num_classes=7)
    assert m(torch.randn(1, 3, 32, 32)).shape == (1, 7)
    w = m.classifier[1].weight
    assert abs(float(w.detach().std()) - 0.01) < 0.003  # N(0, 0.01) for the class scores
    assert all(float(mod.bias.detach().abs().max()) == 0 for mod in m.modules() if isinstance(mod, torch.nn.Conv2d))


def test_weights_round_trip_through_a_state_dict_file(tmp_path, model):
    path = tmp_path / "squeezenet1_1.pth"
    torch.save(model.state_dict(), path)
    loaded = sq.squeezenet1_1(weights=path).eval()
    x = torch.randn(1, 3, 40, 40)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)
    also = sq.squeezenet1_1(weights=model.state_dict()).eval()
    with torch.no_grad():
        torch.testing.assert_close(also(x), model(x), rtol=0, atol=0)


def test_wrong_weights_get_a_clear_error(tmp_path, model):
    path = tmp_path / "w.pth"
    torch.save(model.state_dict(), path)
    with pytest.raises(ValueError, match=r"classifier\.1\.weight: file \(1000, 512, 1, 1\) vs model \(10, 512, 1, 1\)"):
        sq.squeezenet1_1(weights=path, num_classes=10)
    partial = {k: v for k, v in model.state_dict().items() if not k.startswith("classifier")}
    with pytest.raises(ValueError, match=r"missing \['classifier\.1\.bias'"):
        sq.squeezenet1_1(weights=partial)
    with pytest.raises(FileNotFoundError, match="no weights file"):
        sq.squeezenet1_1(weights=tmp_path / "nope.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"\x00not a checkpoint")
    with pytest.raises(ValueError, match="weights_only=True"):
        sq.squeezenet1_1(weights=junk)


class _Hostile:
    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_weights_file_that_runs_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    _Hostile.marker = marker
    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        pickle.dump({"features.0.weight": _Hostile()}, f, protocol=2)
    with pytest.raises(ValueError, match="weights_only=True"):
        sq.squeezenet1_1(weights=path)
    assert not marker.exists()


def test_pretrained_weights_are_not_fetched_when_download_is_off(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="squeezenet1_1-b8a52dc0.pth"):
        sq.pretrained_weights_path(download=False)


def test_a_download_with_the_wrong_hash_is_deleted(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))

    def fake_download(url, dest, progress=True):
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(b"tampered")
        return dest

    monkeypatch.setattr(sq, "download_url", fake_download)
    with pytest.raises(sq.ChecksumError, match="b8a52dc0"):
        sq.pretrained_weights_path()
    assert not any(p.is_file() for p in tmp_path.rglob("*"))


def test_bad_image_shapes_are_rejected(model):
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        model(torch.randn(1, 1, 32, 32))
    with pytest.raises(ValueError, match="at least 17x17"):
        model(torch.randn(1, 3, 16, 40))


@pytest.fixture
def cached_imagenet_weights(tmp_path, monkeypatch, model):
    """A stand-in for torchvision's ImageNet file, in the cache where a download would put it."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    path = tmp_path / "cs231n-toolkit" / "models" / "squeezenet1_1-b8a52dc0.pth"
    path.parent.mkdir(parents=True)
    torch.save(model.state_dict(), path)

    def no_network(*args, **kwargs):
        raise AssertionError("the cached weights must be used, not downloaded")

    monkeypatch.setattr(sq, "download_url", no_network)
    return model.state_dict()


@pytest.mark.parametrize("spelling", [
    dict(weights="IMAGENET1K_V1"), dict(weights="DEFAULT"), dict(weights=True),
    dict(weights="SqueezeNet1_1_Weights.IMAGENET1K_V1"), dict(weights="SqueezeNet1_1_Weights.DEFAULT"),
    dict(pretrained=True),   # torchvision < 0.13, as the course's notebooks write it
])
def test_torchvisions_spellings_of_the_imagenet_weights_load_them(cached_imagenet_weights, spelling):
    m = sq.squeezenet1_1(**spelling)
    assert m.training   # as torchvision returns it
    for k, v in m.state_dict().items():
        assert torch.equal(v, cached_imagenet_weights[k]), k


def test_pretrained_false_is_random_init(cached_imagenet_weights):
    torch.manual_seed(3)
    m = sq.squeezenet1_1(pretrained=False)
    assert not torch.equal(m.features[0].weight, cached_imagenet_weights["features.0.weight"])
    torch.manual_seed(3)
    torch.testing.assert_close(m.state_dict(), sq.squeezenet1_1().state_dict(), rtol=0, atol=0)


@pytest.mark.parametrize("kwargs, match", [
    (dict(pretrained=True, weights="DEFAULT"), "either weights= or the older pretrained=, not both"),
    (dict(pretrained=False, weights="IMAGENET1K_V1"), "either weights= or the older pretrained=, not both"),
    (dict(pretrained="yes"), "pretrained must be True or False"),
])
def test_pretrained_with_weights_or_not_a_bool_is_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        sq.squeezenet1_1(**kwargs)


def test_a_misspelt_weights_name_says_what_weights_takes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"no weights file at IMAGENET1K_V2.*'IMAGENET1K_V1' or 'DEFAULT'"):
        sq.squeezenet1_1(weights="IMAGENET1K_V2")
