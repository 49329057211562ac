"""bench_course.py loads a user's copy of the course's code: every path is run here on a stand-in
course package that the tests write (the course's code is not part of this project)."""

import re
import sys
from pathlib import Path

import pytest

from . import load_benchmark

pytest.importorskip("torch")


# The course's fast_layers API, backed by this toolkit's naive layers; SCALE != 1 makes it wrong.
FAKE_FAST_LAYERS = """\
from deep_learning_suite import conv_layers
from cs231n.im2col_cython import col2im_6d_cython  # noqa: F401  (the course imports its extension)

SCALE = {scale}


def conv_forward_fast(x, w, b, conv_param):
    out, cache = conv_layers.conv_forward_naive(x, w, b, conv_param)
    return out * SCALE, cache


def conv_backward_fast(dout, cache):
    return conv_layers.conv_backward_naive(dout, cache)


def max_pool_forward_fast(x, pool_param):
    return conv_layers.max_pool_forward_naive(x, pool_param)


def max_pool_backward_fast(dout, cache):
    return conv_layers.max_pool_backward_naive(dout, cache)
"""


def write_course(root, scale=1.0, extension=True):
    package = root / "cs231n"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "fast_layers.py").write_text(FAKE_FAST_LAYERS.format(scale=scale))
    if extension:
        (package / "im2col_cython.py").write_text("def col2im_6d_cython(*args):\n    raise NotImplementedError\n")
    return root


def load_script():
    return load_benchmark("bench_course")


@pytest.fixture(autouse=True)
def forget_course_modules():
    yield
    for name in [m for m in sys.modules if m == "cs231n" or m.startswith("cs231n.")]:
        del sys.modules[name]


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def test_quick_run_times_every_implementation_after_checking_agreement(tmp_path, capsys):
    course = write_course(tmp_path / "assignment2")
    rc = load_script().main(["--course-dir", str(course), "--quick", "--repeats", "2"])
    out = capsys.readouterr().out
    assert rc == 0
    assert f"course code: {(course / 'cs231n' / 'fast_layers.py').resolve()}" in out
    for dtype in ("float64", "float32"):
        for case in ("conv x(100, 3, 31, 31) w25x3x3 s2 p1", "maxpool x(100, 3, 32, 32) 2x2/2"):
            assert re.search(rf"^{re.escape(case)} +{dtype} +course( +\d+\.\d\d){{3}}$", out, re.M), (case, dtype)
    number = r"\d+\.\d\d"
    fast_rows = re.findall(rf"^ +fast( +{number}){{6}} +(\S+)$", out, re.M)
    torch_rows = re.findall(rf"^ +torch( +{number}){{6}} +(\S+)$", out, re.M)
    assert len(fast_rows) == len(torch_rows) == 4
    # The stand-in course is the naive code: the fast layers must match it closely.
    assert all(float(diff) < 1e-4 for _, diff in fast_rows)
    assert re.search(r"faster than the course's code in \d of 4 cases", out)


def test_one_dtype_only(tmp_path, capsys):
    course = write_course(tmp_path / "a")
    assert load_script().main(["--course-dir", str(course), "--quick", "--repeats", "1", "--dtype", "float32"]) == 0
    out = capsys.readouterr().out
    assert "float32" in out and "float64" not in out
    assert re.search(r"faster than the course's code in \d of 2 cases", out)


def test_course_code_that_disagrees_is_not_timed(tmp_path, capsys):
    course = write_course(tmp_path / "a", scale=1.001)
    with pytest.raises(SystemExit, match=r"conv x\(100, 3, 31, 31\).*float64: this toolkit and the course's "
                                         r"code disagree"):
        load_script().main(["--course-dir", str(course), "--quick", "--repeats", "1"])
    assert " fast " not in capsys.readouterr().out


def test_a_course_package_imported_earlier_does_not_answer_for_the_one_asked_for(tmp_path):
    good = write_course(tmp_path / "good")
    bad = write_course(tmp_path / "bad", scale=1.001)
    script = load_script()
    assert Path(script.load_course(good).__file__).resolve().parent == (good / "cs231n").resolve()
    module = script.load_course(bad)
    assert Path(module.__file__).resolve().parent == (bad / "cs231n").resolve()
    assert module.SCALE == 1.001
    assert str(bad.resolve()) not in sys.path  # the course folder is not left on the path


def test_folder_without_the_course_package_names_what_to_pass(tmp_path):
    with pytest.raises(SystemExit, match=r"there is no cs231n/fast_layers.py in it; pass the assignment folder"):
        load_script().main(["--course-dir", str(tmp_path), "--quick"])


def test_unbuilt_extension_says_how_to_build_it(tmp_path):
    course = write_course(tmp_path / "a", extension=False)
    with pytest.raises(SystemExit, match=r"Cython extension is not built .* python setup.py build_ext --inplace"):
        load_script().main(["--course-dir", str(course), "--quick"])


def test_repeats_below_one_is_refused(tmp_path, capsys):
    course = write_course(tmp_path / "a")
    with pytest.raises(SystemExit) as e:
        load_script().main(["--course-dir", str(course), "--repeats", "0"])
    assert e.value.code == 2
    assert "--repeats must be at least 1" in capsys.readouterr().err


def test_rounds_rotate_the_order_and_every_implementation_runs_each_round():
    script = load_script()
    calls = []

    def step(name):
        return (lambda: (calls.append(name), None), lambda out, cache: None)

    times = script.time_interleaved({n: step(n) for n in ("a", "b", "c")}, repeats=3)
    assert set(times) == {"a", "b", "c"}
    assert all(f >= 0 and b >= 0 for f, b in times.values())
    # One warm-up call each, then rounds starting at a, b, c in turn.
    assert calls == list("abc") + list("abc") + list("bca") + list("cab")


def test_missing_pytorch_says_how_to_install_it(tmp_path, monkeypatch):
    course = write_course(tmp_path / "a")
    script = load_script()
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
    with pytest.raises(SystemExit, match=r"PyTorch is not installed: pip install .*\[torch\]"):
        script.main(["--course-dir", str(course), "--quick"])

