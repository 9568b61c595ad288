"""Compile the market contracts with Vyper and keep their artifacts.

An artifact is ``contracts/artifacts/<Name>.json`` holding the ABI, the
creation bytecode, the Vyper version and the SHA-256 of the sources it was
built from: the contract's and those of the shared modules it imports
(``from . import book``; lower-case ``contracts/<module>.vy`` files, see
:func:`imported_modules`), so that editing a module makes the artifact of
every contract importing it stale. :func:`load_artifact` serves the
stored file while it matches the sources and compiler, and compiles
afresh otherwise.

Usage::

    python -m gridledger.contracts.compiler            # rewrite all artifacts
    python -m gridledger.contracts.compiler --check    # exit 1 if any is stale
"""

import argparse
import functools
import hashlib
import json
import re
import sys
from importlib.metadata import version
from pathlib import Path

# The version from the package metadata: serving a stored artifact then needs
# no import of the compiler, so federates that only sign and decode stay light.
VYPER_VERSION = version("vyper")
CONTRACTS_DIR = Path(__file__).resolve().parent
ARTIFACTS_DIR = CONTRACTS_DIR / "artifacts"
CONTRACT_NAMES = (
    "Registry",
    "GridToken",
    "DoubleAuction",
    "PayAsBid",
    "MeritOrder",
    "VickreyAuction",
    "EnglishAuction",
    "Settlement",
    "VoltageRegulation",
    "ChargingCoordination",
    "Audit",
    "SourceChoice",
    "EmergencyAccess",
    "TwoPhaseTrade",
    "DataAccess",
    "Pseudonyms",
    "OperatingReserve",
    "LoadShed",
)


def _known(name: str) -> str:
    if name not in CONTRACT_NAMES:
        raise ValueError(f"unknown contract {name!r}; expected one of {CONTRACT_NAMES}")
    return name


def source_path(name: str) -> Path:
    """Path of the Vyper source of contract ``name``."""
    return CONTRACTS_DIR / f"{_known(name)}.vy"


def artifact_path(name: str) -> Path:
    """Path of the stored artifact of contract ``name``."""
    return ARTIFACTS_DIR / f"{_known(name)}.json"


# A module import of a contract or module: ``from . import book`` or
# ``import book``, at the start of a line.
_IMPORT = re.compile(r"^(?:from \. import|import) (\w+)\s*$", re.MULTILINE)


def imported_modules(source: str) -> list[str]:
    """Names of the modules in ``contracts/`` that ``source`` imports, directly or through another module.

    Returns
    -------
    list of str
        Module names (``contracts/<name>.vy``), sorted.
    """
    found: set[str] = set()
    pending = _IMPORT.findall(source)
    while pending:
        module = pending.pop()
        if module not in found:
            found.add(module)
            pending.extend(_IMPORT.findall((CONTRACTS_DIR / f"{module}.vy").read_text()))
    return sorted(found)


def sources_sha256(source: str) -> str:
    """SHA-256 of ``source`` followed by each module it imports, by name.

    Each module adds its name and its source, so a contract without
    imports hashes to the SHA-256 of its own source.
    """
    digest = hashlib.sha256(source.encode())
    for module in imported_modules(source):
        digest.update(f"\n{module}.vy\n".encode())
        digest.update((CONTRACTS_DIR / f"{module}.vy").read_bytes())
    return digest.hexdigest()


def compile_source(name: str, source: str) -> dict:
    """Compile Vyper ``source`` of contract ``name`` into an artifact dict.

    Its imports resolve against ``contracts/``. Keys: ``contract_name``,
    ``vyper_version``, ``source_sha256`` (see :func:`sources_sha256`),
    ``abi`` and ``bytecode`` (creation code, 0x-prefixed hex).
    """
    import vyper
    from vyper.compiler.input_bundle import FilesystemInputBundle

    output = vyper.compile_code(
        source,
        contract_path=f"{name}.vy",
        resolved_path=CONTRACTS_DIR / f"{name}.vy",
        input_bundle=FilesystemInputBundle([CONTRACTS_DIR]),
        output_formats=["abi", "bytecode"],
    )
    return {
        "contract_name": name,
        "vyper_version": VYPER_VERSION,
        "source_sha256": sources_sha256(source),
        "abi": output["abi"],
        "bytecode": output["bytecode"],
    }


def _is_current(artifact: dict, sha256: str) -> bool:
    return artifact["source_sha256"] == sha256 and artifact["vyper_version"] == VYPER_VERSION


@functools.cache
def _load(name: str, source: str, sha256: str) -> dict:
    path = artifact_path(name)
    if path.exists():
        stored = json.loads(path.read_text())
        if _is_current(stored, sha256):
            return stored
    return compile_source(name, source)


def load_artifact(name: str) -> dict:
    """Artifact of contract ``name``, recompiled when the stored one is stale.

    Stale means the hash of the sources (the contract's and its
    modules', :func:`sources_sha256`) or the Vyper version differ from
    the stored file; the fresh artifact is returned, not written.
    """
    source = source_path(name).read_text()
    return _load(name, source, sources_sha256(source))


def write_artifact(name: str) -> Path:
    """Compile contract ``name`` and write its artifact; returns the path."""
    artifact = compile_source(name, source_path(name).read_text())
    path = artifact_path(name)
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(artifact, indent=1, sort_keys=True) + "\n")
    return path


def stale_artifacts() -> list[str]:
    """Names of contracts whose stored artifact is missing or stale."""
    stale = []
    for name in CONTRACT_NAMES:
        path = artifact_path(name)
        source = source_path(name).read_text()
        if not path.exists() or not _is_current(json.loads(path.read_text()), sources_sha256(source)):
            stale.append(name)
    return stale


def main(argv: list[str] | None = None) -> int:
    """Command line entry: rewrite or check the artifacts."""
    parser = argparse.ArgumentParser(
        prog="python -m gridledger.contracts.compiler",
        description="Compile the market contracts into contracts/artifacts/.",
        epilog="example: python -m gridledger.contracts.compiler --check",
    )
    parser.add_argument("--check", action="store_true", help="only report stale artifacts; exit 1 if any")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_artifacts()
        for name in stale:
            print(f"stale: {artifact_path(name)}")
        return 1 if stale else 0
    for name in CONTRACT_NAMES:
        print(f"wrote {write_artifact(name)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
