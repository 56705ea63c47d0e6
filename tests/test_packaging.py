"""Every data file a package reads is declared as package data, so that an installed (not editable)
copy such as the Docker image's holds it too: a file that only exists in working copies once
broke `make run` while every test passed."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path, PurePosixPath

import pytest

ROOT = Path(__file__).resolve().parent.parent
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
PACKAGE_DATA = CONFIG["tool"]["setuptools"]["package-data"]


def _tracked(package: str) -> list[PurePosixPath]:
    try:
        out = subprocess.run(["git", "ls-files", package], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [PurePosixPath(line).relative_to(package) for line in out.splitlines() if line]


@pytest.mark.parametrize("package", ["gateway", "menus", "messages", "migrations"])
def test_every_data_file_is_package_data(package):
    patterns = PACKAGE_DATA.get(package, [])
    missing = [
        str(path) for path in _tracked(package)
        if path.suffix != ".py" and not any(path.full_match(p) if hasattr(path, "full_match") else path.match(p)
                                            for p in patterns)
        # migrations/versions/*.py are code; README-like notes are not read at run time
        and path.suffix not in {".md"}
    ]
    assert not missing, f"{package}: not in [tool.setuptools.package-data] of pyproject.toml: {missing}"
