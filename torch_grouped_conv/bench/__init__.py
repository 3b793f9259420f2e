"""The benchmark (`torch-grouped-conv bench`): PyTorch eager, ONNX Runtime,
torch-mlir's own lowering + IREE and the plugin's strategies + IREE, timed in
steady state at 1 and 2 threads; whole networks first. Entry point:
`run.main(argv)`. Ships with its shape suite (shapes.json), so it runs from an
installed package."""
