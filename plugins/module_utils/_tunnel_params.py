# -*- coding: utf-8 -*-
# Copyright (c) linuxnet.tunnels contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Tunnel parameters, pure: options -> kernel parameters -> public view and netlink request.

The work happens in kernel terms: a dict of tunnel parameters in the kernel's
own units (addresses, link index, ttl 0 for inherit, gre flag words, ...).
parms_from_msg() reads them from a link message, merge() applies the options
given, view() makes the public view the plans compare, and netlink_spec()
the complete request, because the kernel rebuilds a tunnel's parameters from
the request alone and pyroute2 drops attributes it cannot map.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from ansible_collections.linuxnet.tunnels.plugins.module_utils._errors import ResourceError
from ansible_collections.linuxnet.tunnels.plugins.module_utils._link import link_state
from ansible_collections.linuxnet.tunnels.plugins.module_utils._names import FALLBACK_DEVICES, check_ifname

try:
    from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
except ImportError:
    ifinfmsg = None  # reported once by the module through HAS_PYROUTE2

# include/uapi/linux/if_tunnel.h: gre flag words are big-endian 16-bit values.
GRE_CSUM = 0x8000
GRE_KEY = 0x2000
GRE_SEQ = 0x1000
SIT_ISATAP = 0x0001  # IFLA_IPTUN_FLAGS
ENCAP_TYPES = {'none': 0, 'fou': 1, 'gue': 2}  # TUNNEL_ENCAP_*
ANY = '0.0.0.0'
MIN_MTU = 68  # the IPv4 minimum; the device's own limits are checked when known


@dataclass(frozen=True)
class Mode:
    """What one tunnel mode is made of, in the kernel."""

    kind: str  # rtnetlink link kind
    prefix: str  # pyroute2's attribute prefix for the kind
    module: str  # kernel module that provides it
    isatap: bool = False  # sit with SIT_ISATAP
    keys: bool = False  # key / ikey / okey
    gre: bool = False  # csum, seq (gre flag words)
    iptun: bool = True  # ttl, tos, pmtudisc
    encap: bool = True  # fou / gue


MODES = {
    'ipip': Mode('ipip', 'ipip', 'ipip'),
    'gre': Mode('gre', 'gre', 'ip_gre', keys=True, gre=True),
    'sit': Mode('sit', 'sit', 'sit'),
    'isatap': Mode('sit', 'sit', 'sit', isatap=True),
    'vti': Mode('vti', 'vti', 'ip_vti', keys=True, iptun=False, encap=False),
}
TUNNEL_KINDS = frozenset(mode.kind for mode in MODES.values())
KEY_OPTIONS = ('key', 'ikey', 'okey')
NO_KEY = 'none'

# The public view, in the order results show it.
VIEW_KEYS = (
    'name', 'mode', 'local', 'remote', 'dev', 'ttl', 'tos', 'pmtudisc', 'key', 'ikey', 'okey',
    'csum', 'seq', 'encap', 'encap_sport', 'encap_dport', 'mtu', 'up', 'ifindex',
)


# ---------------------------------------------------------------------------
# Option parsing (pure)

def parse_ipv4(value: str, option: str, mode: str) -> str:
    """An IPv4 address in dotted form; 'any' is 0.0.0.0."""
    text = str(value).strip()
    if text.lower() == 'any':
        return ANY
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        raise ResourceError(f"{option}: '{value}' is not an IP address (or 'any')") from None
    if addr.version != 4:
        raise ResourceError(
            f"{option}: '{value}' is an IPv6 address, but {mode} tunnels run over IPv4; "
            'give IPv4 endpoints (IPv6 underlays need ip6tnl/ip6gre, which this module does not manage)'
        )
    return str(addr)


def parse_ttl(value) -> int:
    """1-255, or 'inherit' (the kernel's 0)."""
    text = str(value).strip().lower()
    if text == 'inherit':
        return 0
    try:
        ttl = int(text, 10)
    except ValueError:
        raise ResourceError(f"ttl: '{value}' is neither a number from 1 to 255 nor 'inherit'") from None
    if not 1 <= ttl <= 255:
        raise ResourceError(f"ttl: {ttl} is out of range; give 1 to 255, or 'inherit' (which the kernel stores as 0)")
    return ttl


def parse_tos(value) -> int:
    """'inherit' (the kernel's 1), or 0-255 in decimal or 0x-hex."""
    text = str(value).strip().lower()
    if text == 'inherit':
        return 1
    try:
        tos = int(text, 16) if text.startswith('0x') else int(text, 10)
    except ValueError:
        raise ResourceError(f"tos: '{value}' is neither 'inherit' nor a number from 0 to 255 (decimal, or hex like 0x10)") from None
    if not 0 <= tos <= 255:
        raise ResourceError(f'tos: {tos} is out of range 0 to 255')
    return tos


def parse_key(value, option: str) -> int | None:
    """A 32-bit key as a number or dotted quad; 'none' means no key (None)."""
    text = str(value).strip()
    if text.lower() == NO_KEY:
        return None
    try:
        if '.' in text:
            return int(ipaddress.IPv4Address(text))
        key = int(text, 10)
    except ValueError:
        raise ResourceError(f"{option}: '{value}' is not a key (a number from 0 to 4294967295, a dotted quad like 0.0.0.10, or 'none')") from None
    if not 0 <= key <= 0xFFFFFFFF:
        raise ResourceError(f'{option}: {key} is out of range 0 to 4294967295')
    return key


def parse_port(value, option: str) -> int:
    port = int(value)
    if not 0 <= port <= 65535:
        raise ResourceError(f'{option}: {port} is out of range 0 to 65535')
    return port


def validate_params(params: dict) -> None:
    """Everything that can be refused from the options alone, before any read."""
    name = params['name']
    check_ifname(name, 'name')
    if name in FALLBACK_DEVICES:
        raise ResourceError(
            f"name: '{name}' is a fallback device the kernel creates in every namespace once a tunnel "
            'module is loaded; it cannot be configured or deleted. Choose another name'
        )
    if params.get('state', 'present') == 'absent':
        return
    mode_name = params.get('mode') or 'ipip'
    mode = MODES[mode_name]
    for option in ('local', 'remote'):
        if params.get(option) is not None:
            parse_ipv4(params[option], option, mode_name)
    if params.get('dev') is not None:
        check_ifname(params['dev'], 'dev')
    for option in KEY_OPTIONS:
        if params.get(option) is not None:
            if not mode.keys:
                raise ResourceError(f'{option}: {mode_name} tunnels have no keys (only gre and vti do)')
            parse_key(params[option], option)
    if params.get('key') is not None and (params.get('ikey') is not None or params.get('okey') is not None):
        raise ResourceError('key: give either key (both directions) or ikey/okey, not both')
    for option in ('csum', 'seq'):
        if params.get(option) is not None and not mode.gre:
            raise ResourceError(f'{option}: only gre tunnels have {option}; {mode_name} tunnels do not')
    if not mode.iptun:
        for option in ('ttl', 'tos'):
            if params.get(option) is not None:
                raise ResourceError(f'{option}: {mode_name} tunnels have no {option} setting')
        if params.get('pmtudisc') is False:
            raise ResourceError(f'pmtudisc: {mode_name} tunnels have no pmtudisc setting; leave it at true')
    if params.get('ttl') is not None:
        parse_ttl(params['ttl'])
    if params.get('tos') is not None:
        parse_tos(params['tos'])
    ports = [option for option in ('encap_sport', 'encap_dport') if params.get(option) is not None]
    if not mode.encap:
        for option in ['encap'] + ports:
            if params.get(option) is not None:
                raise ResourceError(f'{option}: {mode_name} tunnels have no fou/gue encapsulation')
    for option in ports:
        parse_port(params[option], option)
    mtu = params.get('mtu')
    if mtu is not None and not MIN_MTU <= mtu <= 65535:
        raise ResourceError(f'mtu: {mtu} is out of range {MIN_MTU} to 65535')
    # What the tunnel has now is not known yet: only the options given can conflict.
    unknown = dict(default_parms(), encap_type=None, encap_dport=None)
    check_conflicts(mode_name, merge(mode_name, unknown, params, None), params, f"{mode_name} tunnel '{name}'")


def check_conflicts(mode_name: str, parms: dict, params: dict, label: str) -> None:
    """Refuse parameters the kernel would silently change or reject (None: not known yet)."""
    mode = MODES[mode_name]
    if mode.iptun and parms['ttl'] and not parms['pmtudisc']:
        raise ResourceError(
            f"ttl: {label} would have a fixed ttl ({parms['ttl']}) and pmtudisc: false, but a fixed ttl needs path MTU "
            'discovery; with pmtudisc: false set ttl: inherit (the kernel would silently turn pmtudisc back on)'
        )
    if not mode.encap or parms['encap_type'] is None:
        return
    if parms['encap_type']:
        if parms['encap_dport'] == 0:
            encap = {code: word for word, code in ENCAP_TYPES.items()}[parms["encap_type"]]
            raise ResourceError(f'encap_dport: {encap} encapsulation needs a destination port (1 to 65535)')
        return
    for option in ('encap_sport', 'encap_dport'):
        if params.get(option) is not None:
            raise ResourceError(f'{option}: ports only apply with encap: fou or encap: gue; {label} has no encapsulation')


# ---------------------------------------------------------------------------
# Kernel parameters <-> public view <-> netlink request (pure)

def default_parms() -> dict:
    """What the kernel uses for a new tunnel when nothing is said."""
    return {
        'local': ANY, 'remote': ANY, 'link': 0, 'ttl': 0, 'tos': 0, 'pmtudisc': True,
        'iflags': 0, 'oflags': 0, 'ikey': 0, 'okey': 0,
        'encap_type': 0, 'encap_sport': 0, 'encap_dport': 0, 'encap_flags': 0,
        'mtu': None, 'up': True,
    }


def parms_from_msg(msg) -> tuple[str | None, dict]:
    """(mode, kernel parameters) of a link message; mode None if not a tunnel of ours."""
    kind = msg.get(('linkinfo', 'kind'))
    if kind not in TUNNEL_KINDS:
        return None, {}
    data = msg.get(('linkinfo', 'data'))
    attrs = dict(data['attrs']) if data is not None else {}
    state = link_state(msg)
    prefix = f'IFLA_{kind.upper()}_'

    def attr(name: str, default=0):
        value = attrs.get(prefix + name)
        return default if value is None else value

    mode = kind
    if kind == 'sit' and attr('FLAGS') & SIT_ISATAP:
        mode = 'isatap'
    parms = default_parms()
    parms.update({
        'local': attr('LOCAL', ANY), 'remote': attr('REMOTE', ANY), 'link': attr('LINK'),
        'mtu': state['mtu'], 'up': state['up'],
    })
    if MODES[mode].iptun:
        parms.update({'ttl': attr('TTL'), 'tos': attr('TOS'), 'pmtudisc': bool(attr('PMTUDISC', 1))})
    if MODES[mode].keys:
        parms.update({'ikey': attr('IKEY'), 'okey': attr('OKEY')})
    if MODES[mode].gre:
        parms.update({'iflags': attr('IFLAGS'), 'oflags': attr('OFLAGS')})
    if MODES[mode].encap:
        parms.update({name.lower(): attr(name) for name in ('ENCAP_TYPE', 'ENCAP_SPORT', 'ENCAP_DPORT', 'ENCAP_FLAGS')})
    parms['min_mtu'] = msg.get('min_mtu') or 0
    parms['max_mtu'] = msg.get('max_mtu') or 0
    return mode, parms


def key_of(mode: Mode, parms: dict, direction: str) -> int | None:
    """A key as the user sees it: None when the tunnel has none."""
    value = parms[direction + 'key']
    if mode.gre:
        return value if parms[direction + 'flags'] & GRE_KEY else None
    return value or None  # vti: key 0 is no key (no mark to match)


def both(parms: dict, flag: int) -> bool | None:
    """A gre flag in both directions: True, False, or None when only one has it."""
    inbound, outbound = bool(parms['iflags'] & flag), bool(parms['oflags'] & flag)
    return inbound if inbound == outbound else None


def view_address(address: str) -> str:
    return 'any' if address == ANY else address


def tos_view(tos: int):
    if tos == 1:
        return 'inherit'
    if tos & 1:
        return f'inherit/{tos & ~1:#x}'  # inherit, with this value for non-IP payloads
    return tos


def view(name: str, mode_name: str, parms: dict, dev: str | None, ifindex: int | None) -> dict:
    """The normalised public state; None where the mode has no such attribute."""
    mode = MODES[mode_name]
    out = dict.fromkeys(VIEW_KEYS)
    ikey = okey = None
    if mode.keys:
        ikey, okey = key_of(mode, parms, 'i'), key_of(mode, parms, 'o')
    encap = None
    if mode.encap:
        encap = {code: label for label, code in ENCAP_TYPES.items()}.get(parms['encap_type'], str(parms['encap_type']))
    out.update({
        'name': name,
        'mode': mode_name,
        'local': view_address(parms['local']),
        'remote': view_address(parms['remote']),
        'dev': dev,
        'mtu': parms['mtu'],
        'up': parms['up'],
        'ifindex': ifindex,
    })
    if mode.iptun:
        out.update({'ttl': parms['ttl'] or 'inherit', 'tos': tos_view(parms['tos']), 'pmtudisc': parms['pmtudisc']})
    if mode.keys:
        out.update({'ikey': ikey, 'okey': okey, 'key': ikey if ikey == okey else None})
    if mode.gre:
        out.update({'csum': both(parms, GRE_CSUM), 'seq': both(parms, GRE_SEQ)})
    if mode.encap:
        out['encap'] = encap
        if encap != 'none':
            out.update({'encap_sport': parms['encap_sport'], 'encap_dport': parms['encap_dport']})
    return out


def set_flag(word: int, flag: int, on: bool) -> int:
    return word | flag if on else word & ~flag


def merge(mode_name: str, parms: dict, params: dict, link: int | None) -> dict:
    """The kernel parameters after applying the options that were given."""
    mode = MODES[mode_name]
    out = dict(parms)
    for option in ('local', 'remote'):
        if params.get(option) is not None:
            out[option] = parse_ipv4(params[option], option, mode_name)
    if link is not None:
        out['link'] = link
    if mode.iptun:
        if params.get('ttl') is not None:
            out['ttl'] = parse_ttl(params['ttl'])
        if params.get('tos') is not None:
            out['tos'] = parse_tos(params['tos'])
        if params.get('pmtudisc') is not None:
            out['pmtudisc'] = bool(params['pmtudisc'])
    if mode.keys:
        wanted = {}
        if params.get('key') is not None:
            wanted['i'] = wanted['o'] = parse_key(params['key'], 'key')
        for direction in ('i', 'o'):
            if params.get(direction + 'key') is not None:
                wanted[direction] = parse_key(params[direction + 'key'], direction + 'key')
        for direction, key in wanted.items():
            out[direction + 'key'] = key or 0
            if mode.gre:
                out[direction + 'flags'] = set_flag(out[direction + 'flags'], GRE_KEY, key is not None)
    if mode.gre:
        for option, flag in (('csum', GRE_CSUM), ('seq', GRE_SEQ)):
            if params.get(option) is not None:
                for word in ('iflags', 'oflags'):
                    out[word] = set_flag(out[word], flag, params[option])
    if mode.encap:
        if params.get('encap') is not None:
            out['encap_type'] = ENCAP_TYPES[params['encap']]
        for option in ('encap_sport', 'encap_dport'):
            if params.get(option) is not None:
                out[option] = params[option]
    if params.get('mtu') is not None:
        out['mtu'] = params['mtu']
    if params.get('up') is not None:
        out['up'] = bool(params['up'])
    return out


def fit_to_mode(mode_name: str, parms: dict) -> dict:
    """Parameters carried into another mode, without what it does not have."""
    mode = MODES[mode_name]
    fresh = default_parms()
    out = dict(parms)
    if not mode.iptun:
        out.update({name: fresh[name] for name in ('ttl', 'tos', 'pmtudisc')})
    if not mode.keys:
        out.update(ikey=0, okey=0)
    if not mode.gre:
        out.update(iflags=0, oflags=0)
    elif 'iflags' in parms:  # keys coming from vti need the gre key flag
        for direction in ('i', 'o'):
            out[direction + 'flags'] = set_flag(out[direction + 'flags'], GRE_KEY, bool(out[direction + 'key']))
    if not mode.encap:
        out.update({name: 0 for name in ('encap_type', 'encap_sport', 'encap_dport', 'encap_flags')})
    return out


def netlink_spec(mode_name: str, parms: dict) -> dict:
    """The complete attribute set for link('add'/'set', kind=...), checked against pyroute2's map."""
    mode = MODES[mode_name]
    attrs = {'link': parms['link'], 'local': parms['local'], 'remote': parms['remote']}
    if mode.iptun:
        attrs.update(ttl=parms['ttl'], tos=parms['tos'], pmtudisc=int(parms['pmtudisc']))
    if mode.keys:
        attrs.update(ikey=parms['ikey'], okey=parms['okey'])
    if mode.gre:
        attrs.update(iflags=parms['iflags'], oflags=parms['oflags'])
    if mode.kind == 'sit':
        attrs['flags'] = SIT_ISATAP if mode.isatap else 0
    if mode.encap:
        attrs.update({name: parms[name] for name in ('encap_type', 'encap_sport', 'encap_dport', 'encap_flags')})
    spec = {f'{mode.prefix}_{name}': value for name, value in attrs.items()}
    check_spec_keys(mode.kind, spec)
    spec['kind'] = mode.kind
    if parms.get('mtu') is not None:
        spec['mtu'] = parms['mtu']
    return spec


def check_spec_keys(kind: str, spec: dict) -> None:
    """pyroute2 silently drops attributes it cannot map: refuse them here instead."""
    if ifinfmsg is None:
        return
    known = {entry[0].lower()[len('ifla_'):] for entry in ifinfmsg.ifinfo.data_map[kind].nla_map}
    unknown = sorted(set(spec) - known)
    if unknown:
        raise ResourceError(f'internal error: pyroute2 has no {kind} attribute(s) {", ".join(unknown)}')


def p2p_class(address: str) -> str:
    """The kernel sets POINTOPOINT or BROADCAST from the remote and cannot change it in place."""
    if address == ANY:
        return 'any'
    return 'multicast' if ipaddress.IPv4Address(address).is_multicast else 'unicast'


def collides(mode_name: str, parms: dict, other_mode: str, other: dict) -> bool:
    """Whether the kernel would see these as the same tunnel (ip_tunnel_find: EEXIST)."""
    mode = MODES[mode_name]
    if MODES[other_mode].kind != mode.kind:
        return False
    if (parms['local'], parms['remote'], parms['link']) != (other['local'], other['remote'], other['link']):
        return False
    if mode.gre:  # gre tells tunnels apart by the input key; vti does not
        mine, theirs = bool(parms['iflags'] & GRE_KEY), bool(other['iflags'] & GRE_KEY)
        return mine == theirs and (not mine or parms['ikey'] == other['ikey'])
    return True


def describe_endpoints(mode_name: str, parms: dict, dev: str | None) -> str:
    words = [f"local {view_address(parms['local'])}", f"remote {view_address(parms['remote'])}"]
    if dev or parms['link']:
        words.append(f'dev {dev or parms["link"]}')
    if MODES[mode_name].gre and parms['iflags'] & GRE_KEY:
        words.append(f'key {parms["ikey"]}')
    return ', '.join(words)
