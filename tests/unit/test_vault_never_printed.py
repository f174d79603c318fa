"""No output of validate, graph or fit carries vault ciphertext, JSON or not: neither an
inline ``!vault`` value nor ciphertext pasted as a plain string (a forgotten tag)."""

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import BaseModel

from labsmith.cli import main
from labsmith.inventory.sources import VaultedValue
from tests.conftest import FIXTURES, INVENTORIES

VAULTED_FILE = FIXTURES / "inventories" / "vaulted" / "host_vars" / "pve1.yml"


def ciphertext_lines() -> list[str]:
    """The fixture's inline vault value, one line per list item, unindented."""
    text = VAULTED_FILE.read_text().split("!vault |\n", 1)[1]
    return [line.strip() for line in text.splitlines() if line.strip()]


CIPHERTEXT = ciphertext_lines()
HEX_LINE = CIPHERTEXT[1]  # a whole line of the encrypted payload


def indented(lines: list[str], spaces: int) -> str:
    return "".join(" " * spaces + line + "\n" for line in lines)


@pytest.fixture
def lab(tmp_path: Path) -> Path:
    root = tmp_path / "lab"
    shutil.copytree(INVENTORIES / "example", root)
    pasted = "\\n".join(CIPHERTEXT)  # as a double-quoted YAML string, newlines escaped
    pve1 = root / "host_vars" / "pve1.yml"
    text = pve1.read_text().replace(
        "model: Intel Core Ultra 9 285K", f'model: "{pasted}"'
    )  # a free-text field: printed in the tables and the JSON
    text += (
        "labsmith_pve_api:\n  token_id: root@pam!labsmith\n  token_secret: !vault |\n"
        + indented(CIPHERTEXT, 4)
    )
    pve1.write_text(text)
    public = root / "host_vars" / "ai-public.yml"
    public.write_text(public.read_text().replace("- name: mistral:7b", f'- name: "{pasted}"'))
    return root


@pytest.mark.parametrize(
    "command",
    [
        ["validate"],
        ["validate", "--json"],
        ["graph"],
        ["fit"],
        ["fit", "--json"],
    ],
    ids=" ".join,
)
def test_no_ciphertext_in_any_output(lab: Path, command: list[str]) -> None:
    result = CliRunner().invoke(main, [*command, "-i", str(lab)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert result.exit_code in (0, 1), result.output
    for stream in (result.stdout, result.stderr):
        assert "$ANSIBLE_VAULT" not in stream
        assert HEX_LINE not in stream


def test_the_placeholder_shows_where_the_secret_was(lab: Path) -> None:
    result = CliRunner().invoke(main, ["validate", "--json", "-i", str(lab)])
    assert '"token_secret": "<vault-encrypted>"' in result.stdout
    assert '"model": "<vault-encrypted>"' in result.stdout


def test_a_vaulted_value_hides_its_ciphertext_in_repr_and_serialisation() -> None:
    value = VaultedValue(ciphertext="\n".join(CIPHERTEXT))

    class Holder(BaseModel):
        secret: VaultedValue

    holder = Holder(secret=value)
    for text in (repr(value), str(value), repr(holder), holder.model_dump_json()):
        assert "$ANSIBLE_VAULT" not in text and HEX_LINE not in text
    assert holder.model_dump(mode="json") == {"secret": "<vault-encrypted>"}
    # the ciphertext itself stays available to what decrypts it
    assert value.ciphertext.startswith("$ANSIBLE_VAULT;1.1;AES256")
