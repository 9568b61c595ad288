"""Artifacts are reproducible from the Vyper sources, the shared modules included."""

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


IMPORTERS = {
    "access": {"DoubleAuction", "PayAsBid", "MeritOrder", "VickreyAuction", "EnglishAuction"},
    "gate": {"DoubleAuction", "PayAsBid", "MeritOrder", "VickreyAuction", "EnglishAuction"},
    "escrow": {"DoubleAuction", "PayAsBid", "MeritOrder", "VickreyAuction", "EnglishAuction"},
    "book": {"DoubleAuction", "PayAsBid", "MeritOrder"},
    "lot_book": {"VickreyAuction", "EnglishAuction"},
    "eip712": {"DoubleAuction", "PayAsBid", "MeritOrder", "Settlement"},
}


def test_contracts_import_the_shared_modules_they_are_built_from():
    # book.vy and lot_book.vy use access.vy and gate.vy (book.vy escrow.vy too);
    # lot_book.vy names escrow.vy's SettlementTerms; book.vy and Settlement.vy
    # recover EIP-712 signers with eip712.vy.
    for name in compiler.CONTRACT_NAMES:
        expected = sorted(module for module, importers in IMPORTERS.items() if name in importers)
        assert compiler.imported_modules(compiler.source_path(name).read_text()) == expected, name


@pytest.mark.parametrize("module", sorted(IMPORTERS))
def test_editing_a_shared_module_stales_every_contract_that_imports_it(tmp_path, monkeypatch, module):
    before = {name: compiler.sources_sha256(compiler.source_path(name).read_text()) for name in compiler.CONTRACT_NAMES}
    copy = tmp_path / "contracts"
    copy.mkdir()
    for source in compiler.CONTRACTS_DIR.glob("*.vy"):
        (copy / source.name).write_text(source.read_text())
    (copy / f"{module}.vy").write_text((copy / f"{module}.vy").read_text() + "\n# an edit\n")
    monkeypatch.setattr(compiler, "CONTRACTS_DIR", copy)
    after = {name: compiler.sources_sha256(compiler.source_path(name).read_text()) for name in compiler.CONTRACT_NAMES}
    assert {name for name in compiler.CONTRACT_NAMES if after[name] != before[name]} == IMPORTERS[module]
    assert set(compiler.stale_artifacts()) == IMPORTERS[module]
    # The artifact served is compiled from the edited module, not the stored one.
    importer = min(IMPORTERS[module])
    assert compiler.load_artifact(importer)["source_sha256"] == after[importer]


def test_a_contract_without_imports_hashes_its_own_source():
    source = compiler.source_path("Registry").read_text()
    assert compiler.imported_modules(source) == []
    assert compiler.sources_sha256(source) == hashlib.sha256(source.encode()).hexdigest()
