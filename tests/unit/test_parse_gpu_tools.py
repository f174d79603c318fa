"""nvidia-smi -q -x and rocm-smi --json: the captures in tests/fixtures/host, and shapes."""

import pytest

from labsmith.facts.model import MigDevice
from labsmith.facts.parse_gpu_tools import parse_nvidia_smi_xml, parse_rocm_smi_json
from labsmith.facts.snapshot import strip_source_line
from tests.conftest import FIXTURES

MIB = 1024**2


def fixture(name: str) -> str:
    return strip_source_line((FIXTURES / "host" / name).read_text())


# ---- nvidia-smi -q -x ----------------------------------------------------------------------


def test_a100_mig_enabled_with_four_mig_devices() -> None:
    report = parse_nvidia_smi_xml(fixture("nvsmi_a100_sxm4_mig_enabled.xml"))
    assert (report.driver_version, report.cuda_version) == ("535.54.03", "12.2")
    assert report.attached_gpus == 4  # the contributor kept one <gpu> of four
    [gpu] = report.gpus
    assert gpu.pci_address == "0000:01:00.0"
    assert gpu.product_name == "NVIDIA A100-SXM4-80GB"
    assert gpu.uuid == "GPU-513536b6-7d19-9063-b049-1e69664bb298"
    assert (gpu.mig_current, gpu.mig_pending) == ("Enabled", "Enabled")
    assert gpu.mig_devices == tuple(MigDevice(i, None, 19968 * MIB) for i in range(4))
    # The GPU's own totals, not the first MIG device's nor the CC-protected memory's.
    assert gpu.vram_total_bytes == 81920 * MIB
    assert gpu.vram_used_bytes == 50 * MIB
    assert gpu.bar1_total_bytes == 131072 * MIB
    assert (gpu.display_attached, gpu.display_active, gpu.persistence_mode) == (True, False, False)
    assert gpu.processes == ()


def test_dual_a5000_v13_two_gpus_with_the_legacy_256m_bar1() -> None:
    report = parse_nvidia_smi_xml(fixture("nvsmi_dual_rtx_a5000_v13.xml"))
    assert (report.driver_version, report.cuda_version, report.attached_gpus) == (
        "590.44.01",
        "13.1",
        2,
    )
    assert [gpu.pci_address for gpu in report.gpus] == ["0000:81:00.0", "0000:c1:00.0"]
    for gpu in report.gpus:
        assert gpu.product_name == "NVIDIA RTX A5000"
        assert gpu.bar1_total_bytes == 256 * MIB
        assert gpu.vram_total_bytes == 24564 * MIB
        assert (gpu.mig_current, gpu.mig_pending, gpu.mig_devices) == (None, None, ())
        assert gpu.persistence_mode is True
        # v13 reports <display_attached>No</display_attached>; display_mode is deprecated
        assert (gpu.display_attached, gpu.display_active) == (False, False)
        assert gpu.processes == ("/root/src/llama.cpp/build/bin/llama-server",)
    assert report.gpus[0].uuid == "GPU-12345678-aaaa-bbbb-cccc-0123456789ab"


OLD_SCHEMA_XML = """<?xml version="1.0" ?>
<!DOCTYPE nvidia_smi_log SYSTEM "nvsmi_device_v10.dtd">
<nvidia_smi_log>
  <driver_version>470.256.02</driver_version>
  <attached_gpus>1</attached_gpus>
  <gpu id="0000:0A:00.0">
    <product_name>NVIDIA GeForce RTX 3090</product_name>
    <display_mode>Enabled</display_mode>
    <display_active>Enabled</display_active>
    <persistence_mode>Disabled</persistence_mode>
    <mig_mode><current_mig>N/A</current_mig><pending_mig>N/A</pending_mig></mig_mode>
    <mig_devices>None</mig_devices>
    <uuid>GPU-00000000-1111-2222-3333-444444444444</uuid>
    <fb_memory_usage><total>24576 MiB</total><used>N/A</used><free>N/A</free></fb_memory_usage>
    <bar1_memory_usage><total>32768 MiB</total></bar1_memory_usage>
    <processes>
      <process_info><pid>1840</pid><type>G</type><process_name>/usr/lib/xorg/Xorg</process_name></process_info>
      <process_info><pid>2210</pid><type>C</type><process_name>ollama</process_name></process_info>
    </processes>
  </gpu>
</nvidia_smi_log>
"""


def test_old_schema_without_cuda_version_and_with_a_display() -> None:
    report = parse_nvidia_smi_xml(OLD_SCHEMA_XML)
    assert (report.driver_version, report.cuda_version, report.attached_gpus) == (
        "470.256.02",
        None,
        1,
    )
    [gpu] = report.gpus
    assert gpu.pci_address == "0000:0a:00.0"
    assert (gpu.display_attached, gpu.display_active, gpu.persistence_mode) == (True, True, False)
    assert (gpu.mig_current, gpu.mig_pending, gpu.mig_devices) == (None, None, ())
    assert (gpu.vram_total_bytes, gpu.vram_used_bytes) == (24576 * MIB, None)
    assert gpu.bar1_total_bytes == 32 * 1024 * MIB
    assert gpu.processes == ("/usr/lib/xorg/Xorg", "ollama")


def test_mig_devices_with_a_profile_missing_memory_or_index() -> None:
    text = """<nvidia_smi_log><gpu id="00000000:55:00.0">
      <product_name>NVIDIA H100 80GB HBM3</product_name>
      <mig_mode><current_mig>Disabled</current_mig><pending_mig>Enabled</pending_mig></mig_mode>
      <mig_devices>
        <mig_device><index>0</index><profile>3g.40gb</profile>
          <fb_memory_usage><total>40192 MiB</total></fb_memory_usage></mig_device>
        <mig_device><index>1</index><fb_memory_usage><total>N/A</total></fb_memory_usage></mig_device>
        <mig_device><gpu_instance_id>9</gpu_instance_id></mig_device>
      </mig_devices>
    </gpu></nvidia_smi_log>"""
    [gpu] = parse_nvidia_smi_xml(text).gpus
    assert (gpu.mig_current, gpu.mig_pending) == ("Disabled", "Enabled")
    assert gpu.mig_devices == (
        MigDevice(0, "3g.40gb", 40192 * MIB),
        MigDevice(1, None, None),
        MigDevice(2, None, None),  # no <index>: its position
    )
    assert (gpu.uuid, gpu.vram_total_bytes, gpu.display_attached, gpu.persistence_mode) == (
        None,
        None,
        None,
        None,
    )


def test_a_gpu_without_an_id_attribute_takes_its_pci_bus_id() -> None:
    text = (
        "<nvidia_smi_log><gpu><product_name>Tesla T4</product_name>"
        "<pci><pci_bus_id>00000000:3B:00.0</pci_bus_id></pci></gpu></nvidia_smi_log>"
    )
    [gpu] = parse_nvidia_smi_xml(text).gpus
    assert (gpu.pci_address, gpu.product_name) == ("0000:3b:00.0", "Tesla T4")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.",
        "<nvidia_smi_log><gpu></nvidia_smi_log>",
        '{"card0": {}}',
    ],
)
def test_text_that_is_not_xml_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not XML"):
        parse_nvidia_smi_xml(text)


def test_xml_of_another_tool_is_refused() -> None:
    with pytest.raises(ValueError, match="root element is <smi>"):
        parse_nvidia_smi_xml("<smi><gpu/></smi>")


def test_external_entities_are_not_resolved() -> None:
    text = (
        '<!DOCTYPE nvidia_smi_log [<!ENTITY host SYSTEM "file:///etc/hostname">]>'
        "<nvidia_smi_log><driver_version>&host;</driver_version></nvidia_smi_log>"
    )
    with pytest.raises(ValueError, match="undefined entity"):
        parse_nvidia_smi_xml(text)


# ---- rocm-smi --json -----------------------------------------------------------------------


def test_mi100_four_gpus_with_addresses_and_vram() -> None:
    gpus = parse_rocm_smi_json(fixture("rocmsmi_mi100_rocm602.json"))
    assert [gpu.card for gpu in gpus] == ["card0", "card1", "card2", "card3"]
    assert [gpu.pci_address for gpu in gpus] == [
        "0000:83:00.0",
        "0000:a3:00.0",
        "0000:c3:00.0",
        "0000:e3:00.0",
    ]
    for gpu in gpus:
        assert gpu.product_name == "Arcturus GL-XL [Instinct MI100]"
        assert gpu.vram_total_bytes == 34342961152
        assert gpu.vram_used_bytes == 6750208
        assert gpu.driver_version == "6.3.6"


def test_rocm_subset_newer_key_case_and_card_order() -> None:
    text = """WARNING: AMD GPU device(s) is/are in a low-power state. Check power control/runtime_status
{
  "card10": {"PCI Bus": "0000:C4:00.0", "Card Series": "N/A", "Card SKU": "D4120300",
             "VRAM Total Memory (B)": 68702699520},
  "card2": {"Card model": "0x740f"},
  "card9": {"Device Name": "Navi 31 [Radeon RX 7900 XT/7900 XTX]", "VRAM Total Used Memory (B)": "N/A"},
  "cardX": {"PCI Bus": "0000:01:00.0"},
  "card3": "not a card"
}"""
    gpus = parse_rocm_smi_json(text)
    assert [gpu.card for gpu in gpus] == ["card2", "card9", "card10"]
    card2, card9, card10 = gpus
    assert (card2.pci_address, card2.product_name, card2.vram_total_bytes) == (None, "0x740f", None)
    assert card9.product_name == "Navi 31 [Radeon RX 7900 XT/7900 XTX]"
    assert card9.vram_used_bytes is None
    assert (card10.pci_address, card10.product_name) == ("0000:c4:00.0", "D4120300")
    assert card10.vram_total_bytes == 68702699520
    assert card10.driver_version is None  # no "system" entry


def test_rocm_json_without_cards() -> None:
    assert parse_rocm_smi_json('{"system": {"Driver version": "6.8.5"}}') == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "not JSON"),
        ("ERROR: GPU[0]: Unable to read sysfs file", "not JSON"),
        ('{"card0": {"PCI Bus": ', "not JSON"),
        ('["card0"]', "a JSON list"),
    ],
)
def test_text_that_is_not_rocm_smi_json_is_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_rocm_smi_json(text)


# ---- identity, reserved VRAM and the CPU-visible VRAM ------------------------------------


def test_nvidia_vendor_device_comes_from_pci_device_id_and_reserved_vram_is_kept() -> None:
    [a100] = parse_nvidia_smi_xml(fixture("nvsmi_a100_sxm4_mig_enabled.xml")).gpus
    # <pci_device_id>20B210DE</pci_device_id>: device 20b2 in the high half, vendor 10de low
    assert a100.vendor_device == "10de:20b2"
    assert a100.reserved_bytes == 869 * MIB
    for a5000 in parse_nvidia_smi_xml(fixture("nvsmi_dual_rtx_a5000_v13.xml")).gpus:
        assert a5000.vendor_device == "10de:2231"
        assert a5000.reserved_bytes == 450 * MIB


@pytest.mark.parametrize(
    ("device_id", "expected"),
    [("0x13C010DE", "10de:13c0"), ("221610DE", "10de:2216"), ("N/A", None), ("10DE", None)],
)
def test_pci_device_id_in_both_spellings_and_nonsense(device_id: str, expected: str | None) -> None:
    # Synthetic: a minimal document around the one tag under test.
    xml = (
        '<nvidia_smi_log><gpu id="00000000:01:00.0"><pci>'
        f"<pci_device_id>{device_id}</pci_device_id></pci></gpu></nvidia_smi_log>"
    )
    [gpu] = parse_nvidia_smi_xml(xml).gpus
    assert gpu.vendor_device == expected
    assert gpu.reserved_bytes is None


def test_rocm612_rx6700xt_shows_its_device_id_and_256m_of_visible_vram() -> None:
    [card] = parse_rocm_smi_json(fixture("rocmsmi_rx6700xt_rocm612_vis_vram_256M.json"))
    assert card.vendor_device == "1002:73df"
    assert card.vram_total_bytes == 12868124672
    assert card.visible_vram_bytes == 256 * MIB


def test_rocm430_names_the_device_id_gpu_id_and_a_vendor_number_is_no_product() -> None:
    [card] = parse_rocm_smi_json(fixture("rocmsmi_rx6700xt_rocm430_gpu_id_key.json"))
    assert card.vendor_device == "1002:73df"
    assert card.product_name == "67XA6S"  # "Card series": "0x1002" is AMD's vendor id
    assert card.visible_vram_bytes == 256 * MIB


def test_mi100_maps_all_of_its_vram() -> None:
    cards = parse_rocm_smi_json(fixture("rocmsmi_mi100_rocm602.json"))
    assert {card.vendor_device for card in cards} == {"1002:738c"}
    assert all(card.visible_vram_bytes == card.vram_total_bytes for card in cards)
