"""The simulator's API schema: loading (bundled, .json, .json.gz, apidata.js), routing, and
the translation of the schema's Perl patterns."""

import gzip
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from labsmith.sim.perl_regex import PerlRegexError, compile_anchored, translate
from labsmith.sim.schema import (
    SCHEMA_VERSIONS,
    ApiSchema,
    MethodNotAllowedError,
    NoRouteError,
    SchemaError,
)
from tests.simsupport.samples import concrete_path

BUNDLED = Path(__file__).parents[2] / "src" / "labsmith" / "sim" / "schemas"


def bundled_tree(version: str) -> list[Any]:
    with gzip.open(BUNDLED / f"pve-api-{version}.json.gz") as handle:
        tree: list[Any] = json.load(handle)
    return tree


def method_count(tree: list[Any]) -> int:
    return sum(
        len(node.get("info") or {}) + method_count(node.get("children") or []) for node in tree
    )


def tiny_schema(*paths: str) -> ApiSchema:
    """A schema with a GET at each path (flat: routing does not need the nesting)."""
    nodes = [
        {"path": path, "text": path, "info": {"GET": {"name": f"get{i}"}}}
        for i, path in enumerate(paths)
    ]
    return ApiSchema(nodes, version="test", source="test")


# --- bundled schemas --------------------------------------------------------------------


@pytest.mark.parametrize("version", SCHEMA_VERSIONS)
def test_bundled_schema_has_every_method_of_its_file(version: str) -> None:
    schema = ApiSchema.bundled(version)

    assert schema.version == version
    assert schema.source == f"bundled {version}"
    assert len(list(schema.methods())) == method_count(bundled_tree(version))


def test_bundled_defaults_to_the_newest_version_and_is_loaded_once() -> None:
    assert SCHEMA_VERSIONS[-1] == "9.1.3"
    assert ApiSchema.bundled() is ApiSchema.bundled("9.1.3")


def test_bundled_unknown_version_names_the_choices() -> None:
    with pytest.raises(SchemaError, match=r"7\.4.*8\.4\.2, 9\.1\.3") as raised:
        ApiSchema.bundled("7.4")
    assert raised.value.exit_code == 2


def test_method_carries_the_schema_entry() -> None:
    method = ApiSchema.bundled().method("/nodes/{node}/qemu", "POST")

    assert (method.name, method.http_method) == ("create_vm", "POST")
    assert method.properties["vmid"]["format"] == "pve-vmid"
    assert method.additional_properties is False
    assert method.protected is True
    assert method.allow_token is True
    assert method.returns == {"type": "string"}
    assert method.permissions["user"] == "all"
    assert method.path_parameters == ("node",)


def test_indexed_parameters_resolve_to_their_family_up_to_pve_limits() -> None:
    method = ApiSchema.bundled().method("/nodes/{node}/qemu", "POST")
    net = method.properties["net[n]"]

    assert method.parameter("net0") is net
    assert method.parameter("net31") is net
    assert method.parameter("net32") is None
    assert method.parameter("net05") is None
    assert method.parameter("net[n]") is None
    assert method.parameter("hostpci15") is method.properties["hostpci[n]"]
    assert method.parameter("hostpci16") is None
    assert method.parameter("efidisk0") is method.properties["efidisk0"]
    assert method.indexed_names("scsi")[-1] == "scsi30"


# --- routing ----------------------------------------------------------------------------


def test_route_fills_path_variables() -> None:
    route = ApiSchema.bundled().route("/nodes/pve1/qemu/100/config", "PUT")

    assert route.method.path == "/nodes/{node}/qemu/{vmid}/config"
    assert route.method.name == "update_vm"
    assert route.path_params == {"node": "pve1", "vmid": "100"}


def test_route_prefers_literal_segments_over_variables() -> None:
    schema = tiny_schema("/a/{x}", "/a/b", "/a/{x}/c")

    assert schema.route("/a/b", "GET").method.path == "/a/b"
    assert schema.route("/a/z/c", "GET").path_params == {"x": "z"}
    # the choice is final, as in RESTHandler.pm (which never mixes the two on one level)
    with pytest.raises(NoRouteError):
        schema.route("/a/b/c", "GET")


def test_route_literal_under_variable() -> None:
    route = ApiSchema.bundled().route("/nodes/pve1/qemu/100/status/current", "get")

    assert route.method.path == "/nodes/{node}/qemu/{vmid}/status/current"


def test_route_skips_empty_segments_as_pve_does() -> None:
    route = ApiSchema.bundled().route("//nodes//pve1/qemu/", "GET")

    assert route.method.path == "/nodes/{node}/qemu"


def test_route_variables_take_no_whitespace() -> None:
    with pytest.raises(NoRouteError):
        ApiSchema.bundled().route("/nodes/pve 1/qemu", "GET")


def test_route_rest_of_path_is_one_volume_id_or_cidr() -> None:
    schema = ApiSchema.bundled()

    volume = schema.route("/nodes/pve1/storage/local/content/local:iso/debian.iso", "GET")
    cidr = schema.route("/cluster/firewall/ipset/lab/10.0.0.0/24", "DELETE")

    assert volume.path_params["volume"] == "local:iso/debian.iso"
    assert cidr.method.path == "/cluster/firewall/ipset/{name}/{cidr}"
    assert cidr.path_params == {"name": "lab", "cidr": "10.0.0.0/24"}


def test_unknown_path_is_not_implemented_in_pve_words() -> None:
    with pytest.raises(NoRouteError) as raised:
        ApiSchema.bundled().route("/nodes/x/foo", "GET")

    assert str(raised.value) == "Method 'GET /nodes/x/foo' not implemented"
    assert not isinstance(raised.value, MethodNotAllowedError)


def test_wrong_method_is_not_implemented_either() -> None:
    with pytest.raises(MethodNotAllowedError) as raised:
        ApiSchema.bundled().route("/nodes/pve1/qemu", "DELETE")

    assert str(raised.value) == "Method 'DELETE /nodes/pve1/qemu' not implemented"
    assert isinstance(raised.value, NoRouteError)


def test_method_lookup_by_unknown_template() -> None:
    with pytest.raises(NoRouteError, match="Method 'GET /no/such' not implemented"):
        ApiSchema.bundled().method("/no/such", "GET")


@pytest.mark.parametrize("version", SCHEMA_VERSIONS)
def test_every_method_is_reached_from_a_concrete_path(version: str) -> None:
    schema = ApiSchema.bundled(version)
    missed = []
    for method in schema.methods():
        if schema.route(concrete_path(method), method.http_method).method is not method:
            missed.append(f"{method.http_method} {method.path}")

    assert not missed, f"{len(missed)} methods route elsewhere: {missed[:5]}"


# --- loading files ----------------------------------------------------------------------


def apidata_js(tree: list[Any]) -> str:
    """The shape of a node's /usr/share/pve-docs/api-viewer/apidata.js."""
    return (
        f"const apiSchema = {json.dumps(tree)};\n\n"
        'let method2cmd = {"GET /nodes": "pvesh get /nodes"};\n'
        "function getCmd(m) { return method2cmd[m] || '[{x}];'; }\n"
    )


def test_load_json(tmp_path: Path) -> None:
    path = tmp_path / "pve-api-8.4.2.json"
    path.write_text(json.dumps(bundled_tree("8.4.2")))

    schema = ApiSchema.load(path)

    assert (schema.version, schema.source) == ("8.4.2", str(path))
    assert len(list(schema.methods())) == method_count(bundled_tree("8.4.2"))


def test_load_json_gz(tmp_path: Path) -> None:
    path = tmp_path / "schema.json.gz"
    path.write_bytes(gzip.compress(json.dumps(bundled_tree("8.4.2")).encode()))

    schema = ApiSchema.load(path)

    assert schema.version == "8.4.2"  # the same methods as the bundled 8.4.2
    assert schema.route("/nodes/pve1/qemu", "POST").method.name == "create_vm"


def test_load_apidata_js(tmp_path: Path) -> None:
    path = tmp_path / "apidata.js"
    path.write_text(apidata_js(bundled_tree("9.1.3")))

    schema = ApiSchema.load(path)

    assert schema.version == "9.1.3"
    assert len(list(schema.methods())) == method_count(bundled_tree("9.1.3"))


def test_load_unrecognised_release_is_named_after_the_file(tmp_path: Path) -> None:
    tree = [{"path": "/version", "text": "version", "info": {"GET": {"name": "version"}}}]
    path = tmp_path / "apidata.js"
    path.write_text(apidata_js(tree))

    assert ApiSchema.load(path).version == "apidata.js"


@pytest.mark.parametrize(
    "content",
    [
        b"hello, world",
        b"[]",
        b'{"path": "/x"}',
        b"const apiSchema = [1, 2",
        b"\x1f\x8b\x08 not really gzip",
        b"\xff\xfe\x00garbage",
    ],
    ids=["text", "empty-list", "object", "truncated-js", "broken-gzip", "not-utf8"],
)
def test_load_garbage_names_the_file_and_the_fix(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "schema.json"
    path.write_bytes(content)

    with pytest.raises(SchemaError) as raised:
        ApiSchema.load(path)

    assert str(path) in str(raised.value)
    assert "apidata.js" in str(raised.value)
    assert raised.value.exit_code == 2


def test_load_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match="no such schema file"):
        ApiSchema.load(tmp_path / "absent.json")


# --- Perl patterns ----------------------------------------------------------------------


def patterns_in(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("pattern"), str):
            yield node["pattern"]
        for value in node.values():
            yield from patterns_in(value)
    elif isinstance(node, list):
        for value in node:
            yield from patterns_in(value)


def test_every_schema_pattern_compiles() -> None:
    patterns = {
        pattern for version in SCHEMA_VERSIONS for pattern in patterns_in(bundled_tree(version))
    }

    compiled = [compile_anchored(pattern) for pattern in sorted(patterns)]

    assert len(compiled) == len(patterns) > 60, f"{len(patterns)} distinct patterns"


def test_qr_groups_become_scoped_python_groups() -> None:
    assert translate("(?^:abc)") == "(?-imsx:abc)"
    assert translate("(?^i:abc)d") == "(?i-msx:abc)d"
    assert compile_anchored("(?^i:ab)c").search("ABc")
    assert not compile_anchored("(?^i:ab)c").search("ABC")
    assert not compile_anchored("(?^:ab)").search("AB")


def test_patterns_are_anchored_textually_like_pve() -> None:
    alternation = compile_anchored("/dev/parport\\d+|/dev/usb/lp\\d+")

    # m/^$pattern$/ anchors the first alternative's start and the last one's end only
    assert alternation.search("/dev/parport0")
    assert alternation.search("junk/dev/usb/lp0")
    assert not compile_anchored("[a-z]+").search("abc1")


def test_perl_escapes_and_quantifiers() -> None:
    assert compile_anchored("a\\z").search("a")
    assert compile_anchored("[A-Za-z0-9\\-_\\s]{,8}").search("")
    assert not compile_anchored("[A-Za-z0-9\\-_\\s]{,8}").search("123456789")
    assert compile_anchored("\\h+x").search(" \tx")
    assert compile_anchored("[[:alpha:]]+").search("abc")
    assert compile_anchored("a++b").search("aab")
    assert compile_anchored("$").search("\n")  # Perl's $ also before a final newline
    assert compile_anchored("(?i)ab").search("AB")


@pytest.mark.parametrize("pattern", ["\\Qa.b\\E", "(?|a|b)", "a\\Kb", "(?{ 1 })", "x(?i)y"])
def test_untranslatable_constructs_are_refused(pattern: str) -> None:
    with pytest.raises(PerlRegexError):
        compile_anchored(pattern)


def test_translated_patterns_stay_python_regexes() -> None:
    assert isinstance(compile_anchored("(?^:\\d+)"), re.Pattern)
