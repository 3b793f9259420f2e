"""The loop the config campaigns share (fuzz.py, fuzz_signatures.py).

`run_campaign` draws `--examples` configs with hypothesis from `--seed`, runs
`check(config, backends)` on each (the refbackend, and IREE too on one config
in `--iree-every`, chosen by the config's own hash), records every failure and
goes on, then writes the failing configs to `--out` as a JSON list of
{"config", "backends", "error"}. Each campaign adds its own options and prints
its own summary from the returned `Outcome`.
"""

from __future__ import annotations

import argparse
import json
import time
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

Config = dict[str, Any]
# One config on these backends: what it counted (emitters run, probe outcomes), or raise.
Check = Callable[[Config, tuple[str, ...]], Counter[str]]


def config_seed(c: Config) -> int:
    """A number of the config's own (CRC-32 of its JSON): its tensors' seed and its IREE draw."""
    return zlib.crc32(json.dumps(c, sort_keys=True).encode())


def uses_iree(c: Config, every: int) -> bool:
    """Whether `c` also runs on IREE when only one config in `every` does (1: all; 0: never)."""
    return every > 0 and config_seed(c) % every == 0


def add_arguments(parser: argparse.ArgumentParser, out: str, iree_every: int, iree_help: str) -> None:
    """The options every campaign takes: --examples, --out, --iree-every, --seed."""
    parser.add_argument("--examples", type=int, default=100)
    parser.add_argument("--out", default=out, help="failing configs, as a JSON list")
    parser.add_argument("--iree-every", type=int, default=iree_every, help=iree_help)
    parser.add_argument("--seed", type=int, default=0)


@dataclass
class Outcome:
    passed: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)  # summed over the passing configs
    seconds: float = 0.0


def run_campaign(configs: st.SearchStrategy[Config], check: Check, args: argparse.Namespace,
                 shown: int) -> Outcome:
    """Run the campaign (module docstring); a FAIL line shows `shown` characters of the error."""
    outcome = Outcome()
    start = time.perf_counter()

    @seed(args.seed)
    @settings(max_examples=args.examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(configs)
    def campaign(c: Config) -> None:
        backends = ("refbackend", "iree") if uses_iree(c, args.iree_every) else ("refbackend",)
        try:
            outcome.counts.update(check(c, backends))
            outcome.passed += 1
        except Exception as e:  # noqa: BLE001 - every failure is recorded, the campaign goes on
            error = f"{type(e).__name__}: {e}"[:2000]
            outcome.failures.append({"config": c, "backends": list(backends), "error": error})
            print(f"FAIL {json.dumps(c)}: {error[:shown]}", flush=True)

    campaign()
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(outcome.failures, f, indent=1)
    outcome.seconds = time.perf_counter() - start
    return outcome
