"""pve-firewall ``src/PVE/Firewall.pm``'s formats: ports, addresses, protocols, ICMP types."""

import functools
import ipaddress
import re
from pathlib import Path

from labsmith.sim.formats.base import die, perl_split, perl_truthy, words
from labsmith.sim.formats.patterns import IPV4_RE, IPV6_RE, is_ip, matches, regex
from labsmith.sim.formats.registry import register_code_formats

_ICMP_TYPES = words(
    """
    any echo-reply destination-unreachable network-unreachable host-unreachable
    protocol-unreachable port-unreachable fragmentation-needed source-route-failed
    network-unknown host-unknown network-prohibited host-prohibited TOS-network-unreachable
    TOS-host-unreachable communication-prohibited host-precedence-violation
    precedence-cutoff source-quench redirect network-redirect host-redirect
    TOS-network-redirect TOS-host-redirect echo-request router-advertisement
    router-solicitation time-exceeded ttl-zero-during-transit ttl-zero-during-reassembly
    parameter-problem ip-header-bad required-option-missing timestamp-request
    timestamp-reply address-mask-request address-mask-reply
    """
)
_ICMPV6_TYPES = words(
    """
    destination-unreachable no-route communication-prohibited beyond-scope
    address-unreachable port-unreachable failed-policy reject-route packet-too-big
    time-exceeded ttl-zero-during-transit ttl-zero-during-reassembly parameter-problem
    bad-header unknown-header-type unknown-option echo-request echo-reply
    router-solicitation router-advertisement neighbor-solicitation neighbour-solicitation
    neighbor-advertisement neighbour-advertisement redirect
    """
)
_CONNTRACK_HELPERS = frozenset(
    ["amanda", "ftp", "irc", "netbios-ns", "pptp", "sane", "sip", "snmp", "tftp"]
)
# A service or protocol name when the host has no /etc/services or /etc/protocols to ask.
_PLAUSIBLE_NAME = r"^[A-Za-z0-9][A-Za-z0-9._+\-]*$"


@functools.cache
def _etc_names(path: str, line_pattern: str) -> frozenset[str] | None:
    """Names (and numbers) in an /etc table as ``get_etc_services``/``parse_protocol_file``
    read them; None when this host has no such file."""
    table = Path(path)
    if not table.is_file():
        return None
    names: set[str] = set()
    for line in table.read_text(encoding="utf-8", errors="replace").splitlines():
        match = re.match(line_pattern, line)
        if match is not None and not line.startswith("#"):
            names.update(match.groups())
    return frozenset(names)


def _known_service(name: str) -> bool:
    names = _etc_names("/etc/services", r"^(\S+)\s+\S+/(?:tcp|udp|sctp)")
    return matches(_PLAUSIBLE_NAME, name) if names is None else name in names


def _known_protocol(name: str) -> bool:
    names = _etc_names("/etc/protocols", r"^(\S+)\s+(\d+)(?:\s+.*)?$")
    if name == "icmpv6":
        return True
    return matches(_PLAUSIBLE_NAME, name) if names is None else name in names


def _fw_ports(text: str, *, dport: bool) -> str:
    """``parse_port_name_number_or_range``: ports, ``a:b`` ranges and service names."""
    elements = perl_split(text, ",")
    if text != ",".join(elements):
        raise die("extraneous commas in list")
    count, icmp = 0, False
    for item in elements:
        numbers = regex(r"^([0-9]+)(?::([0-9]+))?$").search(item)
        if numbers is not None:
            count += _fw_port_numbers(numbers.group(1), numbers.group(2))
        elif dport and (item in _ICMP_TYPES or item in _ICMPV6_TYPES):
            icmp = True
        elif not _known_service(item):
            raise die(f"invalid port '{item}'")
    if icmp and count > 0:
        raise die("ICMP ports not allowed in port range")
    if count > 15:
        raise die("too many entries in port list (> 15 numbers)")
    return text


def _fw_port_numbers(first: str, second: str | None) -> int:
    for port in (first, second):
        if port is not None and int(port) > 65535:
            raise die(f"invalid port '{port}'")
    if second is not None and int(first) > int(second):
        raise die(
            f"backwards range '{first}:{second}' not allowed, did you mean '{second}:{first}'?"
        )
    return 1 if second is None else 2


def _net_ip_version(element: str) -> int:
    """What ``Net::IP->new`` accepts here: an address, ``address/prefix`` or ``a-b`` range.

    The error texts are Net::IP's in spirit; its exact wording is not reproduced.
    """
    if "-" in element:
        return _net_ip_range(element)
    address, _, prefix = element.partition("/")
    version = _ip_version(address, element)
    if prefix:
        try:
            ipaddress.ip_network(element, strict=True)
        except ValueError as error:
            raise die(f"invalid IP address: Invalid prefix {element}") from error
    return version


def _net_ip_range(element: str) -> int:
    begin, _, end = (part.strip() for part in element.partition("-"))
    version = _ip_version(begin, element)
    if _ip_version(end, element) != version:
        raise die(
            f"invalid IP address: Begin and End addresses have different IP versions - {element}"
        )
    if int(ipaddress.ip_address(begin)) > int(ipaddress.ip_address(end)):
        raise die(f"invalid IP address: Begin address is greater than End address {element}")
    return version


def _ip_version(address: str, element: str) -> int:
    if "%" not in address and is_ip(address):
        return ipaddress.ip_address(address).version
    raise die(f"invalid IP address: Cannot determine IP version for {element}")


def _verify_fw_addr_spec(text: str) -> str:
    """``parse_address_list``: an ipset (``+name``), an alias, or a list of IPs/CIDRs."""
    if matches(r"^(\+)(\S+)$", text):
        if len(text) > 65:
            raise die("ipset name too long")
        return text
    if matches(r"^(dc/|guest/)?[A-Za-z][A-Za-z0-9\-\_]+$", text):
        if len(text) > 64:
            raise die("alias name too long")
        return text
    elements = perl_split(text, ",")
    if text != ",".join(elements):
        raise die("extraneous commas in list")
    versions = {_net_ip_version(element) for element in elements}
    if len(versions) > 1:
        raise die(f"detected mixed ipv4/ipv6 addresses in address list '{text}'")
    if len(elements) > 1 and any("-" in element for element in elements):
        raise die("you can't use a range in a list")
    return text


def _verify_ip_or_cidr(text: str) -> str:
    """``pve_verify_ip_or_cidr``: the address pattern, then Net::IP on the cleaned network."""
    if not matches(rf"^(?:{IPV6_RE}|{IPV4_RE})(?:/\d+)?$", text):
        raise die("value does not look like a valid IP address or CIDR network")
    address, _, prefix = text.partition("/")
    if prefix:
        try:
            ipaddress.ip_network(f"{address}/{int(prefix)}", strict=False)
        except ValueError as error:
            raise die(f"Invalid prefix length /{prefix}") from error
    return text


def _verify_ip_or_cidr_or_alias(text: str) -> str | None:
    if matches(r"^(dc/|guest/)?(?:[A-Za-z][A-Za-z0-9\-\_]+)$", text):
        return None
    return _verify_ip_or_cidr(text)


def _verify_fw_protocol(text: str) -> str:
    if perl_truthy(text) and not _known_protocol(text):
        raise die(f"unknown protocol '{text}'")
    return text


def _verify_fw_icmp_type(text: str) -> str:
    if text not in _ICMP_TYPES and text not in _ICMPV6_TYPES and text != "":
        raise die(f"invalid icmp-type value '{text}'")
    return text


def _verify_conntrack_helpers(text: str) -> str:
    helpers = perl_split(text, ",")
    if text != ",".join(helpers):
        raise die("extraneous commas in list")
    for helper in helpers:
        if helper not in _CONNTRACK_HELPERS:
            raise die(f"unknown helper {helper}")
    return text


register_code_formats(
    {
        # pve-firewall src/PVE/Firewall.pm
        "IPorCIDR": _verify_ip_or_cidr,
        "IPorCIDRorAlias": _verify_ip_or_cidr_or_alias,
        "pve-fw-conntrack-helper": _verify_conntrack_helpers,
        "pve-fw-sport-spec": lambda text: _fw_ports(text, dport=False),
        "pve-fw-dport-spec": lambda text: _fw_ports(text, dport=True),
        "pve-fw-addr-spec": _verify_fw_addr_spec,
        "pve-fw-protocol-spec": _verify_fw_protocol,
        "pve-fw-icmp-type-spec": _verify_fw_icmp_type,
    }
)
