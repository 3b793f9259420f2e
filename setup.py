"""torch-grouped-conv: a torch-mlir plugin lowering aten.convolution to linalg."""

from pathlib import Path

from setuptools import find_packages, setup

setup(
    name="torch-grouped-conv",
    version="0.1.0",
    description="Lower torch.aten.convolution (grouped, depthwise, plain) to MLIR linalg, verified against PyTorch",
    long_description=Path("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.11,<3.12",
    packages=find_packages(include=["torch_grouped_conv", "torch_grouped_conv.*"]),
    # The benchmark's shape suite ships with the package (`torch-grouped-conv bench`
    # works from pip install); a test keeps it identical to ../shared/bench/shapes.json.
    # The BLAS plugin's C source (runners/blas.py builds it on first use, with the C compiler).
    package_data={"torch_grouped_conv.bench": ["shapes.json"], "torch_grouped_conv.runners": ["blas_plugin.c"]},
    install_requires=[
        # The pinned stack: torch-mlir's wheel is built against this torch, and
        # the IR it emits is what IREE 3.13 accepts.
        "torch==2.14.1",
        "torchvision==0.29.1",
        "torch-mlir==20261001",
        "iree-base-compiler==3.13.0",
        "iree-base-runtime==3.13.0",
        "numpy",
        "rich",  # CLI tables and the benchmark's progress bars
        "ml_dtypes",
    ],
    extras_require={
        # The ONNX frontend: compile_onnx, `verify model.onnx` against onnxruntime.
        "onnx": ["onnx", "onnxruntime", "onnxscript"],
        # ONNX Runtime is the benchmark's peer column (torch.onnx export -> onnxruntime CPU).
        # matplotlib draws the plot (without it the JSON and markdown are still written).
        "bench": ["onnx", "onnxruntime", "onnxscript", "matplotlib"],
        # pytest < 9.2: pytest 9.2 keeps a node's id in `_id`, and pytest-xdist 3.8 (the newest)
        # still appends a test's xdist_group to `_nodeid`, so `--dist loadgroup` silently drops
        # every group (tests/conftest.py stops the run when that happens).
        "test": ["pytest>=9,<9.2", "pytest-xdist>=3.8", "hypothesis", "mypy", "ruff", "onnx", "onnxruntime",
                 "onnxscript", "matplotlib"],
    },
    entry_points={
        "console_scripts": ["torch-grouped-conv=torch_grouped_conv.cli:main"],
        # torch.compile(model, backend="torch_grouped_conv"): torch._dynamo.backends.registry
        # reads this group (_discover_entrypoint_backends).
        "torch_dynamo_backends": ["torch_grouped_conv = torch_grouped_conv.frontends.dynamo:backend"],
    },
)
