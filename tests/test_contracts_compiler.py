"""Artifacts are reproducible from the Vyper sources."""

import hashlib
import json

import pytest

from gridledger.contracts import compiler


@pytest.mark.parametrize("name", compiler.CONTRACT_NAMES)
def test_recompiling_the_source_reproduces_the_stored_artifact(name):
    stored = json.loads(compiler.artifact_path(name).read_text())
    fresh = compiler.compile_source(name, compiler.source_path(name).read_text())
    assert fresh == stored
    assert stored["bytecode"].startswith("0x") and len(stored["bytecode"]) > 2


def test_check_reports_no_stale_artifact():
    assert compiler.main(["--check"]) == 0


def test_stale_artifact_is_recompiled_not_served(tmp_path, monkeypatch):
    changed = tmp_path / "Registry.vy"
    source = compiler.source_path("Registry").read_text() + "\n# an edit\n"
    changed.write_text(source)
    original = compiler.source_path
    monkeypatch.setattr(compiler, "source_path", lambda name: changed if name == "Registry" else original(name))
    artifact = compiler.load_artifact("Registry")
    assert artifact["source_sha256"] == hashlib.sha256(source.encode()).hexdigest()
    assert json.loads(compiler.artifact_path("Registry").read_text())["source_sha256"] != artifact["source_sha256"]
    assert compiler.stale_artifacts() == ["Registry"]
    assert compiler.main(["--check"]) == 1


def test_unknown_contract_is_refused():
    with pytest.raises(ValueError, match="unknown contract"):
        compiler.load_artifact("Nope")
