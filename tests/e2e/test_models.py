"""Real networks end to end: every convolution rewritten by the plugin (counts
checked against the model's own Conv layers), run on IREE (and the embedded
runner for the smaller ones), compared with PyTorch eager by the verify job's
relative-to-max-abs metric (torch_grouped_conv/verify.py)."""

from __future__ import annotations

import pytest

from tests.support.models import MODEL_CASES, ModelCase, expected_counts
from torch_grouped_conv.verify import verify_model

# The embedded runner lowers linalg to plain loops: fine for the small nets,
# too slow to run the big ones (resnet50: ~4 GFLOP per call) inside the test budget.
REFBACKEND_MODELS = {"mobilenet_v2", "mobilenet_v3_small", "shufflenet_v2_x1_0", "positional_conv_block"}


def model_params(backend: str) -> list:
    cases = MODEL_CASES if backend == "iree" else [c for c in MODEL_CASES if c.name in REFBACKEND_MODELS]
    return [pytest.param(c, id=c.name, marks=(pytest.mark.slow,) if c.slow else ()) for c in cases]


def check_model(case: ModelCase, backend: str) -> None:
    model = case.build()
    result = verify_model(model, case.example_input(), name=case.spec, backend=backend)
    assert result.report.refused == [], result.report.summary()
    assert result.report.counts() == expected_counts(model)
    assert result.passed, (
        f"{case.name} on {backend}: max rel error {result.comparison.max_rel_error:.3e} "
        f"> {result.comparison.tolerance:.0e}"
    )


@pytest.mark.parametrize("case", model_params("iree"))
def test_model_on_iree(case: ModelCase) -> None:
    check_model(case, "iree")


@pytest.mark.parametrize("case", model_params("refbackend"))
def test_model_on_refbackend(case: ModelCase) -> None:
    check_model(case, "refbackend")
