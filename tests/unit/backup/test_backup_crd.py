"""crds/stackbackup.yaml is written by hand: keep it in step with kongmasker.api.backup."""

from __future__ import annotations

import pytest
import yaml
from tests.support import REPO_ROOT

from kongmasker.api.backup import (
    BACKUP_KIND,
    BACKUP_PLURAL,
    BACKUP_SHORT_NAME,
    DEFAULT_DIRECTORY,
    BackupPhase,
    BackupType,
)

pytestmark = pytest.mark.unit

CRD = yaml.safe_load((REPO_ROOT / "crds/stackbackup.yaml").read_text())
VERSION = CRD["spec"]["versions"][0]
SCHEMA = VERSION["schema"]["openAPIV3Schema"]["properties"]


def test_names_match_the_vocabulary():
    names = CRD["spec"]["names"]
    assert (names["kind"], names["plural"]) == (BACKUP_KIND, BACKUP_PLURAL)
    assert BACKUP_SHORT_NAME in names["shortNames"]
    assert VERSION["subresources"] == {"status": {}}


def test_enums_and_defaults_match_the_model():
    spec = SCHEMA["spec"]["properties"]
    assert spec["type"]["enum"] == [t.value for t in BackupType]
    assert spec["type"]["default"] == BackupType.BACKUP
    assert spec["storage"]["properties"]["directory"]["properties"]["path"]["default"] == (
        DEFAULT_DIRECTORY
    )
    assert set(SCHEMA["status"]["properties"]["phase"]["enum"]) == {p.value for p in BackupPhase}


def test_printer_columns_and_immutable_stack_ref():
    columns = {c["name"]: c["jsonPath"] for c in VERSION["additionalPrinterColumns"]}
    assert columns["Stack"] == ".spec.stackRef.name"
    assert {"Phase", "Size", "Keys", "Age"} <= set(columns)
    rules = SCHEMA["spec"]["properties"]["stackRef"]["x-kubernetes-validations"]
    assert any(r["rule"] == "self == oldSelf" for r in rules)
    spec_rules = [r["rule"] for r in SCHEMA["spec"]["x-kubernetes-validations"]]
    assert "oldSelf.type == 'Schedule' || self == oldSelf" in spec_rules  # requests are final


def test_sample_parses_with_the_model():
    from kongmasker.api.backup import BackupSpec

    docs = list(yaml.safe_load_all((REPO_ROOT / "manifests/samples/backup.yaml").read_text()))
    kinds = [BackupSpec.from_dict(d["spec"]).type for d in docs]
    assert kinds == [BackupType.BACKUP, BackupType.SCHEDULE, BackupType.RESTORE]
    assert all(d["spec"]["stackRef"]["name"] == "demo" for d in docs)
