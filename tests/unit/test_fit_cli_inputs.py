"""``labsmith fit`` refuses unusable options with exit 2 naming the option, and prints names
from a GGUF file or the command line as text, never as rich markup."""

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from labsmith.cli import main
from tests.unit.test_gguf_crafted import STRING, text, write_gguf

HUGE = "9" * 400  # as a float: infinity


def fit(*args: str) -> Result:
    return CliRunner().invoke(main, ["fit", *args])


BAD_OPTIONS = [
    pytest.param(["--ctx", "0"], ["--ctx", "0 is not in the range"], id="ctx-0"),
    pytest.param(["--ctx", "-1"], ["--ctx"], id="ctx-negative"),
    pytest.param(["--ctx", "2000000000000"], ["--ctx", "not in the range"], id="ctx-huge"),
    pytest.param(["--parallel", "0"], ["--parallel", "0 is not in the range"], id="parallel-0"),
    pytest.param(["--ram", "foo"], ["--ram foo", "is not a size"], id="ram-foo"),
    pytest.param(["--ram", HUGE + "P"], ["--ram", "too large"], id="ram-overflowing"),
    pytest.param(["--ram", "0G"], ["--ram 0G", "more than zero"], id="ram-zero"),
    pytest.param(["--gpu", "foo"], ["--gpu foo", "is not a size"], id="gpu-foo"),
    pytest.param(["--gpu", HUGE], ["--gpu", "too large"], id="gpu-overflowing-bare"),
    pytest.param(["--gpu", HUGE + "P"], ["--gpu", "too large"], id="gpu-overflowing"),
    pytest.param(["--gpu", "0"], ["--gpu 0", "more than zero"], id="gpu-zero"),
]


@pytest.mark.parametrize(("options", "words"), BAD_OPTIONS)
def test_an_unusable_option_exits_2_naming_it(options: list[str], words: list[str]) -> None:
    result = fit("--model", "llama3.1:8b", "--gpu", "24", *options)
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    for word in words:
        assert word in result.stderr


def test_an_overflowing_but_finite_size_is_still_a_size() -> None:
    # 99999999999999999999P is absurd but a number; the arithmetic must stay exact.
    result = fit("--model", "llama3.1:8b", "--gpu", "99999999999999999999P", "--json")
    assert result.exit_code == 0, result.output
    assert '"verdict": "fits"' in result.stdout


MARKUP = ["[bold red]x[/]", "[link=http://evil]"]


@pytest.mark.parametrize("markup", MARKUP)
def test_a_gguf_name_with_markup_is_printed_as_written(tmp_path: Path, markup: str) -> None:
    # vLLM cannot split 8 heads over 3 GPUs: the reason names the model from its header.
    path = write_gguf(tmp_path / "m.gguf", {"general.name": (STRING, text(f"evil {markup} m"))})
    result = fit("--gguf", str(path), "--runtime", "vllm", "--gpu", "8", "--gpu", "8", "--gpu", "8")
    assert result.exit_code == 1, result.output
    assert f"evil {markup} m" in result.stdout


@pytest.mark.parametrize("name", ["[bold red]x", "[link=evil]x", "[blink]x[red]"])
def test_a_file_name_with_markup_is_printed_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    # A relative path keeps the table's model cell short enough not to wrap.
    monkeypatch.chdir(tmp_path)
    write_gguf(tmp_path / f"{name}.gguf", {})
    result = fit("--gguf", f"{name}.gguf", "--gpu", "24")
    assert result.exit_code == 0, result.output
    # once in the table's model column, once in the verdict line under it
    assert result.stdout.count(f"{name}.gguf") == 2, result.stdout
