"""The README's Python blocks run as written: a user's first copy-paste must work."""
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_python_blocks():
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_python_block_runs(index, capsys):
    namespace = {}
    exec(compile(BLOCKS[index], f"README.md python block {index}", "exec"), namespace)
    if "solver" in namespace:        # the training example: it must actually learn
        assert namespace["solver"].best_val_acc > 0.8     # the text says 0.833
        assert "best validation accuracy" in capsys.readouterr().out
