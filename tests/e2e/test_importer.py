"""FastLiteralHooks must produce exactly the IR torch-mlir's default import does."""

import torch
from torch_mlir import fx

from torch_grouped_conv import api


class SharedWeights(torch.nn.Module):
    """f32 and f64 weights, a scalar buffer and one tensor used twice."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(4, 8, 3, groups=2)
        self.register_buffer("scale", torch.tensor(0.5))
        self.register_buffer("table", torch.randn(8, 1, 1, dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x) * self.scale
        return self.conv(y[:, :4]) + self.table.float()[:8:2].sum()


def test_fast_import_matches_default_import() -> None:
    program = api.export_program(SharedWeights().eval(), torch.randn(1, 4, 9, 9))
    fast = api.import_to_torch(program)
    default = fx.export_and_import(program, output_type="torch")
    assert str(fast) == str(default)
    assert "dense_resource<torch_tensor_8_2_3_3_torch.float32>" in str(fast)
