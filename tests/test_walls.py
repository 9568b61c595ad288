"""The walls between the top-level folders (DESIGN.md, "Layout"), read from the sources' import statements.

- grids/ and contracts/ are libraries: each imports only itself and the
  leaf module gridledger.units, never HELICS;
- agents/ decides: no HELICS, no federates/;
- federates/ are thin shells: none imports another shell (shell.py is the
  one they share), each under 150 lines;
- the core (gridledger/) imports no federate module; HELICS appears only
  in federates/shell.py and gridledger/launcher.py (which starts the broker).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_OF = {"gridledger": "gridledger", "agents": "gridledger.agents", "federates": "gridledger.federates",
              "grids": "gridledger.grids", "contracts": "gridledger.contracts"}
SHELL_MAX_LINES = 150


def imports(path: Path) -> set[str]:
    """Absolute names of every module `path` imports, relative imports resolved, at any depth of the file."""
    package = PACKAGE_OF[path.parent.name]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def sources(folder: str) -> list[Path]:
    return sorted((ROOT / folder).glob("*.py"))


def _gridledger_imports(path: Path) -> set[str]:
    return {name for name in imports(path) if name.startswith("gridledger.")}


def _outside(names: set[str], allowed: tuple[str, ...]) -> set[str]:
    return {n for n in names if not any(n == a or n.startswith(a + ".") for a in allowed)}


def test_imports_resolve_relative_and_nested_imports(tmp_path):
    folder = tmp_path / "agents"
    folder.mkdir()
    module = folder / "x.py"
    module.write_text("from . import y\nfrom .z import w\ndef f():\n    import helics\n")
    assert imports(module) == {"gridledger.agents", "gridledger.agents.y", "gridledger.agents.z",
                               "gridledger.agents.z.w", "helics"}


@pytest.mark.parametrize("folder", ["grids", "contracts"])
def test_libraries_import_only_themselves_and_units(folder):
    allowed = (PACKAGE_OF[folder], "gridledger.units")
    for path in sources(folder):
        assert not _outside(_gridledger_imports(path), allowed), path.name
        assert not {n for n in imports(path) if n.split(".")[0] == "helics"}, path.name


def test_agents_import_neither_helics_nor_federates():
    assert sources("agents")
    for path in sources("agents"):
        names = imports(path)
        assert not {n for n in names if n.split(".")[0] == "helics"}, path.name
        assert not {n for n in names if n.startswith("gridledger.federates")}, path.name


def test_no_shell_imports_another_shell():
    for path in sources("federates"):
        others = {n for n in imports(path) if n.startswith("gridledger.federates.")
                  and not n.startswith("gridledger.federates.shell")}
        assert not others, path.name


@pytest.mark.parametrize("path", [p for p in sources("federates") if p.name not in ("__init__.py", "shell.py")],
                         ids=lambda p: p.name)
def test_each_federate_shell_is_under_150_lines(path):
    assert len(path.read_text().splitlines()) < SHELL_MAX_LINES


def test_core_imports_no_federate_module():
    for path in sources("gridledger"):
        assert not {n for n in imports(path) if n.startswith("gridledger.federates")}, path.name


def test_helics_only_in_the_shell_and_the_launcher():
    users = {path.relative_to(ROOT).as_posix() for folder in PACKAGE_OF for path in sources(folder)
             if any(n.split(".")[0] == "helics" for n in imports(path))}
    assert users == {"federates/shell.py", "gridledger/launcher.py"}


def test_units_is_a_leaf_module():
    assert not _gridledger_imports(ROOT / "gridledger" / "units.py")
