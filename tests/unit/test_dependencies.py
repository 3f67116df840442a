"""The lock file the image installs satisfies pyproject's ranges (advisory-free lower bounds)."""

import tomllib
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]


def test_every_dependency_is_pinned_in_the_lock_within_its_range():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = {name.replace("_", "-"): version for name, version in (
        line.split("==") for line in (ROOT / "requirements.lock").read_text().splitlines()
        if line and not line.startswith("#"))}
    for dep in deps:
        req = Requirement(dep)
        name = req.name.lower().replace("_", "-")
        assert name in pins, f"{name} is not in requirements.lock (make lock)"
        assert pins[name] in req.specifier, f"{name}=={pins[name]} is outside {req.specifier}"


def test_lower_bounds_are_past_the_known_advisories():
    deps = {Requirement(d).name.lower(): Requirement(d).specifier
            for d in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]}
    for name, vulnerable in (("jinja2", "3.1.5"), ("pymysql", "1.1.0"), ("tornado", "6.4.2")):
        assert vulnerable not in deps[name], f"{name} {vulnerable} is still allowed"


def test_the_build_metadata_uses_no_deprecated_form():
    """setuptools stops building a table-form `project.license` after 2027-02-18: an SPDX string,
    with the setuptools that reads it (77+)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert isinstance(project["project"]["license"], str) and project["project"]["license"] == "MIT"
    assert "setuptools>=77" in project["build-system"]["requires"]
