# -*- coding: utf-8 -*-
# Copyright (c) linuxnet.tunnels contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Namespace-wide reading for net_info: what is there, and as topology input.

Only the gathering lives here. Link, veth-peer and tunnel attributes are
read with the link and tunnel code (_link.link_state, _link.NsidNames,
_tunnel.parms_from_msg/view), sysctls with SysctlResource.read(), so that
what net_info reports is exactly what the resource modules compare against.
Every socket is opened with flags=0 (Netlink): reading never creates a
namespace.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from dataclasses import dataclass, field

from ansible_collections.linuxnet.tunnels.plugins.module_utils._address import FAMILY_NAME
from ansible_collections.linuxnet.tunnels.plugins.module_utils._link import NsidNames, link_state
from ansible_collections.linuxnet.tunnels.plugins.module_utils._netlink import (
    FALLBACK_DEVICES,
    NETNS_RUN_DIR,
    NamespaceMissing,
    Netlink,
    ResourceError,
    check_netns_name,
    kernel_call,
    list_netns,
    netns_exists,
    where,
)
from ansible_collections.linuxnet.tunnels.plugins.module_utils._sysctl import SysctlResource
from ansible_collections.linuxnet.tunnels.plugins.module_utils._tunnel import parms_from_msg, view

ARGUMENT_SPEC = {
    'netns': {'type': 'str'},
    'namespaces': {'type': 'list', 'elements': 'str'},
    'include_current': {'type': 'bool', 'default': False},
    'kernel_routes': {'type': 'bool', 'default': False},
}
MODULE_KWARGS = {'mutually_exclusive': [('netns', 'namespaces')]}

FORWARDING_SYSCTLS = ('net.ipv4.ip_forward', 'net.ipv6.conf.all.forwarding')
IFA_F_PERMANENT = 0x80  # include/uapi/linux/if_addr.h
RTN_UNICAST = 1
RT_TABLE_LOCAL = 255
RT_TABLE_MAIN = 254
# rtnetlink protocols (include/uapi/linux/rtnetlink.h): routes the kernel
# made itself or learned from the network; a topology does not declare them.
RTPROT_KERNEL = 2
LEARNED_PROTOS = {1: 'redirect', RTPROT_KERNEL: 'kernel', 9: 'ra'}
PROTO_NAMES = {0: 'unspec', 1: 'redirect', 2: 'kernel', 3: 'boot', 4: 'static', 9: 'ra', 16: 'dhcp'}
LOOPBACK_ADDRESSES = frozenset(('127.0.0.1/8', '::1/128'))
LINK_LOCAL = ipaddress.ip_network('fe80::/10')
TOPOLOGY_KEYS = ('namespaces', 'veths', 'links', 'addresses', 'routes', 'sysctls', 'tunnels')


def _same_file(a: str, b: str) -> bool:
    try:
        sa, sb = os.stat(a), os.stat(b)
    except OSError:
        return False
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def current_netns_name() -> str | None:
    """The name under /run/netns of the namespace this process runs in, if it has one.

    Ansible may run inside a named namespace (the linuxnet.tunnels.netns
    connection): that namespace is then reported under its name only.
    """
    for name in list_netns():
        if _same_file('/proc/self/ns/net', os.path.join(NETNS_RUN_DIR, name)):
            return name
    return None


def _compact(item: dict) -> dict:
    """A topology item without the options left to their defaults (None)."""
    return {key: value for key, value in item.items() if value is not None}


def declared_address(addr: dict) -> bool:
    """Whether a topology declares an address like this one (the kernel makes the others)."""
    if addr['dev'] is None or (addr['dev'] == 'lo' and addr['address'] in LOOPBACK_ADDRESSES):
        return False
    if addr['family'] == 'ipv6' and ipaddress.ip_address(addr['local']) in LINK_LOCAL:
        return False
    # IPv6 autoconfiguration adds addresses that expire: the kernel's, not declared.
    return addr['permanent']


@dataclass
class Space:
    """What one namespace's dumps hold; netns None is the current namespace."""

    netns: str | None
    links: list = field(default_factory=list)
    addrs: list = field(default_factory=list)
    routes: list = field(default_factory=list)
    names: dict = field(default_factory=dict)  # ifindex -> ifname
    sysctls: dict = field(default_factory=dict)
    peer_netns: dict = field(default_factory=dict)  # ifindex of a veth -> (found, netns of its peer)


class Gatherer:
    """Reads a set of namespaces once and shapes the result two ways."""

    def __init__(self, nl: Netlink, kernel_routes: bool = False) -> None:
        self.nl = nl
        self.kernel_routes = kernel_routes
        self.spaces: dict[str | None, Space] = {}
        self.warnings: list[str] = []
        self._extra_names: dict[str | None, dict] = {}  # peers' namespaces we were not asked to read

    # ---- which namespaces --------------------------------------------------

    @staticmethod
    def select(netns: str | None, namespaces: list[str] | None, include_current: bool) -> tuple[list[str], bool]:
        """(named namespaces to read, whether to read the current one as well)."""
        here = current_netns_name()
        if netns is not None or namespaces is not None:
            wanted = [netns] if netns is not None else list(namespaces or [])
            option = 'netns' if netns is not None else 'namespaces'
            for name in wanted:
                check_netns_name(name, option)
                if not netns_exists(name):
                    raise ResourceError(f"{option}: network namespace '{name}' does not exist")
            names = list(dict.fromkeys(wanted))
        else:
            names = list_netns()
        # The current namespace, when it has a name, is reported under that name.
        include_current = include_current and here is None
        return names, include_current

    # ---- reading -----------------------------------------------------------

    def read(self, names: list[str], include_current: bool, explicit: bool) -> None:
        order: list[str | None] = ([None] if include_current else []) + list(names)
        for netns in order:
            try:
                self.spaces[netns] = self._dump(netns)
            except NamespaceMissing:
                if explicit:
                    raise ResourceError(f"network namespace '{netns}' does not exist") from None
                continue  # removed while we were reading: it is not there any more
            finally:
                # One socket at a time: hundreds of namespaces must not exhaust fds.
                if netns is not None:
                    self.nl.release(netns)

    def _dump(self, netns: str | None) -> Space:
        session = self.nl(netns)
        space = Space(netns)
        with kernel_call(f'could not read the links, addresses and routes of {where(netns)}'):
            space.links = session.links()
            space.addrs = session.addresses()
            space.routes = session.routes()
        space.names = {msg['index']: msg.get('ifname') for msg in space.links}
        # Where a veth peer may be: named namespaces first, as the current one may have a name too.
        others = [name for name in list_netns() if name != netns] + ([None] if netns is not None else [])
        # The nsid is relative to this namespace: map it while its socket is open.
        nsid_names = NsidNames(session, others)
        for msg in space.links:
            nsid = msg.get('link_netnsid')
            if link_state(msg)['kind'] != 'veth' or nsid is None:
                continue
            with kernel_call(f"could not map the namespace id of the peer of '{msg.get('ifname')}' in {where(netns)}"):
                space.peer_netns[msg['index']] = nsid_names.lookup(nsid)
        space.sysctls = self._sysctls(netns)
        return space

    def _peer_name(self, netns: str | None, index: int | None) -> str | None:
        """ifname of link `index` in `netns`, from our dumps or by asking."""
        if index is None:
            return None
        if netns in self.spaces:
            return self.spaces[netns].names.get(index)
        names = self._extra_names.setdefault(netns, {})
        if index not in names:
            msg = self._read_link(netns, index)
            names[index] = None if msg is None else msg.get('ifname')
        return names[index]

    def _sysctls(self, netns: str | None) -> dict:
        values = {}
        for name in FORWARDING_SYSCTLS:
            # value is required by the spec but unused by read().
            state = SysctlResource(self.nl, {'name': name, 'value': '', 'netns': netns}).read()
            if state is not None:  # IPv6 may be absent from the kernel
                values[name] = state['value']
        return values

    # ---- per-namespace view ------------------------------------------------

    def link_info(self, space: Space, msg) -> dict:
        state = link_state(msg)
        out = {
            'name': state['ifname'],
            'index': state['index'],
            'kind': state['kind'],
            'up': state['up'],
            'mtu': state['mtu'],
            'operstate': state['operstate'],
        }
        if state['ifname'] in FALLBACK_DEVICES:
            out['fallback'] = True
        if state['kind'] == 'veth':
            peer_index = msg.get('link')
            found, peer_netns = space.peer_netns.get(state['index'], (True, space.netns))
            out['peer'] = {
                'name': self._peer_name(peer_netns, peer_index) if found else None,
                'netns': peer_netns,
                'index': peer_index,
                'named': found,  # False: the peer is in a namespace without a name
            }
        mode, parms = parms_from_msg(msg)
        if mode is not None:
            tunnel = view(state['ifname'], mode, parms, space.names.get(parms['link']) if parms['link'] else None, state['index'])
            tunnel.pop('name', None)
            tunnel.pop('ifindex', None)
            out['tunnel'] = tunnel
        return out

    def address_info(self, space: Space, msg) -> dict | None:
        family = msg['family']
        if family not in FAMILY_NAME:
            return None
        raw_local = msg.get('local') or msg.get('address')
        raw_address = msg.get('address')
        if raw_local is None:
            return None
        local = ipaddress.ip_address(raw_local).compressed
        peer = ipaddress.ip_address(raw_address).compressed if raw_address and raw_address != raw_local else None
        flags = msg.get('IFA_FLAGS')
        flags = msg.get('flags', 0) if flags is None else flags
        return {
            'dev': space.names.get(msg['index']),
            'address': f"{local}/{msg['prefixlen']}",
            'local': local,
            'prefixlen': msg['prefixlen'],
            'peer': peer,
            'family': FAMILY_NAME[family],
            'scope': msg['scope'],
            'permanent': bool(flags & IFA_F_PERMANENT),
        }

    def route_info(self, space: Space, msg) -> dict | None:
        table = msg.get('RTA_TABLE') or msg['table']  # the header field cannot hold tables above 255
        if msg['family'] not in FAMILY_NAME or msg['type'] != RTN_UNICAST or table == RT_TABLE_LOCAL:
            return None
        if msg['proto'] == RTPROT_KERNEL and not self.kernel_routes:
            return None
        dst = msg.get('dst')
        if msg['dst_len'] == 0:
            dest = '0.0.0.0/0' if msg['family'] == socket.AF_INET else '::/0'
        else:
            dest = f"{ipaddress.ip_address(dst).compressed}/{msg['dst_len']}"
        gateway = msg.get('gateway')
        oif = msg.get('oif')
        return {
            'dest': dest,
            'family': FAMILY_NAME[msg['family']],
            'gateway': ipaddress.ip_address(gateway).compressed if gateway else None,
            'dev': space.names.get(oif) if oif is not None else None,
            'metric': msg.get('priority') or 0,
            'table': table,
            'proto': PROTO_NAMES.get(msg['proto'], str(msg['proto'])),
            'scope': msg['scope'],
            'multipath': msg.get('multipath') is not None,
        }

    def namespace_info(self, space: Space) -> dict:
        addresses = [a for a in (self.address_info(space, m) for m in space.addrs) if a is not None]
        routes = [r for r in (self.route_info(space, m) for m in space.routes) if r is not None]
        return {
            'links': [self.link_info(space, m) for m in space.links],
            'addresses': addresses,
            'routes': routes,
            'sysctls': space.sysctls,
        }

    # ---- topology view -----------------------------------------------------

    def topology(self, infos: dict) -> dict:
        """The topology module's input: each item takes exactly the options of its resource module."""
        out: dict = {key: [] for key in TOPOLOGY_KEYS}
        out['namespaces'] = [{'name': netns} for netns in self.spaces if netns is not None]
        seen_veth_ends: set = set()
        # The current namespace first: a veth with one end there must be
        # declared from that end (the veth module's peer_netns cannot name it).
        for netns, info in infos.items():
            self._topology_links(out, netns, info, seen_veth_ends)
        for netns, info in infos.items():
            for addr in info['addresses']:
                if declared_address(addr):
                    out['addresses'].append(_compact({'dev': addr['dev'], 'netns': netns, 'address': addr['address'], 'peer': addr['peer']}))
            for route in info['routes']:
                if self.declared_route(netns, route):
                    out['routes'].append(_compact({
                        'dest': route['dest'], 'gateway': route['gateway'], 'dev': route['dev'],
                        'metric': route['metric'], 'table': route['table'], 'netns': netns,
                    }))
            for name, value in info['sysctls'].items():
                out['sysctls'].append(_compact({'name': name, 'value': value, 'netns': netns}))
        return out

    def _topology_links(self, out: dict, netns: str | None, info: dict, seen: set) -> None:
        for link in info['links']:
            if link.get('fallback'):
                continue  # the kernel's own, in every namespace: never declared
            if 'tunnel' in link:
                out['tunnels'].append(self._tunnel_item(netns, link))
            elif link['kind'] == 'veth':
                self._veth_items(out, netns, link, seen)
            else:
                out['links'].append(self._link_item(netns, link['name'], link))

    @staticmethod
    def _link_item(netns: str | None, name: str, link: dict) -> dict:
        return _compact({'name': name, 'netns': netns, 'state': 'up' if link['up'] else 'down', 'mtu': link['mtu']})

    def _veth_items(self, out: dict, netns: str | None, link: dict, seen: set) -> None:
        peer = link['peer']
        me, other = (netns, link['index']), (peer['netns'], peer['index'])
        if me in seen:
            return
        seen.add(me)
        seen.add(other)
        if not peer['named'] or peer['name'] is None:
            self.warnings.append(f"veth '{link['name']}' in {where(netns)} is left out of the topology: its peer is in a "
                                 'namespace without a name (a container?), which the veth module cannot name')
            return
        peer_link = self._peer_link(peer) or {'up': link['up'], 'mtu': link['mtu']}
        item = {'name': link['name'], 'peer': peer['name'], 'netns': netns,
                'peer_netns': peer['netns'] if peer['netns'] != netns else None}
        primary = link
        if peer['netns'] is None and netns is not None:
            # Declared from the current namespace's end: peer_netns cannot say "the current one".
            item.update(name=peer['name'], peer=link['name'], netns=None, peer_netns=netns)
            primary = peer_link
        if peer_link['mtu'] == link['mtu']:
            item['mtu'] = link['mtu']
        else:
            # The veth module gives both ends one MTU; without mtu it leaves them
            # alone, and a link item per end gives each its own.
            out['links'].append(_compact({'name': link['name'], 'netns': netns, 'mtu': link['mtu']}))
            out['links'].append(_compact({'name': peer['name'], 'netns': peer['netns'], 'mtu': peer_link['mtu']}))
        item['up'] = primary['up']
        if peer_link['up'] != link['up']:
            self.warnings.append(
                f"veth '{link['name']}' in {where(netns)} is {'up' if link['up'] else 'down'} but its peer '{peer['name']}' in "
                f"{where(peer['netns'])} is {'up' if peer_link['up'] else 'down'}; the veth module brings both ends up or down "
                f"together, so the topology says up: {str(item['up']).lower()} for both")
        out['veths'].append(_compact(item))

    def _peer_link(self, peer: dict) -> dict | None:
        space = self.spaces.get(peer['netns'])
        if space is None:  # a namespace we were not asked to read
            msg = self._read_link(peer['netns'], peer['index'])
        else:
            msg = next((m for m in space.links if m['index'] == peer['index']), None)
        if msg is None:
            return None
        state = link_state(msg)
        return {'up': state['up'], 'mtu': state['mtu']}

    def _read_link(self, netns: str | None, index: int | None):
        if index is None:
            return None
        try:
            with kernel_call(f'could not read link {index} in {where(netns)}'):
                msg = self.nl(netns).get_link(index=index)
            return msg
        except (ResourceError, ValueError):
            return None  # gone meanwhile: reported as unknown

    @staticmethod
    def _tunnel_item(netns: str | None, link: dict) -> dict:
        tunnel = dict(link['tunnel'])
        item = {'name': link['name'], 'netns': netns}
        for key in ('mode', 'local', 'remote', 'dev', 'ttl', 'tos', 'pmtudisc', 'csum', 'seq',
                    'encap', 'encap_sport', 'encap_dport', 'mtu', 'up'):
            item[key] = tunnel.get(key)
        if isinstance(item['tos'], str) and item['tos'].startswith('inherit/'):
            # 'inherit/0x10' is a view; the tos option takes the kernel's number.
            item['tos'] = f"{int(item['tos'].split('/', 1)[1], 16) | 1:#x}"
        if tunnel.get('key') is not None:
            item['key'] = tunnel['key']
        elif tunnel.get('ikey') is not None or tunnel.get('okey') is not None:
            item['ikey'] = 'none' if tunnel.get('ikey') is None else tunnel['ikey']
            item['okey'] = 'none' if tunnel.get('okey') is None else tunnel['okey']
        for key in ('ttl', 'tos', 'key', 'ikey', 'okey'):
            if isinstance(item.get(key), int) and not isinstance(item[key], bool):
                item[key] = str(item[key])  # these options are strings ('inherit', 'none', dotted keys)
        return _compact(item)

    def declared_route(self, netns: str | None, route: dict) -> bool:
        if route['proto'] in LEARNED_PROTOS.values():
            return False
        if route['family'] == 'ipv6' and ipaddress.ip_network(route['dest']).subnet_of(LINK_LOCAL):
            return False
        if route['multipath']:
            self.warnings.append(f"route {route['dest']} (table {route['table']}) in {where(netns)} is left out of the topology: "
                                 'it is a multipath route, which the route module does not manage')
            return False
        if route['gateway'] is None and route['dev'] is None:
            return False
        return True


def gather(nl: Netlink, params: dict) -> dict:
    """The module's result: per-namespace facts, and the same state as topology input."""
    explicit = params.get('netns') is not None or params.get('namespaces') is not None
    gatherer = Gatherer(nl, kernel_routes=params.get('kernel_routes', False))
    names, include_current = Gatherer.select(params.get('netns'), params.get('namespaces'), params.get('include_current', False))
    gatherer.read(names, include_current, explicit)
    infos = {netns: gatherer.namespace_info(space) for netns, space in gatherer.spaces.items()}
    result = {
        'namespaces': {netns: info for netns, info in infos.items() if netns is not None},
        'current': infos.get(None),
        'topology': gatherer.topology(infos),
    }
    return {'result': result, 'warnings': gatherer.warnings}
