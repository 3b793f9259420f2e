"""Entry points: each frontend brings a model to torch-backend IR its own way,
then hands it to the same stages (../stages.py: the plugin, the linalg
pipeline) and the same runners.

- torch_export: `compile(model, *args)` (torch.export + torch-mlir's FX importer);
- onnx:         `compile_onnx(path_or_proto)` (torch-mlir's ONNX importer), verified against onnxruntime;
- dynamo:       `torch.compile(model, backend="torch_grouped_conv")`;
- torch_ir:     `lower(module)` on torch IR from anywhere (raw import output included);
- plugin_pass:  the plugin as a pass for anyone's `PassManager`.
"""
