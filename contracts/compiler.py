"""Compile the market contracts with Vyper and keep their artifacts.

An artifact is ``contracts/artifacts/<Name>.json`` holding the ABI, the
creation bytecode, the Vyper version and the SHA-256 of the source it was
built from. :func:`load_artifact` serves the stored file while it matches
the source and compiler, and compiles afresh otherwise.

Usage::

    python -m gridledger.contracts.compiler            # rewrite all artifacts
    python -m gridledger.contracts.compiler --check    # exit 1 if any is stale
"""

import argparse
import functools
import hashlib
import json
import sys
from pathlib import Path

import vyper

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


def compile_source(name: str, source: str) -> dict:
    """Compile Vyper ``source`` of contract ``name`` into an artifact dict.

    Keys: ``contract_name``, ``vyper_version``, ``source_sha256``, ``abi``
    and ``bytecode`` (creation code, 0x-prefixed hex).
    """
    output = vyper.compile_code(source, contract_path=f"{name}.vy", output_formats=["abi", "bytecode"])
    return {
        "contract_name": name,
        "vyper_version": vyper.__version__,
        "source_sha256": hashlib.sha256(source.encode()).hexdigest(),
        "abi": output["abi"],
        "bytecode": output["bytecode"],
    }


def _is_current(artifact: dict, source: str) -> bool:
    return (
        artifact["source_sha256"] == hashlib.sha256(source.encode()).hexdigest()
        and artifact["vyper_version"] == vyper.__version__
    )


@functools.cache
def _load(name: str, source: str) -> dict:
    path = artifact_path(name)
    if path.exists():
        stored = json.loads(path.read_text())
        if _is_current(stored, source):
            return stored
    return compile_source(name, source)


def load_artifact(name: str) -> dict:
    """Artifact of contract ``name``, recompiled when the stored one is stale.

    Stale means the source hash or the Vyper version differ from the
    stored file; the fresh artifact is returned, not written.
    """
    return _load(name, source_path(name).read_text())


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
        if not path.exists() or not _is_current(json.loads(path.read_text()), source):
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
