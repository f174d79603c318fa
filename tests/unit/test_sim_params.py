"""Parameter validation against real methods of the bundled schema, rule by rule, with the
messages a Proxmox VE node gives (pve-common JSONSchema.pm and the formats' own sources)."""

from collections.abc import Mapping
from typing import Any

import pytest

from labsmith.sim.formats import (
    MISSING,
    NOT_ALLOWED,
    FormatError,
    check_format,
    parse_property_string,
    property_parts,
    property_values,
    split_list,
)
from labsmith.sim.formats.registry import register_code_formats
from labsmith.sim.params import URI_CONFLICT, ParameterError, validate_parameters
from labsmith.sim.schema import ApiSchema, Method

QEMU_CREATE = "/nodes/{node}/qemu"
QEMU_CONFIG = "/nodes/{node}/qemu/{vmid}/config"
LXC_CREATE = "/nodes/{node}/lxc"
NODE = {"node": "pve1"}


def method(template: str, http_method: str = "POST") -> Method:
    return ApiSchema.bundled().method(template, http_method)


def validate(
    template: str,
    params: Mapping[str, Any],
    path_params: Mapping[str, str] = NODE,
    http_method: str = "POST",
) -> dict[str, Any]:
    return validate_parameters(method(template, http_method), params, path_params)


def errors_of(
    template: str,
    params: Mapping[str, Any],
    path_params: Mapping[str, str] = NODE,
    http_method: str = "POST",
) -> dict[str, str]:
    with pytest.raises(ParameterError) as raised:
        validate(template, params, path_params, http_method)
    return raised.value.errors


def qemu(**params: Any) -> dict[str, Any]:
    return validate(QEMU_CREATE, {"vmid": "110", **params})


def qemu_errors(**params: Any) -> dict[str, str]:
    return errors_of(QEMU_CREATE, {"vmid": "110", **params})


def lxc_errors(**params: Any) -> dict[str, str]:
    return errors_of(LXC_CREATE, {"vmid": "200", "ostemplate": "local:vztmpl/d.tar.zst", **params})


# --- plain types, limits, enums ------------------------------------------------------------


def test_valid_request_comes_back_typed_with_path_params() -> None:
    values = qemu(cores="4", acpi="1", cpulimit="1.5", name="ai-box", ostype="l26")

    assert values == {
        "node": "pve1",
        "vmid": 110,
        "cores": 4,
        "acpi": True,
        "cpulimit": 1.5,
        "name": "ai-box",
        "ostype": "l26",
    }


def test_json_body_numbers_and_booleans_are_accepted() -> None:
    values = validate(QEMU_CREATE, {"vmid": 110, "cores": 4, "acpi": False, "cpulimit": 2})

    assert (values["vmid"], values["cores"], values["acpi"], values["cpulimit"]) == (
        110,
        4,
        False,
        2.0,
    )


def test_vmid_below_range_fails_its_format_first() -> None:
    # check_prop checks the format before minimum/maximum; pve-vmid wants 3 to 9 digits
    assert qemu_errors(vmid="99") == {
        "vmid": "invalid format - value does not look like a valid VM ID\n"
    }


def test_minimum_and_maximum() -> None:
    errors = qemu_errors(cores="0", cpulimit="129")

    assert errors == {
        "cores": "value must have a minimum value of 1",
        "cpulimit": "value must have a maximum value of 128",
    }


def test_type_check_messages() -> None:
    errors = qemu_errors(cores="four", cpulimit="1,5", numa="2")

    assert errors == {
        "cores": "type check ('integer') failed - got 'four'",
        "cpulimit": "type check ('number') failed - got '1,5'",
        "numa": "type check ('boolean') failed - got '2'",
    }


def test_enum_lists_its_choices() -> None:
    assert qemu_errors(ostype="dos") == {
        "ostype": "value 'dos' does not have a value in the enumeration "
        "'other, wxp, w2k, w2k3, w2k8, wvista, win7, win8, win10, win11, l24, l26, solaris'"
    }


def test_pattern_and_lengths() -> None:
    too_long = "a" * 41
    errors = errors_of(
        QEMU_CONFIG, {"serial0": "tty", "digest": too_long}, {"node": "pve1", "vmid": "110"}, "PUT"
    )
    short = errors_of("/access/users", {"userid": "ann@pve", "password": "short"}, {})

    assert errors == {
        "serial0": "value does not match the regex pattern",
        "digest": "value may only be 40 characters long",
    }
    assert short == {"password": "value must be at least 8 characters long"}


def test_all_errors_are_reported_together() -> None:
    errors = errors_of(
        QEMU_CREATE, {"vmid": "99", "cores": "0", "ostype": "dos", "net0": "virtio,tag=5000"}
    )

    assert set(errors) == {"vmid", "cores", "ostype", "net0"}


@pytest.mark.parametrize("spelling", ["true", "yes", "on", "True"])
def test_top_level_booleans_are_strictly_1_or_0(spelling: str) -> None:
    assert qemu_errors(acpi=spelling) == {
        "acpi": f"type check ('boolean') failed - got '{spelling}'"
    }


# --- presence: required, unknown, requires, path parameters -------------------------------


def test_missing_required_parameter() -> None:
    assert errors_of(QEMU_CREATE, {}) == {"vmid": MISSING}


def test_unknown_parameter_is_refused() -> None:
    assert qemu_errors(colour="blue") == {"colour": NOT_ALLOWED}


def test_indexed_parameter_beyond_pve_limit_is_unknown() -> None:
    errors = qemu_errors(
        net31="virtio,bridge=vmbr0", net32="virtio,bridge=vmbr0", hostpci16="mapping=gpu"
    )

    assert errors == {"net32": NOT_ALLOWED, "hostpci16": NOT_ALLOWED}


def test_requires_names_the_missing_parameter() -> None:
    errors = errors_of(QEMU_CONFIG, {"force": "1"}, {"node": "pve1", "vmid": "110"}, "PUT")

    assert errors == {"delete": "missing property required by 'force'"}


def test_path_parameters_are_validated() -> None:
    assert validate(QEMU_CONFIG, {}, {"node": "pve1", "vmid": "110"}, "GET") == {
        "node": "pve1",
        "vmid": 110,
    }
    errors = errors_of(QEMU_CONFIG, {}, {"node": "-pve", "vmid": "abc"}, "GET")

    assert errors == {
        "node": "invalid format - value does not look like a valid node name\n",
        "vmid": "type check ('integer') failed - got 'abc'",
    }


def test_parameter_conflicting_with_the_path_is_refused_alone() -> None:
    errors = errors_of(
        QEMU_CONFIG, {"vmid": "111", "cores": "0"}, {"node": "pve1", "vmid": "110"}, "PUT"
    )

    assert errors == {"vmid": URI_CONFLICT}
    assert (
        validate(QEMU_CONFIG, {"vmid": "110"}, {"node": "pve1", "vmid": "110"}, "GET")["vmid"]
        == 110
    )


def test_cache_buster_is_ignored() -> None:
    assert "_dc" not in qemu(_dc="1700000000")


# --- qemu property strings -----------------------------------------------------------------


def net_format() -> Mapping[str, Any]:
    fmt = method(QEMU_CREATE).properties["net[n]"]["format"]
    assert isinstance(fmt, Mapping)
    return fmt


def test_nic_model_as_default_key() -> None:
    assert qemu(net0="virtio,bridge=vmbr0,tag=10")["net0"] == "virtio,bridge=vmbr0,tag=10"
    assert parse_property_string(net_format(), "virtio,bridge=vmbr0,tag=10") == {
        "model": "virtio",
        "bridge": "vmbr0",
        "tag": "10",
    }


def test_nic_model_key_alias_carries_the_mac() -> None:
    assert "net0" in qemu(net0="virtio=BC:24:11:00:00:01,bridge=vmbr0")
    assert parse_property_string(net_format(), "virtio=BC:24:11:00:00:01,bridge=vmbr0") == {
        "model": "virtio",
        "macaddr": "BC:24:11:00:00:01",
        "bridge": "vmbr0",
    }


def test_nic_sub_key_errors() -> None:
    errors = qemu_errors(
        net0="virtio,bridge=vmbr0,tag=5000",
        net1="virtio,colour=blue",
        net2="virtio,e1000",
        net3="bridge=vmbr0",
        net4="virtio=01:00:00:00:00:01",
        net5="virtio,tag=",
        net6="model=virtio,virtio=BC:24:11:00:00:01",
    )

    assert errors == {
        "net0": "invalid format - format error\nnet0.tag: value must have a maximum value of 4094\n",
        "net1": "invalid format - invalid key in comma-separated list property: colour\n",
        "net2": "invalid format - duplicate key in comma-separated list property: model\n",
        "net3": f"invalid format - format error\nnet3.model: {MISSING}\n",
        "net4": "invalid format - format error\nnet4.macaddr: invalid format - "
        "value does not look like a valid unicast MAC address\n\n",
        "net5": "invalid format - missing key in comma-separated list property\n",
        "net6": "invalid format - key alias 'model' is already defined\n",
    }


@pytest.mark.parametrize("spelling", ["1", "yes", "on", "true", "TRUE"])
def test_sub_key_booleans_take_every_pve_spelling(spelling: str) -> None:
    assert parse_property_string(net_format(), f"virtio,firewall={spelling}")["firewall"] == 1


def test_sub_key_boolean_garbage() -> None:
    assert qemu_errors(net0="virtio,firewall=maybe") == {
        "net0": "invalid format - format error\nnet0.firewall: type check ('boolean') failed - got 'maybe'\n"
    }


def test_disks_take_new_volume_syntax_and_volume_ids() -> None:
    values = qemu(
        scsi0="local-zfs:32,iothread=1", scsi1="local-zfs:vm-100-disk-0", ide2="none,media=cdrom"
    )

    assert values["scsi0"] == "local-zfs:32,iothread=1"
    assert parse_property_string(
        method(QEMU_CREATE).properties["scsi[n]"]["format"], "volume=local-zfs:32"
    ) == {"file": "local-zfs:32"}
    assert qemu_errors(scsi0="nvme", scsi1="local-zfs:32,cache=fast") == {
        "scsi0": "invalid format - format error\nscsi0.file: invalid format - unable to parse volume ID 'nvme'\n\n",
        "scsi1": "invalid format - format error\nscsi1.cache: value 'fast' does not have a value in the "
        "enumeration 'none, writethrough, writeback, unsafe, directsync'\n",
    }


def test_cdrom_uses_the_ide_drive_format() -> None:
    assert qemu(cdrom="local:iso/debian.iso")["cdrom"] == "local:iso/debian.iso"
    assert qemu_errors(cdrom="local:iso/debian.iso,media=tape") == {
        "cdrom": "invalid format - format error\ncdrom.media: value 'tape' does not have a value in the "
        "enumeration 'cdrom, disk'\n"
    }


def test_hostpci_by_mapping_or_by_host_id() -> None:
    values = qemu(
        hostpci0="mapping=rtx5090,pcie=1",
        hostpci1="0000:01:00,pcie=1",
        hostpci2="host=01:00.0;02:00.0",
    )

    assert values["hostpci0"] == "mapping=rtx5090,pcie=1"
    assert parse_property_string("pve-qm-hostpci", "0000:01:00,pcie=1") == {
        "host": "0000:01:00",
        "pcie": 1,
    }


def test_hostpci_refusals() -> None:
    errors = qemu_errors(
        hostpci0="host=0000:01:00,mapping=rtx5090",
        hostpci1="pcie=1",
        hostpci2="0000:0A:00",
        hostpci3="mapping=rtx5090,driver=nouveau",
    )

    assert errors == {
        "hostpci0": "invalid format - Cannot set both 'host' and 'mapping'.\n",
        "hostpci1": "invalid format - Either 'host' or 'mapping' must be set.\n",
        "hostpci2": "invalid format - format error\nhostpci2.host: value does not match the regex pattern\n",
        "hostpci3": "invalid format - format error\nhostpci3.driver: value 'nouveau' does not have a "
        "value in the enumeration 'vfio, keep'\n",
    }


def test_ipconfig_accepts_cidr_dhcp_and_auto() -> None:
    values = qemu(
        ipconfig0="ip=10.0.30.20/24,gw=10.0.30.1",
        ipconfig1="ip=dhcp,ip6=auto",
        ipconfig2="ip6=fd00::20/64,gw6=fd00::1",
    )

    assert values["ipconfig0"] == "ip=10.0.30.20/24,gw=10.0.30.1"


def test_ipconfig_refusals() -> None:
    errors = qemu_errors(
        ipconfig0="gw=10.0.30.1",
        ipconfig1="ip=10.0.30.20",
        ipconfig2="ip=10.0.30.20/24,gw=10.0.30.300",
        ipconfig3="ip6=fd00::20/4",
        ipconfig4="ip=10.0.30.20/24,dns=1.1.1.1",
    )

    assert errors == {
        "ipconfig0": "invalid format - format error\nipconfig0.ip: missing property required by 'ipconfig0.gw'\n",
        "ipconfig1": "invalid format - format error\nipconfig1.ip: invalid format - "
        "value does not look like a valid ipv4 network configuration\n\n",
        "ipconfig2": "invalid format - format error\nipconfig2.gw: invalid format - "
        "value does not look like a valid IPv4 address\n\n",
        "ipconfig3": "invalid format - format error\nipconfig3.ip6: invalid format - "
        "value does not look like a valid ipv6 network configuration\n\n",
        "ipconfig4": "invalid format - invalid key in comma-separated list property: dns\n",
    }


def test_tags_and_delete_lists() -> None:
    values = validate(
        QEMU_CONFIG,
        {"tags": "gpu;lab", "delete": ["net1", "scsi2"]},
        {"node": "pve1", "vmid": "110"},
        "PUT",
    )

    assert values["tags"] == "gpu;lab"
    assert values["delete"] == "net1,scsi2"  # RESTHandler.pm joins a repeated -list parameter
    assert qemu_errors(tags="gpu lab!") == {"tags": "invalid format - invalid characters in tag\n"}


# --- lxc property strings ------------------------------------------------------------------


def test_container_mounts_devices_and_nics() -> None:
    values = validate(
        LXC_CREATE,
        {
            "vmid": "200",
            "ostemplate": "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst",
            "rootfs": "local-zfs:8",
            "mp0": "local-zfs:64,mp=/srv/models",
            "dev0": "/dev/dri/renderD128,gid=104",
            "net0": "name=eth0,bridge=vmbr0,ip=dhcp,tag=30",
        },
    )

    assert values["mp0"] == "local-zfs:64,mp=/srv/models"
    mp = method(LXC_CREATE).properties["mp[n]"]["format"]
    assert parse_property_string(mp, "local-zfs:64,mp=/srv/models") == {
        "volume": "local-zfs:64",
        "mp": "/srv/models",
    }


def test_container_refusals() -> None:
    errors = lxc_errors(
        mp0="local-zfs:64",
        mp1="local-zfs:64,mp=/srv/../etc",
        dev0="/sys/class/drm,gid=104",
        net0="bridge=vmbr0,ip=dhcp",
        net1="name=eth1,ip=10.0.0.5",
        net99="name=eth9",
    )

    assert errors == {
        "mp0": f"invalid format - format error\nmp0.mp: {MISSING}\n",
        "mp1": "invalid format - format error\nmp1.mp: invalid format - /srv/../etc contains illegal character sequences\n\n",
        "dev0": "invalid format - format error\ndev0.path: invalid format - /sys/class/drm is not a valid device path\n\n",
        "net0": f"invalid format - format error\nnet0.name: {MISSING}\n",
        "net1": "invalid format - format error\nnet1.ip: invalid format - "
        "value does not look like a valid ipv4 network configuration\n\n",
        "net99": NOT_ALLOWED,
    }


# --- arrays and typed alternatives ---------------------------------------------------------

PCI_MAP = "node=pve1,path=0000:01:00.0,id=10de:2b85"


def test_array_items_from_repeated_keys_or_a_single_value() -> None:
    repeated = validate("/cluster/mapping/pci", {"id": "rtx5090", "map": [PCI_MAP, PCI_MAP]}, {})
    single = validate("/cluster/mapping/pci", {"id": "rtx5090", "map": PCI_MAP}, {})

    assert repeated["map"] == [PCI_MAP, PCI_MAP]
    assert single["map"] == [PCI_MAP]  # RESTHandler.pm wraps a lone value for an array


def test_array_item_errors_are_indexed() -> None:
    errors = errors_of(
        "/cluster/mapping/pci",
        {"id": "rtx5090", "map": [PCI_MAP, "node=pve1,path=01:00.0,id=x"]},
        {},
    )

    assert errors == {
        "map[1]": "invalid format - format error\nmap[1].id: value does not match the regex pattern\n"
        "map[1].path: value does not match the regex pattern\n"
    }


def test_array_typed_items_are_coerced() -> None:
    values = validate("/cluster/bulk-action/guest/start", {"vms": ["100", "101"]}, {})

    assert values["vms"] == [100, 101]


FABRIC = "/cluster/sdn/fabrics/fabric/{id}"


def test_instance_types_pick_the_variant_of_the_type_property() -> None:
    ospf = validate(FABRIC, {"protocol": "ospf", "delete": ["area"]}, {"id": "fab1"}, "PUT")
    errors = errors_of(
        FABRIC, {"protocol": "ospf", "delete": ["hello_interval"]}, {"id": "fab1"}, "PUT"
    )

    assert ospf["delete"] == ["area"]
    assert errors == {
        "delete[0]": "value 'hello_interval' does not have a value in the enumeration 'area'"
    }


def test_properties_of_another_instance_type_are_still_checked() -> None:
    errors = errors_of(FABRIC, {"protocol": "ospf", "hello_interval": "700"}, {"id": "fab1"}, "PUT")

    assert errors == {"hello_interval": "value must have a maximum value of 600"}


# --- named formats the project sends -------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "value"),
    [
        ("pve-vmid", "100"),
        ("pve-vmid", "999999999"),
        ("pve-node", "pve1"),
        ("pve-storage-id", "local-zfs"),
        ("pve-bridge-id", "vmbr0"),
        ("mac-addr", "BC:24:11:00:00:01"),
        ("pve-tag-list", "gpu;lab,ai"),
        ("dns-name", "ai.lab.example"),
        ("ipv4", "10.0.30.20"),
        ("ipv6", "fd00::20"),
        ("ipv6", "::ffff:10.0.0.1"),
        ("CIDR", "10.0.30.0/24"),
        ("CIDR", "fd00::/64"),
        ("disk-size", "32G"),
        ("disk-size", "1.5TiB"),
        ("pve-volume-id", "local-zfs:vm-100-disk-0"),
        ("pve-volume-id-or-qm-path", "local-zfs:32"),
        ("pve-volume-id-or-qm-path", "/dev/disk/by-id/nvme-x"),
        ("pve-vmid-list", "100,101 102"),
        ("pve-storage-content-list", "images,rootdir"),
        ("pve-userid", "automation@pve"),
        ("pve-lxc-mp-string", "/srv/models"),
        ("pve-lxc-dev-string", "/dev/dri/renderD128"),
        ("pve-calendar-event", "sat *-1..7 15:00"),
        ("pve-calendar-event", "daily"),
        ("urlencoded", "My%20Disk"),
    ],
)
def test_named_formats_accept(fmt: str, value: str) -> None:
    check_format(fmt, value)


@pytest.mark.parametrize(
    ("fmt", "value", "message"),
    [
        ("pve-vmid", "99", "value does not look like a valid VM ID\n"),
        ("pve-node", "pve_1", "value does not look like a valid node name\n"),
        ("pve-storage-id", "l", "storage ID 'l' cannot be shorter than 2 characters\n"),
        ("pve-storage-id", "local zfs", "storage ID 'local zfs' contains illegal characters\n"),
        ("pve-bridge-id", "vmbr 0", "invalid bridge ID 'vmbr 0'\n"),
        ("mac-addr", "01:00:00:00:00:01", "value does not look like a valid unicast MAC address\n"),
        ("pve-tag-list", "ok;-bad", "invalid characters in tag\n"),
        ("dns-name", "-ai.lab", "value does not look like a valid DNS name\n"),
        ("ipv4", "10.0.30.256", "value does not look like a valid IPv4 address\n"),
        ("ipv6", "fd00::1::2", "value does not look like a valid IPv6 address\n"),
        ("CIDR", "10.0.0.0/7", "value does not look like a valid CIDR network\n"),
        ("disk-size", "32GB", "value does not look like a valid disk size: 32GB\n"),
        ("pve-volume-id", "vm-100-disk-0", "unable to parse volume ID 'vm-100-disk-0'\n"),
        ("pve-vmid-list", "100,abc", "value does not look like a valid VM ID\n"),
        ("pve-storage-content-list", "images,disks", "invalid content type 'disks'\n"),
        ("pve-userid", "ab", "user name 'ab' is too short\n"),
        ("pve-userid", "automation", "value 'automation' does not look like a valid user name\n"),
        ("urlencoded", "My Disk", "invalid urlencoded string: My Disk\n"),
    ],
)
def test_named_formats_refuse(fmt: str, value: str, message: str) -> None:
    with pytest.raises(FormatError) as raised:
        check_format(fmt, value)

    assert str(raised.value) == message


def test_property_string_formats_by_name() -> None:
    assert parse_property_string("pve-qm-ipconfig", "ip=dhcp") == {"ip": "dhcp"}
    assert parse_property_string("prune-backups", "keep-last=0") == {"keep-all": 1}
    with pytest.raises(FormatError, match="keep-all cannot be set together with other options"):
        parse_property_string("prune-backups", "keep-all=1,keep-daily=7")
    with pytest.raises(FormatError, match="only accepts hash based named formats"):
        parse_property_string("pve-vmid", "100")
    with pytest.raises(FormatError, match="unknown format: no-such-format"):
        parse_property_string("no-such-format", "x=1")


def test_property_string_errors_carry_sub_key_paths() -> None:
    with pytest.raises(FormatError) as raised:
        parse_property_string("pve-qm-ipconfig", "gw=10.0.0.1,gw6=fd00::1", "ipconfig0")

    assert raised.value.errors == {
        "ipconfig0.ip": "missing property required by 'ipconfig0.gw'",
        "ipconfig0.ip6": "missing property required by 'ipconfig0.gw6'",
    }


def test_split_list_as_pve() -> None:
    assert split_list(" a, b;c  d,") == ["a", "b", "c", "d"]
    assert split_list("a\0b\0") == ["a", "b"]


def test_one_list_splitter_and_one_property_string_reader_serve_the_simulator() -> None:
    assert split_list(None) == []
    assert split_list(["scsi0,net0", "ide2"]) == ["scsi0", "net0", "ide2"]
    assert property_values("local-zfs:8,size=8G,ssd=1", "file") == {
        "file": "local-zfs:8",
        "size": "8G",
        "ssd": "1",
    }
    with pytest.raises(FormatError, match="missing key"):
        list(property_parts("size=8G,=1"))
    with pytest.raises(ValueError, match="registered twice: pve-vmid"):
        register_code_formats({"pve-vmid": lambda text: text})
