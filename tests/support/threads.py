"""Calls from several Python threads at once (the runners' thread-safety tests)."""

from __future__ import annotations

import threading
from collections.abc import Callable


def run_in_threads(worker: Callable[[int], None], count: int) -> None:
    """`worker(k)` for k in 0..count-1, each in a thread of its own, all started before any is joined."""
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
