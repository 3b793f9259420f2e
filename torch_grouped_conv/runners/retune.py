"""`python -m torch_grouped_conv.runners.retune FILE`: set the taps
dispatches' vector tiles in FILE (the output of `iree-compile
--compile-to=executable-configurations --mlir-print-local-scope`) in place,
as the `iree` runner does between its two iree-compile runs
(runners/dispatch_tiles.py); the sidecar's recorded command of a retuned
module calls it. Prints one line per retuned dispatch; exit 2 with a usage
line on a bad argument. (Its own module: `-m` on dispatch_tiles, which the
package imports, would run it twice.)"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from torch_grouped_conv.runners.dispatch_tiles import retune_taps

USAGE = ("usage: python -m torch_grouped_conv.runners.retune CONFIGURED.mlir (the output of iree-compile "
         "--compile-to=executable-configurations --mlir-print-local-scope)")


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or not Path(args[0]).is_file():
        print(USAGE, file=sys.stderr)
        return 2
    path = Path(args[0])
    text, retuned = retune_taps(path.read_text())
    path.write_text(text)
    for change in retuned:
        print(change.describe())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
