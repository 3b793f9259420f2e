"""The grouped-convolution benchmark: PyTorch eager vs upstream torch-mlir vs
the plugin's strategies, all on IREE llvm-cpu. Entry point: `run.main(argv)`."""
