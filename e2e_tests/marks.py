"""Case marks that apply to one backend only.

`E2ECase.marks` holds pytest marks, which apply to every test of the case.
A failure that belongs to one backend is written on the case as
`XfailOn("iree", reason=...)`; `compiled.case_params(..., backend=...)` turns it
into a strict `pytest.mark.xfail` for that backend's tests and drops it for
the others.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class XfailOn:
    backend: str
    reason: str
