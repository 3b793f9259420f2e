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
