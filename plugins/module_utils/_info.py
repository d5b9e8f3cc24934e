# -*- coding: utf-8 -*-
# Copyright (c) linuxnet.tunnels contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Namespace-wide reading for net_info: what is there, and as topology input.

Only the gathering lives here, and it knows no kind: it dumps each
namespace's links, addresses and routes once, and every kind in
_kinds.KINDS reads and shapes its own part through the hooks of
_resource.Resource (gather, link_facts, claims_link, namespace_facts,
topology_items), with the functions its resource compares with. So what
net_info reports is exactly what the resource modules compare against.
Every socket is opened with flags=0 (Netlink): reading never creates a
namespace.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ansible_collections.linuxnet.tunnels.plugins.module_utils._errors import NamespaceMissing, ResourceError, kernel_call, where
from ansible_collections.linuxnet.tunnels.plugins.module_utils._kinds import KINDS
from ansible_collections.linuxnet.tunnels.plugins.module_utils._names import NETNS_RUN_DIR, check_netns_name, list_netns, netns_exists
from ansible_collections.linuxnet.tunnels.plugins.module_utils._netlink import Netlink

ARGUMENT_SPEC = {
    'netns': {'type': 'raw'},  # a name, or a list of names as people write them (then as namespaces)
    'namespaces': {'type': 'list', 'elements': 'str'},
    'include_current': {'type': 'bool', 'default': False},
    'kernel_routes': {'type': 'bool', 'default': False},
}
MODULE_KWARGS = {'mutually_exclusive': [('netns', 'namespaces')]}


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


@dataclass
class Space:
    """What one namespace's dumps hold; netns None is the current namespace."""

    netns: str | None
    links: list = field(default_factory=list)
    addrs: list = field(default_factory=list)
    routes: list = field(default_factory=list)
    names: dict = field(default_factory=dict)  # ifindex -> ifname
    found: dict = field(default_factory=dict)  # kind -> what its gather() read


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
        if include_current and here is not None and here not in names:
            names.append(here)
        return names, include_current and here is None

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
        for _key, kind in KINDS:
            kind.gather(self, session, space)
        return space

    def link_name(self, netns: str | None, index: int | None) -> str | None:
        """ifname of link `index` in `netns`, from our dumps or by asking."""
        if index is None:
            return None
        if netns in self.spaces:
            return self.spaces[netns].names.get(index)
        names = self._extra_names.setdefault(netns, {})
        if index not in names:
            msg = self.link_msg(netns, index)
            names[index] = None if msg is None else msg.get('ifname')
        return names[index]

    def link_msg(self, netns: str | None, index: int | None):
        """The message of link `index` in `netns`, from our dumps or by asking; None when it is gone."""
        if index is None:
            return None
        if netns in self.spaces:
            return next((msg for msg in self.spaces[netns].links if msg['index'] == index), None)
        try:
            with kernel_call(f'could not read link {index} in {where(netns)}'):
                return self.nl(netns).get_link(index=index)
        except (ResourceError, ValueError):
            return None  # gone meanwhile: reported as unknown

    # ---- per-namespace view ------------------------------------------------

    def link_info(self, space: Space, msg) -> dict:
        out: dict = {}
        for _key, kind in KINDS:
            out.update(kind.link_facts(self, space, msg))
        return out

    def namespace_info(self, space: Space) -> dict:
        info = {'links': [self.link_info(space, msg) for msg in space.links]}
        for _key, kind in KINDS:
            info.update(kind.namespace_facts(self, space))
        return info

    def claimed(self, link: dict) -> bool:
        """Whether a link of namespace_info() is an object of some kind (a veth, a tunnel), not a plain link."""
        return any(kind.claims_link(link) for _key, kind in KINDS)

    # ---- topology view -----------------------------------------------------

    def topology(self, infos: dict) -> dict:
        """The topology module's input: each item takes exactly the options of its resource module."""
        out: dict = {key: [] for key, kind in KINDS if kind.in_topology_output}
        for _key, kind in KINDS:
            for key, items in kind.topology_items(self, infos).items():
                out[key] += items
        return out


def gather(nl: Netlink, params: dict) -> dict:
    """The module's result: per-namespace facts, and the same state as topology input."""
    netns, namespaces = params.get('netns'), params.get('namespaces')
    if isinstance(netns, list):
        netns, namespaces = None, [str(name) for name in netns]
    elif netns is not None:
        netns = str(netns)
    explicit = netns is not None or namespaces is not None
    gatherer = Gatherer(nl, kernel_routes=params.get('kernel_routes', False))
    names, include_current = Gatherer.select(netns, namespaces, params.get('include_current', False))
    gatherer.read(names, include_current, explicit)
    infos = {netns: gatherer.namespace_info(space) for netns, space in gatherer.spaces.items()}
    result = {
        'namespaces': {netns: info for netns, info in infos.items() if netns is not None},
        'current': infos.get(None),
        'topology': gatherer.topology(infos),
    }
    return {'result': result, 'warnings': gatherer.warnings}
