"""Every rule fires on its broken lab, exactly as listed, and stays silent on the good labs.

``tests/unit/broken_cases.yml`` lists, for each lab under ``inventories/broken/``, the exact
findings (rule, severity, file, key) it must produce: no more, no fewer. Each broken lab is
otherwise a complete lab, so it is also a passing case for every rule it does not list.
"""

import re
from pathlib import Path

import pytest
import yaml

from labsmith.checks.lab import RULES, check_lab
from tests.conftest import BROKEN_LABS, GOOD_LABS, INVENTORIES, REPO

EXPECTED: dict[str, list[dict[str, str]]] = yaml.safe_load(
    (Path(__file__).parent / "broken_cases.yml").read_text()
)


# The OcuLink mini-PC runs a 70B on one 24 GB card on purpose: its 96 GB of RAM takes the
# layers that spill, and validate says so.
EXAMPLE_WARNINGS = {
    "oculink-minipc": [("fit.spills", "host_vars/mini1.yml: labsmith_services[0].models[0]")],
}


@pytest.mark.parametrize("lab", GOOD_LABS, ids=lambda p: p.name)
def test_example_labs_have_no_findings_but_their_known_warnings(lab: Path) -> None:
    report = check_lab(lab)
    assert [(f.rule, f.location) for f in report.findings] == EXAMPLE_WARNINGS.get(lab.name, [])
    assert report.valid
    assert report.lab.hosts, "an example lab declares at least one physical host"


@pytest.mark.parametrize("case", sorted(EXPECTED), ids=str)
def test_broken_lab_reports_exactly_its_findings(case: str) -> None:
    report = check_lab(INVENTORIES / "broken" / case)
    found = sorted((f.rule, f.severity, f.file, f.key) for f in report.findings)
    wanted = sorted((e["rule"], e["severity"], e["file"], e["key"]) for e in EXPECTED[case])
    assert found == wanted
    for finding in report.findings:
        assert finding.message and finding.fix, finding


def test_every_broken_lab_has_expectations() -> None:
    assert sorted(lab.name for lab in BROKEN_LABS) == sorted(EXPECTED)


def test_every_rule_has_a_broken_lab() -> None:
    covered = {entry["rule"] for entries in EXPECTED.values() for entry in entries}
    assert sorted(set(RULES) - covered) == []
    assert sorted(covered - set(RULES)) == []


def test_readme_documents_every_rule() -> None:
    readme = (REPO / "README.md").read_text()
    section = readme.split("### Validation rules", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `([a-z]+\.[a-z_]+)` \|", section, flags=re.MULTILINE))
    assert documented == set(RULES)


def test_rule_ids_are_stable_names() -> None:
    for rule in RULES:
        assert re.fullmatch(r"[a-z]+\.[a-z_]+", rule), rule
