"""Newcomer friction (issue 14, defects 9): visible progress for `make run`, and a README that a clone
can follow (no link outside the repository)."""
from __future__ import annotations

import re

from tests.dashboard.conftest import REPO


def test_make_run_shows_pip_progress_and_training_steps():
    make = (REPO / "Makefile").read_text()
    assert "--quiet" not in make and " -q " not in make
    train = next(line for line in make.splitlines() if "engine" in line and " train " in line)
    assert " -v train " in train  # engine/cli.py logs each training step at INFO with -v


def test_readme_links_stay_inside_the_repository():
    readme = (REPO / "README.md").read_text()
    assert "../shared" not in readme
    for target in re.findall(r"\]\(([^)#]+)\)", readme):
        if not target.startswith("http"):
            assert (REPO / target).exists(), target
    contracts = (REPO / "docs" / "contracts.md").read_text()
    for section in ("### cases.csv", "## 2. schedule.csv", "## 3. Command line"):
        assert section in contracts
