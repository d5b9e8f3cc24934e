# -*- coding: utf-8 -*-
# Copyright (c) linuxnet.tunnels contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""L3 tunnels over IPv4: ipip, gre, sit, isatap and vti.

The work happens in kernel terms: a dict of tunnel parameters in the kernel's
own units (addresses, link index, ttl 0 for inherit, gre flag words, ...).
plan() merges the options into the current parameters, and the two public
views (before, after) decide the change. apply() always sends the complete
parameter set with kind=, because the kernel rebuilds a tunnel's parameters
from the request alone and pyroute2 drops attributes it cannot map.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import re
import uuid
from dataclasses import dataclass

from ansible_collections.linuxnet.tunnels.plugins.module_utils._link import (
    get_link,
    link_state,
    set_link,
)
from ansible_collections.linuxnet.tunnels.plugins.module_utils._netlink import (
    FALLBACK_DEVICES,
    NetlinkError,
    ResourceError,
    check_ifname,
    error_text,
    kernel_call,
    where,
)
from ansible_collections.linuxnet.tunnels.plugins.module_utils._resource import (
    CREATE,
    DELETE,
    REPLACE,
    UPDATE,
    Change,
    Resource,
)

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
# The name a replace gives the new tunnel until the old one is gone (see _replace_beside).
TEMPORARY_NAME = re.compile(r'lnt[0-9a-f]{8}')
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


# ---------------------------------------------------------------------------
# The resource

class TunnelResource(Resource):
    kind = 'tunnel'
    argument_spec = {
        'name': {'type': 'str', 'required': True},
        'mode': {'type': 'str', 'choices': list(MODES), 'default': 'ipip'},
        'local': {'type': 'str'},
        'remote': {'type': 'str'},
        'dev': {'type': 'str'},
        'ttl': {'type': 'str'},
        'tos': {'type': 'str'},
        'pmtudisc': {'type': 'bool', 'default': True},
        'key': {'type': 'str', 'no_log': False},
        'ikey': {'type': 'str', 'no_log': False},
        'okey': {'type': 'str', 'no_log': False},
        'csum': {'type': 'bool'},
        'seq': {'type': 'bool'},
        'encap': {'type': 'str', 'choices': list(ENCAP_TYPES)},
        'encap_sport': {'type': 'int'},
        'encap_dport': {'type': 'int'},
        'mtu': {'type': 'int'},
        'up': {'type': 'bool', 'default': True},
        'state': {'type': 'str', 'choices': ['present', 'absent'], 'default': 'present'},
    }
    module_kwargs = {'mutually_exclusive': [('key', 'ikey'), ('key', 'okey')]}

    def __init__(self, nl, params: dict) -> None:
        super().__init__(nl, params)
        self.mode_name: str = params.get('mode') or 'ipip'
        self._current: tuple[str, dict, int] | None = None  # (mode, parms, ifindex) read by plan()
        self._after: dict | None = None  # kernel parameters plan() decided on
        self._names: dict[int, str] = {}  # ifindex -> name in the tunnel's namespace

    # -- reading -----------------------------------------------------------

    @property
    def ifname(self) -> str:
        return self.params['name']

    def label(self, mode_name: str | None = None) -> str:
        return f"{mode_name or self.mode_name} tunnel '{self.ifname}' in {where(self.netns)}"

    def validate(self) -> None:
        validate_params(self.params)

    def _session(self):
        return self.nl(self.netns)

    def _links(self) -> list:
        with kernel_call(f'could not list the links of {where(self.netns)}'):
            found = self._session().links()
        self._names = {msg['index']: msg.get('ifname') for msg in found}
        return found

    def _read_tunnel(self):
        """(mode, parms, ifindex) of the tunnel, or None; refuses a non-tunnel link of that name."""
        with kernel_call(f"could not read link '{self.ifname}' in {where(self.netns)}"):
            msg = get_link(self._session(), self.ifname)
        if msg is None:
            return None
        mode_name, parms = parms_from_msg(msg)
        if mode_name is None:
            kind = msg.get(('linkinfo', 'kind')) or 'device without a kind (physical or loopback)'
            raise ResourceError(
                f"name: link '{self.ifname}' in {where(self.netns)} is a {kind}, not an ipip, gre, sit, "
                'isatap or vti tunnel; this module leaves it alone'
            )
        return mode_name, parms, msg['index']

    def _dev_name(self, index: int) -> str | None:
        """The underlay's name; None when there is none or it is gone (the kernel keeps a stale index)."""
        if not index:
            return None
        if index not in self._names:
            with kernel_call(f'could not read link {index} in {where(self.netns)}'):
                try:
                    msg = self._session().get_link(index=index)
                except NetlinkError as exc:
                    if exc.code != errno.ENODEV:
                        raise
                    return None
            self._names[index] = msg.get('ifname')
        return self._names[index]

    def read(self) -> dict | None:
        found = self._read_tunnel()
        if found is None:
            return None
        mode_name, parms, ifindex = found
        return view(self.ifname, mode_name, parms, self._dev_name(parms['link']), ifindex)

    # -- planning ----------------------------------------------------------

    def wanted(self) -> dict:
        after = merge(self.mode_name, default_parms(), self.params, None)
        return view(self.ifname, self.mode_name, after, self.params.get('dev'), None)

    def makes(self) -> list[tuple]:
        return [(self.netns, self.ifname)]

    def uses(self) -> list[tuple]:
        return [(self.netns, self.params['dev'])] if self.params.get('dev') else []

    def predict_fresh(self, forecast) -> Change | None:
        if self.params['state'] == 'absent':
            return None
        if not forecast.pending(self.netns) and self._read_tunnel() is not None:
            return self.plan()  # only its underlay is made anew
        self._current = None
        action, note, after = self._target(None, None)
        check_conflicts(self.mode_name, after, self.params, self.label())
        return Change(self.kind, self.name, action, None, self.wanted(), [], note)

    def remember(self, change: Change, forecast) -> None:
        if change.action == DELETE:
            return
        after = change.after
        forecast.links[(self.netns, self.ifname)] = {
            'kind': MODES[self.mode_name].kind, 'up': after['up'], 'mtu': after['mtu'], 'new': change.action != UPDATE}

    def plan_state(self) -> Change | None:
        found = self._read_tunnel()
        self._current = found
        before = view(self.ifname, found[0], found[1], self._dev_name(found[1]['link']), found[2]) if found else None
        if self.params['state'] == 'absent':
            return Change(self.kind, self.name, DELETE, before, None) if found else None
        action, note, after = self._target(found, self._resolve_dev())
        check_conflicts(self.mode_name, after, self.params, self.label())
        self._check_mtu(found if action == UPDATE else None)
        dev = self.params['dev'] if self.params.get('dev') is not None else self._dev_name(after['link'])
        wanted = view(self.ifname, self.mode_name, after, dev, found[2] if action == UPDATE else None)
        if before is None:
            differs = []
        else:
            differs = [key for key in VIEW_KEYS if wanted[key] != before[key] and (action == UPDATE or key != 'ifindex')]
            if action == UPDATE and not differs:
                return None
        if self.nl.check_mode:
            # Only to predict the kernel's EEXIST in check mode: a real run gets it
            # from the kernel, and _refusal() names the blocker then.
            self._check_collision(self.mode_name, after)  # only now: it dumps every link of the namespace
        self._after = after
        return Change(self.kind, self.name, action, before, wanted, differs, note)

    def _target(self, found, link: int | None) -> tuple[str, str, dict]:
        """(action, note, kernel parameters after the task) for state present."""
        mode_name = self.mode_name
        if found is None:
            return CREATE, '', merge(mode_name, default_parms(), self.params, link)
        current_mode, current = found[0], found[1]
        lost = 'deleted and created again (addresses and routes on it go with it)'
        if current_mode != mode_name:
            base = fit_to_mode(mode_name, current)
            base['mtu'] = None  # the new mode has another overhead: let the kernel compute it
            note = f'the kernel cannot change a tunnel from {current_mode} to {mode_name} in place, so it is {lost}'
            return REPLACE, note, merge(mode_name, base, self.params, link)
        after = merge(mode_name, current, self.params, link)
        if p2p_class(current['remote']) != p2p_class(after['remote']):
            note = (
                f"remote changes from {view_address(current['remote'])} to {view_address(after['remote'])}, and the "
                f'kernel fixes whether a tunnel is point-to-point when it creates it, so it is {lost}'
            )
            return REPLACE, note, after
        return UPDATE, '', after

    def _resolve_dev(self) -> int | None:
        """The underlay's ifindex in the tunnel's namespace; None when dev is not given."""
        dev = self.params.get('dev')
        if dev is None:
            return None
        if dev == self.ifname:
            raise ResourceError(f"dev: a tunnel cannot run over itself ('{dev}')")
        with kernel_call(f"could not look up dev '{dev}' in {where(self.netns)}"):
            msg = get_link(self._session(), dev)
        if msg is None:
            raise ResourceError(f"dev: there is no link named '{dev}' in {where(self.netns)} (the underlay must be in the tunnel's namespace)")
        return msg['index']

    def _check_mtu(self, found) -> None:
        """An MTU outside what the existing tunnel reports it accepts."""
        mtu = self.params.get('mtu')
        if mtu is not None and found is not None:
            low, high = found[1].get('min_mtu') or 0, found[1].get('max_mtu') or 0
            if (low and mtu < low) or (high and mtu > high):
                raise ResourceError(f'mtu: {mtu} is outside what {self.label()} allows ({low} to {high})')

    def _check_collision(self, mode_name: str, after: dict) -> None:
        """Name the tunnel that already has these endpoints (the kernel would say only EEXIST)."""
        blocker = self._find_blocker(mode_name, after)
        if blocker is not None:
            raise ResourceError(self._collision_message(mode_name, after, blocker))

    def _find_blocker(self, mode_name: str, after: dict) -> tuple[str, str] | None:
        """(name, mode) of another tunnel the kernel would take for this one."""
        own = self._current[2] if self._current else None
        for msg in self._links():
            if msg['index'] == own:
                continue
            other_mode, other = parms_from_msg(msg)
            if other_mode is not None and collides(mode_name, after, other_mode, other):
                return msg.get('ifname'), other_mode
        return None

    def _collision_message(self, mode_name: str, after: dict, blocker: tuple[str, str]) -> str:
        name, other_mode = blocker
        endpoints = describe_endpoints(mode_name, after, self._dev_name(after['link']))
        if name in FALLBACK_DEVICES:
            return (
                f"{self.label(mode_name)} would have the same endpoints ({endpoints}) as the fallback device "
                f"'{name}' the kernel keeps in every namespace: give local, remote or dev"
            )
        return (
            f"{self.label(mode_name)} would have the same endpoints ({endpoints}) as the existing "
            f"{other_mode} tunnel '{name}': the kernel allows one tunnel per mode, endpoints"
            f"{' and key' if MODES[mode_name].gre else ''} in a namespace (File exists (EEXIST))"
        )

    # -- applying ----------------------------------------------------------

    def apply(self, change: Change) -> None:
        if change.action == DELETE:
            self.remove()
            return
        after = self._after
        if change.action == CREATE:
            self._create(self.mode_name, after)
        elif change.action == UPDATE:
            self._update(change, after)
        elif change.action == REPLACE:
            self._replace(after)

    def _add(self, mode_name: str, parms: dict, ifname: str) -> int:
        """Create the tunnel (down); returns its ifindex."""
        session = self._session()
        try:
            session.link('add', ifname=ifname, **netlink_spec(mode_name, parms))
        except NetlinkError as exc:
            if exc.code != errno.EEXIST or not self._delete_leftover(mode_name, parms):
                raise self._refusal(exc, 'create', mode_name, parms) from exc
            return self._add(mode_name, parms, ifname)
        return session.get_link(ifname)['index']

    def _delete_leftover(self, mode_name: str, parms: dict) -> bool:
        """Delete the tunnel in the way if a replace killed halfway left it under its temporary name.

        Such a run made the new tunnel as lnt<hex> and died before renaming it:
        it has this tunnel's endpoints and blocks creating it again.
        """
        blocker = self._find_blocker(mode_name, parms)
        if blocker is None or not TEMPORARY_NAME.fullmatch(blocker[0] or ''):
            return False
        with kernel_call(f"could not delete the {blocker[1]} tunnel '{blocker[0]}' left behind by an interrupted replace"):
            try:
                self._session().link('del', ifname=blocker[0])
            except NetlinkError as exc:
                if exc.code != errno.ENODEV:
                    raise
        return True

    def _bring_up(self, index: int, mode_name: str, parms: dict) -> None:
        with kernel_call(f'{self.label(mode_name)} was created, but could not be brought {"up" if parms["up"] else "down"}'):
            set_link(self._session(), index, up=parms['up'])

    def _create(self, mode_name: str, parms: dict) -> None:
        index = self._add(mode_name, parms, self.ifname)
        try:
            self._bring_up(index, mode_name, parms)
        except ResourceError:
            self._delete_quietly(index)  # leave nothing half-made behind
            raise

    def _update(self, change: Change, after: dict) -> None:
        session = self._session()
        index = self._current[2]
        tunnel_keys = [key for key in change.attributes if key not in ('mtu', 'up')]
        if tunnel_keys:
            # The complete set, mtu included: the kernel resets what is left out
            # and recomputes the MTU when the underlay changes.
            try:
                session.link('set', index=index, **netlink_spec(self.mode_name, after))
            except NetlinkError as exc:
                raise self._refusal(exc, 'change', self.mode_name, after) from exc
            mtu = None
        else:
            mtu = after['mtu'] if 'mtu' in change.attributes else None
        up = after['up'] if 'up' in change.attributes else None
        with kernel_call(f'could not set {", ".join(a for a in ("mtu", "up") if a in change.attributes)} of {self.label()}'):
            set_link(session, index, up=up, mtu=mtu)

    def _replace(self, after: dict) -> None:
        old_mode, old_index = self._current[0], self._current[2]
        if MODES[old_mode].kind != MODES[self.mode_name].kind:
            self._replace_beside(after)
            return
        # Same kind (sit <-> isatap, remote any <-> address): the new tunnel would
        # collide with the old one, so the old one has to go first.
        self._delete(old_index, old_mode)
        try:
            self._create(self.mode_name, after)
        except ResourceError as exc:
            self._restore(exc)
            raise

    def _replace_beside(self, after: dict) -> None:
        """Another kind cannot collide: make it first, so a refusal leaves the old tunnel untouched."""
        old_mode, old_index = self._current[0], self._current[2]
        temporary = f'lnt{uuid.uuid4().hex[:8]}'
        index = self._add(self.mode_name, after, temporary)
        try:
            self._delete(old_index, old_mode)
        except ResourceError:
            self._delete_quietly(index)
            raise
        try:
            # Renaming needs the link down: it still is.
            with kernel_call(f"could not rename the new {self.mode_name} tunnel from '{temporary}' to '{self.ifname}'"):
                self._session().link('set', index=index, ifname=self.ifname)
            self._bring_up(index, self.mode_name, after)
        except ResourceError as exc:
            self._delete_quietly(index)
            self._restore(exc)
            raise

    def _restore(self, exc: ResourceError) -> None:
        """Put the deleted tunnel back, so a failed replace leaves a tunnel of that name."""
        old_mode, old = self._current[0], self._current[1]
        try:
            self._create(old_mode, old)
        except ResourceError as again:
            raise ResourceError(f'{exc}; the previous {old_mode} tunnel could not be restored either: {again}') from exc

    def _delete(self, index: int | None = None, mode_name: str | None = None) -> None:
        """Delete the tunnel by ifindex (or by name); gone already is fine."""
        target = {'ifname': self.ifname} if index is None else {'index': index}
        with kernel_call(f'could not delete {self.label(mode_name)}'):
            try:
                self._session().link('del', **target)
            except NetlinkError as exc:
                if exc.code != errno.ENODEV:
                    raise

    def _refusal(self, exc: NetlinkError, verb: str, mode_name: str, parms: dict) -> ResourceError:
        """The kernel's refusal in words that say what to do."""
        code = exc.code
        what = f'could not {verb} {self.label(mode_name)}'
        if verb == 'create' and code == errno.EOPNOTSUPP:
            mode = MODES[mode_name]
            return ResourceError(
                f'{what}: this kernel has no {mode_name} tunnels: its {mode.module} module is neither loaded nor '
                f'loadable, or the kernel was built without it ({error_text(exc)}); load it (modprobe {mode.module}) '
                'or use a kernel that has it'
            )
        if code == errno.EEXIST:
            blocker = self._find_blocker(mode_name, parms)
            if blocker is not None:
                return ResourceError(self._collision_message(mode_name, parms, blocker))
            if verb == 'create':
                return ResourceError(f"{what}: a link named '{self.ifname}' appeared meanwhile ({error_text(exc)})")
        if code == errno.EINVAL and MODES[mode_name].encap and parms['encap_type']:
            encap = {v: k for k, v in ENCAP_TYPES.items()}[parms['encap_type']]
            if os.path.isdir('/sys/module/fou'):
                why = ('module fou is loaded, but this kernel was built without fou/gue encapsulation for IP tunnels '
                       '(CONFIG_NET_FOU_IP_TUNNELS)')
            else:
                why = 'module fou is not loaded (modprobe fou), or this kernel has no fou/gue support'
            return ResourceError(f'encap: {what} with {encap} encapsulation: {why} ({error_text(exc)})')
        return ResourceError(f'{what}: {error_text(exc)}')

    def remove(self) -> None:
        self._delete()

    def _delete_quietly(self, index: int) -> None:
        try:
            self._delete(index)
        except ResourceError:
            pass
