"""The package's error types. The CLI maps InputError to exit code 2."""


class GroupedConvError(Exception):
    """Base class of every error this package raises on purpose."""


class InputError(GroupedConvError):
    """Bad user input: a missing file, an unknown model spec, a malformed shape,
    IR not in torch-backend form. The message is one line: what is wrong and
    what to do."""


class CompileError(GroupedConvError):
    """A compiler stage failed. The message names the stage, the diagnostics
    and, where there is one, a file and command that reproduce the failure."""


class ModelInputError(InputError):
    """The user's model raised on its example input, while torch.export traced
    it or while it ran eagerly (e.g. an input with the wrong channel count).

    One line: the model, the input shape(s), the stage and PyTorch's own
    message (its first line). `renamed` gives the same error under another
    model name (the CLI uses its MODEL argument).
    """

    def __init__(self, model: str, input_shapes: list[list[int]], stage: str, pytorch_message: str):
        self.model, self.input_shapes, self.stage, self.pytorch_message = model, input_shapes, stage, pytorch_message
        shapes = ", ".join(str(s) for s in input_shapes) or "no tensor"
        super().__init__(f"{model} rejects input shape {shapes} ({stage}): {pytorch_message}")

    @classmethod
    def from_exception(cls, model: str, input_shapes: list[list[int]], stage: str, error: BaseException) -> "ModelInputError":
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        return cls(model, input_shapes, stage, f"{type(error).__name__}: {lines[0] if lines else '(no message)'}")

    def renamed(self, model: str) -> "ModelInputError":
        return ModelInputError(model, self.input_shapes, self.stage, self.pytorch_message)
