"""pyproject.toml and environment.yml declare the same dependencies with the same lower bounds."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _normalise(requirement: str) -> tuple[str, str]:
    name, spec = re.match(r"^\s*([A-Za-z0-9_.-]+)\s*(.*)$", requirement).groups()
    return name.lower().replace("_", "-"), spec.replace(" ", "")


def _pyproject() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    return dict(_normalise(r) for r in reqs)


def _environment() -> dict[str, str]:
    deps = yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"]
    flat = []
    for dep in deps:
        flat.extend(dep["pip"] if isinstance(dep, dict) else [dep])
    pairs = dict(_normalise(d) for d in flat if not d.startswith("-e"))
    pairs.pop("pip", None)
    pairs.pop("python", None)
    return pairs


def test_environment_yml_matches_pyproject():
    """The conda environment is the development one: the runtime dependencies and every extra."""
    assert _environment() == _pyproject()


def test_make_setup_installs_every_extra():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert f'pip install --quiet -e ".[{",".join(sorted(extras))}]"' in (ROOT / "Makefile").read_text()


def test_every_dependency_has_a_lower_bound():
    for name, spec in _pyproject().items():
        assert ">=" in spec, f"{name} has no lower bound"


def test_python_versions_agree():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"]
    assert project["requires-python"] == ">=3.11"
    assert "python>=3.11" in env


def test_top_level_folders_map_into_gridledger_namespace():
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert tool["package-dir"] == {
        "gridledger": "gridledger",
        "gridledger.federates": "federates",
        "gridledger.agents": "agents",
        "gridledger.grids": "grids",
        "gridledger.contracts": "contracts",
    }
