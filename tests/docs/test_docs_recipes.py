"""docs/usage.md's entry-point recipes run as written, in order, in one namespace
(later recipes reuse the model of the first)."""

import re
from pathlib import Path

USAGE = Path(__file__).resolve().parents[2] / "docs" / "usage.md"


def test_usage_recipes_run() -> None:
    blocks = re.findall(r"```python\n(.*?)```", USAGE.read_text(), flags=re.S)
    assert len(blocks) == 5, "docs/usage.md has one recipe per entry point (torch.export, ONNX, torch.compile, pass, lower)"
    namespace: dict[str, object] = {}
    for block in blocks:
        exec(compile(block, str(USAGE), "exec"), namespace)
