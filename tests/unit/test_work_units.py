"""`make test`'s scheduling: pytest-xdist with `--dist loadgroup` runs the
tests of one `xdist_group` (tests/conftest.py, `work_unit`) in one worker, so
a module compiled for one of them is there for the others. Run on a small
project of its own, with the pytest and pytest-xdist the test extra installs
(pytest 9.2 with xdist 3.8 dropped every group without a word)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# Nothing of the calling environment (PYTEST_ADDOPTS, xdist worker variables)
# but PYTHONPATH, through which a check can run it under another pytest.
ENV = {"PATH": "", **{k: v for k, v in os.environ.items() if k == "PYTHONPATH"}}

PROJECT = '''
import os
import pytest

def record(tag):
    with open(os.environ["RECORD"], "a") as out:
        out.write(f"{tag} {os.environ['PYTEST_XDIST_WORKER']} {os.environ['PYTEST_CURRENT_TEST'].split()[0]}\\n")

@pytest.mark.xdist_group("first")
@pytest.mark.parametrize("i", range(6))
def test_first(i):
    record("first")

@pytest.mark.xdist_group("second")
@pytest.mark.parametrize("i", range(6))
def test_second(i):
    record("second")

@pytest.mark.parametrize("i", range(6))
def test_free(i):
    record("free")
'''


def test_a_group_runs_in_one_worker(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_groups.py").write_text(PROJECT)
    record = tmp_path / "record.txt"
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2",
                           "--dist", "loadgroup", "test_groups.py"],
                          cwd=tmp_path, capture_output=True, text=True, env={**ENV, "RECORD": str(record)})
    assert done.returncode == 0, done.stdout + done.stderr
    rows = [line.split() for line in record.read_text().splitlines()]
    assert len(rows) == 18
    for group in ("first", "second"):
        ran = [(worker, nodeid) for tag, worker, nodeid in rows if tag == group]
        assert len({worker for worker, _ in ran}) == 1, ran
        assert all(nodeid.endswith(f"@{group}") for _, nodeid in ran), ran
    assert {worker for _, worker, _ in rows} == {"gw0", "gw1"}
