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
