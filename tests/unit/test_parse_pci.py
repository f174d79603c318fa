"""lspci and IOMMU group listings: every capture in tests/fixtures/host, and each shape."""

from labsmith.facts.model import PciBar, PciDevice, PciLink, ResizableBar
from labsmith.facts.parse_pci import normalise_address, parse_iommu_groups, parse_lspci
from labsmith.facts.snapshot import strip_source_line
from tests.conftest import FIXTURES

GIB = 1024**3
MIB = 1024**2


def fixture(name: str) -> str:
    return strip_source_line((FIXTURES / "host" / name).read_text())


def device(devices: tuple[PciDevice, ...], address: str) -> PciDevice:
    [found] = [d for d in devices if d.address == address]
    return found


# ---- lspci: real captures ------------------------------------------------------------------


def test_rtx6000ada_vvv_shows_a_64g_bar1_and_resizable_bar() -> None:
    [gpu] = parse_lspci(fixture("lspci_vvv_rtx6000ada_rebar_64G_nvidia_bound.txt"))
    assert gpu.address == "0000:01:00.0"
    assert (gpu.class_code, gpu.vendor_device) == (None, None)  # -vvv without -n
    assert gpu.class_name == "VGA compatible controller"
    assert gpu.description.startswith("NVIDIA Corporation AD102GL [RTX 6000 Ada Generation]")
    assert gpu.subsystem == "NVIDIA Corporation AD102GL [RTX 6000 Ada Generation]"
    assert gpu.driver == "nvidia"
    assert gpu.modules == ("nvidiafb", "nouveau", "nvidia_drm", "nvidia")
    assert gpu.bars == (
        PciBar(0, 16 * MIB, is_64bit=False, prefetchable=False, kind="memory"),
        PciBar(1, 64 * GIB, is_64bit=True, prefetchable=True, kind="memory"),
        PciBar(3, 32 * MIB, is_64bit=True, prefetchable=True, kind="memory"),
        PciBar(5, 128, is_64bit=False, prefetchable=False, kind="io"),
    )
    [bar0, bar1, bar3] = gpu.resizable_bars
    assert (bar0.index, bar0.current_bytes, bar0.supported_bytes) == (0, 16 * MIB, (16 * MIB,))
    assert (bar1.index, bar1.current_bytes) == (1, 64 * GIB)
    assert bar1.supported_bytes[0] == 64 * MIB
    assert bar1.supported_bytes[-1] == 64 * GIB
    assert len(bar1.supported_bytes) == 11
    assert (bar3.index, bar3.current_bytes) == (3, 32 * MIB)


def test_gtx1650m_nnk_is_bound_to_nvidia() -> None:
    devices = parse_lspci(fixture("lspci_nnk_gtx1650m_nvidia_bound_hp_laptop.txt"))
    assert [d.address for d in devices] == ["0000:01:00.0", "0000:01:00.1"]
    gpu = device(devices, "0000:01:00.0")
    assert (gpu.class_code, gpu.class_name) == ("0300", "VGA compatible controller")
    assert gpu.vendor_device == "10de:1f91"
    assert gpu.driver == "nvidia"
    assert gpu.modules == ("nouveau", "nvidia_drm", "nvidia")
    assert gpu.subsystem == "Hewlett-Packard Company Device [103c:85fc]"
    assert gpu.slot == "0000:01:00"
    assert gpu.bars == ()
    audio = device(devices, "0000:01:00.1")
    assert (audio.class_code, audio.vendor_device, audio.driver) == (
        "0403",
        "10de:10fa",
        "snd_hda_intel",
    )


def test_rx580_numeric_nkk_form_is_bound_to_vfio() -> None:
    [gpu] = parse_lspci(fixture("lspci_nkk_amd_rx580_vfio_bound_intel_host.txt"))
    assert gpu.address == "0000:01:00.0"
    assert (gpu.class_code, gpu.class_name, gpu.vendor_device) == ("0300", "", "1002:67df")
    assert gpu.driver == "vfio-pci"
    assert gpu.modules == ("amdgpu",)
    assert gpu.subsystem == "1da2:e366"


# ---- lspci: synthetic shapes ---------------------------------------------------------------


def test_nnkvvv_with_domain_reads_every_device_block() -> None:
    devices = parse_lspci(fixture("synthetic_lspci_nnkvvv_D_two_gpus.txt"))
    assert [d.address for d in devices] == ["0000:01:00.0", "0000:01:00.1", "0000:02:00.0"]
    rtx = device(devices, "0000:01:00.0")
    assert (rtx.class_code, rtx.vendor_device, rtx.driver) == ("0300", "10de:2204", "vfio-pci")
    assert rtx.modules == ("nvidiafb", "nouveau")
    assert rtx.bars[1] == PciBar(1, 32 * GIB, is_64bit=True, prefetchable=True, kind="memory")
    assert rtx.bars[3] == PciBar(5, 128, is_64bit=False, prefetchable=False, kind="io")
    assert len(rtx.bars) == 4  # the expansion ROM is no Region
    assert rtx.resizable_bars[1].current_bytes == 32 * GIB
    audio = device(devices, "0000:01:00.1")
    assert audio.bars == (PciBar(0, 16 * 1024, is_64bit=False, prefetchable=False, kind="memory"),)
    assert audio.resizable_bars == ()


def test_disabled_and_virtual_bars_keep_their_size_and_a_virtual_rebar_is_ignored() -> None:
    polaris = device(parse_lspci(fixture("synthetic_lspci_nnkvvv_D_two_gpus.txt")), "0000:02:00.0")
    assert polaris.vendor_device == "1002:67df"  # the last [xxxx:xxxx], not [AMD/ATI]
    assert polaris.driver is None  # unbound: no "Kernel driver in use"
    assert polaris.modules == ("amdgpu",)
    assert polaris.bars == (
        PciBar(0, 256 * MIB, is_64bit=True, prefetchable=True, kind="memory"),
        PciBar(2, 2 * MIB, is_64bit=True, prefetchable=True, kind="memory"),
        PciBar(4, 256, is_64bit=False, prefetchable=False, kind="io"),
        PciBar(5, 256 * 1024, is_64bit=False, prefetchable=False, kind="memory"),
    )
    assert polaris.resizable_bars == ()


def test_vvv_without_n_and_with_domain_takes_the_class_name_before_the_colon() -> None:
    text = (
        "0000:41:00.0 3D controller: NVIDIA Corporation GA100 [A100 PCIe 40GB] (rev a1)\n"
        "    Subsystem: NVIDIA Corporation Device 145f\n"
        "    Region 1: Memory at 20000000000 (64-bit, prefetchable) [size=64G]\n"
        "    Capabilities: [bb0 v1] Physical Resizable BAR\n"
        "        BAR 1: current size: 64GB, supported: 64MB 128MB 256MB 512MB 1GB 2GB 4GB 8GB 16GB 32GB 64GB\n"
        "    Kernel driver in use: nvidia\n"
    )
    [gpu] = parse_lspci(text)
    assert (gpu.address, gpu.class_name, gpu.class_code) == ("0000:41:00.0", "3D controller", None)
    assert gpu.description == "NVIDIA Corporation GA100 [A100 PCIe 40GB] (rev a1)"
    assert gpu.resizable_bars == (
        ResizableBar(1, 64 * GIB, tuple(2**n * MIB for n in range(6, 17))),
    )


def test_resizable_bar_in_terabytes_and_bar_sizes_in_every_unit() -> None:
    text = (
        "c1:00.0 Processing accelerators [1200]: Vendor Accel [1234:5678]\n"
        "\tRegion 0: Memory at 1000000000 (64-bit, prefetchable) [size=1T]\n"
        "\tRegion 2: Memory at f0000000 (low-1M, non-prefetchable) [size=64]\n"
        "\tCapabilities: [e00 v1] Physical Resizable BAR\n"
        "\t\tBAR 0: current size: 1TB, supported: 512GB 1TB\n"
    )
    [accelerator] = parse_lspci(text)
    assert accelerator.address == "0000:c1:00.0"
    assert [bar.size_bytes for bar in accelerator.bars] == [1024 * GIB, 64]
    assert accelerator.bars[1].is_64bit is False
    assert accelerator.resizable_bars == (ResizableBar(0, 1024 * GIB, (512 * GIB, 1024 * GIB)),)


def test_numeric_nkk_with_domain_and_uppercase_hex_is_normalised() -> None:
    text = "0000:0A:00.0 0302: 10DE:20B5 (rev a1)\n\tKernel driver in use: nvidia\n"
    [gpu] = parse_lspci(text)
    assert (gpu.address, gpu.class_code, gpu.vendor_device) == ("0000:0a:00.0", "0302", "10de:20b5")


def test_prompts_blank_lines_and_orphan_details_are_skipped() -> None:
    text = (
        "$ lspci -nnk\n"
        "\tKernel driver in use: stray\n"
        "\n"
        "00:02.0 VGA compatible controller [0300]: Intel Corporation UHD Graphics 630 [8086:3e92]\n"
        "\tDeviceName: Onboard IGD\n"
        "\tKernel driver in use: i915\n"
        "pcilib: sysfs_read_vpd: read failed: Input/output error\n"
    )
    [igd] = parse_lspci(text)
    assert (igd.address, igd.driver, igd.modules, igd.subsystem) == (
        "0000:00:02.0",
        "i915",
        (),
        None,
    )


def test_empty_or_unrelated_text_gives_no_devices() -> None:
    assert parse_lspci("") == ()
    assert parse_lspci("bash: lspci: command not found\n") == ()


def test_normalise_address_accepts_every_domain_width() -> None:
    assert normalise_address("01:00.0") == "0000:01:00.0"
    assert normalise_address("0000:01:00.0") == "0000:01:00.0"
    assert normalise_address("00000000:C1:00.0") == "0000:c1:00.0"
    assert normalise_address("10000:E0:06.0") == "10000:e0:06.0"
    assert normalise_address("not an address") == "not an address"


# ---- IOMMU groups: real captures -----------------------------------------------------------


def test_z170_gtx960_shares_group_1_only_with_its_root_port() -> None:
    listing = parse_iommu_groups(fixture("iommu_groups_intel_z170_gtx960_isolated.txt"))
    assert listing.empty_glob is False
    assert sorted(listing.groups) == list(range(14))
    assert [m.address for m in listing.groups[1]] == [
        "0000:00:01.0",
        "0000:01:00.0",
        "0000:01:00.1",
    ]
    gtx960 = listing.groups[1][1]
    assert (gtx960.class_code, gtx960.vendor_device) == ("0300", "10de:1401")
    assert gtx960.description.startswith(
        "VGA compatible controller [0300]: NVIDIA Corporation GM206"
    )
    assert listing.group_of("0000:00:02.0") == 2


def test_b450m_hd7450_is_in_the_chipset_group_gtx960_alone() -> None:
    listing = parse_iommu_groups(
        fixture("iommu_groups_amd_b450m_max_dualgpu_hd7450_shared_chipset.txt")
    )
    assert listing.group_of("0000:25:00.0") == 11
    assert listing.group_of("0000:26:00.0") == 12
    chipset = {m.address: m for m in listing.groups[11]}
    assert set(chipset) == {
        "0000:03:00.0",
        "0000:03:00.1",
        "0000:03:00.2",
        "0000:20:00.0",
        "0000:20:01.0",
        "0000:20:04.0",
        "0000:22:00.0",
        "0000:25:00.0",
        "0000:25:00.1",
    }
    assert chipset["0000:03:00.0"].class_code == "0c03"  # USB
    assert chipset["0000:03:00.1"].class_code == "0106"  # SATA
    assert chipset["0000:22:00.0"].vendor_device == "10ec:8168"  # RTL8111 NIC
    assert chipset["0000:25:00.0"].vendor_device == "1002:677b"
    # The poster cut this line at "[1002:a...": the class stays, the ids are unknown.
    truncated = chipset["0000:25:00.1"]
    assert (truncated.class_code, truncated.vendor_device) == ("0403", None)
    assert [m.address for m in listing.groups[12]] == ["0000:26:00.0", "0000:26:00.1"]


def test_b550_acs_override_tab_indented_domain_listing_splits_every_function() -> None:
    listing = parse_iommu_groups(
        fixture("iommu_groups_amd_b550_5700g_with_acs_override_multifunction.txt")
    )
    assert sorted(listing.groups) == list(range(20))
    assert listing.group_of("0000:05:00.0") == 14
    assert listing.group_of("0000:05:00.1") == 15
    [igpu] = listing.groups[14]
    assert (igpu.class_code, igpu.vendor_device) == ("0300", "1002:1638")
    assert len(listing.groups[6]) == 8


def test_990fx_literal_glob_means_no_groups() -> None:
    listing = parse_iommu_groups(fixture("iommu_groups_amd_990fx_no_groups_iommu_off.txt"))
    assert listing.empty_glob is True
    assert listing.groups == {}
    assert listing.group_of("0000:00:00.0") is None


# ---- IOMMU groups: synthetic shapes --------------------------------------------------------


def test_one_device_per_line_with_its_group_in_every_spelling() -> None:
    listing = parse_iommu_groups(fixture("synthetic_iommu_groups_inline_one_per_line.txt"))
    assert sorted(listing.groups) == [0, 1, 2, 3, 14, 15]
    assert [m.address for m in listing.groups[1]] == [
        "0000:00:01.0",
        "0000:01:00.0",
        "0000:01:00.1",
    ]
    assert listing.groups[1][1].vendor_device == "10de:2204"
    assert listing.group_of("0000:00:02.0") == 2  # "IOMMU group" in lowercase
    assert listing.group_of("0000:00:14.0") == 3  # "IOMMU Group 3:" with a colon
    [a100] = listing.groups[14]
    assert (a100.class_code, a100.vendor_device) == ("0302", "10de:20f1")
    [nvme] = listing.groups[15]  # cut short at "[14"
    assert (nvme.address, nvme.class_code, nvme.vendor_device) == ("0000:03:00.0", "0108", None)


def test_raw_sysfs_paths_as_the_collector_lists_them() -> None:
    listing = parse_iommu_groups(fixture("synthetic_iommu_groups_sysfs_find.txt"))
    assert sorted(listing.groups) == [0, 1, 2, 3, 13, 14]
    assert [m.address for m in listing.groups[14]] == ["0000:01:00.0", "0000:01:00.1"]
    member = listing.groups[14][0]
    assert (member.class_code, member.vendor_device, member.description) == (None, None, "")


def test_ls_of_a_devices_directory_puts_the_following_addresses_in_its_group() -> None:
    text = "/sys/kernel/iommu_groups/7/devices:\n0000:01:00.0\n0000:01:00.1\n"
    listing = parse_iommu_groups(text)
    assert [m.address for m in listing.groups[7]] == ["0000:01:00.0", "0000:01:00.1"]


def test_header_with_colon_and_space_indented_members() -> None:
    text = (
        "$ ./iommu.sh\n"
        "IOMMU Group 0:\n"
        "    00:00.0 Host bridge [0600]: Intel Corporation Device [8086:3e30] (rev 0d)\n"
        "IOMMU Group 1:\n"
        "    00:01.0 PCI bridge [0604]: Intel Corporation Device [8086:1901] (rev 0d)\n"
        "    01:00.0 VGA compatible controller [0300]: NVIDIA Corporation Device [10de:2684] (rev a1)\n"
        "IOMMU Group 2:\n"
    )
    listing = parse_iommu_groups(text)
    assert listing.group_of("0000:01:00.0") == 1
    assert listing.groups[2] == ()  # a header with no members still names the group


def test_a_device_named_twice_in_one_group_is_kept_once_with_its_description() -> None:
    text = (
        "/sys/kernel/iommu_groups/14/devices/0000:01:00.0\n"
        "  01:00.0 VGA compatible controller [0300]: NVIDIA Corporation GA102 [10de:2204]\n"
    )
    [member] = parse_iommu_groups(text).groups[14]
    assert member.vendor_device == "10de:2204"


def test_devices_before_any_group_and_garbage_lines_are_ignored() -> None:
    text = "01:00.0 VGA compatible controller [0300]: stray [10de:2204]\nIOMMU group 3\nno devices here\n"
    listing = parse_iommu_groups(text)
    assert listing.groups == {3: ()}
    assert parse_iommu_groups("") == parse_iommu_groups("\n\n")
    assert parse_iommu_groups("").groups == {}


# ---- PCIe link (LnkCap / LnkSta) --------------------------------------------------------------


def test_rx470_without_pci_ids_in_a_chipset_x4_slot() -> None:
    gpu, audio = parse_lspci(fixture("lspci_vv_rx470_x4_downgraded_chipset_slot_no_pciids.txt"))
    # "06:00.0 Class 0300: Device 1002:67df (rev cf)": lspci found no pci.ids to name it
    assert (gpu.address, gpu.class_code, gpu.vendor_device) == ("0000:06:00.0", "0300", "1002:67df")
    assert gpu.driver == "amdgpu"
    assert gpu.link_capable == PciLink(speed_gts=8.0, width=16)
    assert gpu.link_status == PciLink(speed_gts=2.5, width=4)
    assert (audio.class_code, audio.vendor_device, audio.driver) == (
        "0403",
        "1002:aaf0",
        "snd_hda_intel",
    )


def test_rtx6000ada_trained_x16_and_idles_at_2_5gts() -> None:
    [ada] = parse_lspci(fixture("lspci_vvv_rtx6000ada_rebar_64G_nvidia_bound.txt"))
    assert ada.link_capable == PciLink(speed_gts=16.0, width=16)
    assert ada.link_status == PciLink(speed_gts=2.5, width=16)


def test_unknown_speed_and_the_second_generation_lines_are_not_the_link() -> None:
    # Synthetic: LnkCap with "Speed unknown" (as lspci prints for rates it cannot name),
    # then LnkCap2/LnkSta2, which must not replace LnkCap/LnkSta.
    text = (
        "01:00.0 VGA compatible controller [0300]: NVIDIA Corporation GA102 [10de:2204]\n"
        "\t\tLnkCap:\tPort #0, Speed unknown, Width x16, ASPM L1\n"
        "\t\tLnkSta:\tSpeed 16GT/s (ok), Width x8 (downgraded)\n"
        "\t\tLnkCap2: Supported Link Speeds: 2.5-16GT/s, Crosslink- Retimer+\n"
        "\t\tLnkSta2: Current De-emphasis Level: -3.5dB\n"
    )
    [gpu] = parse_lspci(text)
    assert gpu.link_capable == PciLink(speed_gts=None, width=16)
    assert gpu.link_status == PciLink(speed_gts=16.0, width=8)
    [plain] = parse_lspci(text.split("\n", 1)[0])
    assert (plain.link_capable, plain.link_status) == (None, None)


def test_iommu_sh_tab_listing_with_usb_lines_and_reset_marks() -> None:
    listing = parse_iommu_groups(fixture("iommu_sh_intel_b560_rx7600_usb_lines.txt"))
    assert sorted(listing.groups) == list(range(16))
    [gpu] = listing.groups[12]
    assert (gpu.address, gpu.class_code, gpu.vendor_device, gpu.reset) == (
        "0000:03:00.0",
        "0300",
        "1002:7480",
        True,
    )
    [audio] = listing.groups[13]
    assert (audio.class_code, audio.vendor_device, audio.reset) == ("0403", "1002:ab30", False)
    # USB devices behind the xHCI controller are not PCI functions of its group
    assert [m.address for m in listing.groups[3]] == ["0000:00:14.0", "0000:00:14.2"]
    assert [m.class_code for m in listing.groups[9]] == ["0601", "0403", "0c05", "0c80"]
    assert listing.groups[14][0].class_code == "0108"


def test_lsiommu_under_dash_keeps_the_listing_after_the_shells_error() -> None:
    listing = parse_iommu_groups(fixture("iommu_groups_lsiommu_hm87_gtx765m_dash_shopt_error.txt"))
    assert sorted(listing.groups) == [0, 1, 10, 11, 12, 13]
    assert [(m.address, m.class_code, m.vendor_device) for m in listing.groups[1]] == [
        ("0000:00:01.0", "0604", "8086:0c01"),
        ("0000:01:00.0", "0302", "10de:11e1"),
        ("0000:01:00.1", "0403", "10de:0e0b"),
    ]


def test_iommu_viewer_group_colon_lines_drop_the_driver_suffix() -> None:
    listing = parse_iommu_groups(fixture("iommu_viewer_amd_matisse_group_colon_driver.txt"))
    assert sorted(listing.groups) == list(range(8))
    [bridge] = listing.groups[2]
    assert (bridge.address, bridge.class_code, bridge.vendor_device) == (
        "0000:00:01.1",
        "0604",
        "1022:1483",
    )
    assert not bridge.description.endswith("pcieport")


def test_pvesh_table_rows_give_group_class_and_ids() -> None:
    listing = parse_iommu_groups(fixture("pvesh_hardware_pci_kabylake_gt1030_table.txt"))
    assert sorted(listing.groups) == [1, 2, 5, 11, 12]
    [gpu] = listing.groups[1]
    assert (gpu.address, gpu.class_code, gpu.vendor_device, gpu.description) == (
        "0000:01:00.0",
        "0300",
        "10de:1d01",
        "GP108 [GeForce GT 1030]",
    )
    assert listing.groups[12][0].class_code == "0108"


def test_ls_long_listing_of_the_devices_directories() -> None:
    # the shape of `ls -l /sys/kernel/iommu_groups/*/devices` in Alex Williamson's LKML post
    # (https://lists.openwall.net/linux-kernel/2013/02/04/276/2)
    text = (
        "/sys/kernel/iommu_groups/10/devices:\n"
        "total 0\n"
        "lrwxrwxrwx 1 root root 0 Feb  4 10:29 0000:00:1f.0 -> "
        "../../../../devices/pci0000:00/0000:00:1f.0\n"
        "lrwxrwxrwx 1 root root 0 Feb  4 10:29 0000:00:1f.2 -> "
        "../../../../devices/pci0000:00/0000:00:1f.2\n"
        "/sys/kernel/iommu_groups/7/devices:\n"
        "total 0\n"
        "lrwxrwxrwx 1 root root 0 Feb  4 10:29 0000:03:00.0 -> "
        "../../../../devices/pci0000:00/0000:00:1c.6/0000:03:00.0\n"
    )
    listing = parse_iommu_groups(text)
    assert {n: [m.address for m in ms] for n, ms in listing.groups.items()} == {
        10: ["0000:00:1f.0", "0000:00:1f.2"],
        7: ["0000:03:00.0"],
    }
