# -*- coding: utf-8 -*-
# Copyright (c) linuxnet.tunnels contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The topology module's purge: what the declared namespaces hold but the topology does not declare.

The namespaces are read as net_info reads them (_info.Gatherer), and each
object found is removed through the resource of its kind, with state=absent.
"""

from __future__ import annotations

import errno

from ansible_collections.linuxnet.tunnels.plugins.module_utils._address import AddressResource
from ansible_collections.linuxnet.tunnels.plugins.module_utils._info import Gatherer, declared_address
from ansible_collections.linuxnet.tunnels.plugins.module_utils._link import get_link
from ansible_collections.linuxnet.tunnels.plugins.module_utils._module import make_resource
from ansible_collections.linuxnet.tunnels.plugins.module_utils._netlink import (
    ResourceError,
    errno_of,
    kernel_call,
    netns_exists,
    where,
)
from ansible_collections.linuxnet.tunnels.plugins.module_utils._resource import DELETE, Change, Resource
from ansible_collections.linuxnet.tunnels.plugins.module_utils._route import RouteResource
from ansible_collections.linuxnet.tunnels.plugins.module_utils._tunnel import TunnelResource
from ansible_collections.linuxnet.tunnels.plugins.module_utils._veth import VethResource

LOOPBACK = 'lo'
ANY_METRIC = 'any'


class UndeclaredLink(Resource):
    """A link of a kind no module here manages (bridge, dummy, vxlan, ...), found by purge.

    It can only be deleted, as `ip link del` does; the links the collection
    manages (veths, tunnels) are deleted through their own resources.
    """

    kind = 'link'
    argument_spec = {
        'name': {'type': 'str', 'required': True},
        'state': {'type': 'str', 'choices': ['absent'], 'default': 'absent'},
    }

    def read(self) -> dict | None:
        name = self.params['name']
        with kernel_call(f"could not read link '{name}' in {where(self.netns)}"):
            msg = get_link(self.nl(self.netns), name)
        if msg is None:
            return None
        return {'name': name, 'netns': self.netns, 'kind': msg.get(('linkinfo', 'kind'))}

    def plan(self) -> Change | None:
        current = self.read_or_none()
        return None if current is None else Change(self.kind, self.name, DELETE, current, None)

    def apply(self, change: Change) -> None:
        self.remove()

    def remove(self) -> None:
        name = self.params['name']
        try:
            with kernel_call(f"could not delete link '{name}' in {where(self.netns)}"):
                self.nl(self.netns).link('del', ifname=name)
        except ResourceError as exc:
            if errno_of(exc) != errno.ENODEV:  # gone already
                raise


class Purge:
    """Removals of what the declared namespaces hold but the topology does not declare."""

    def __init__(self, nl, resources: list[Resource]) -> None:
        self.nl = nl
        self.warnings: list[str] = []
        self.namespaces = [r.own_namespace() for r in resources if r.own_namespace() and r.params.get('state') != 'absent']
        # netns -> names of the links the topology makes or uses.
        self.links: dict = {}
        for resource in resources:
            for netns, ifname in resource.makes() + resource.uses():
                self.links.setdefault(netns, set()).add(ifname)
        self.addresses = {r.key() for r in resources if isinstance(r, AddressResource)}
        self.routes: dict = {}  # destination -> metrics declared (ANY_METRIC: any)
        for resource in resources:
            if isinstance(resource, RouteResource):
                metric = resource.params.get('metric')
                self.routes.setdefault(resource.destination(), set()).add(ANY_METRIC if metric is None else metric)

    def steps(self) -> list[Resource]:
        """Routes first, then addresses, then links; what goes with a removed link is not listed."""
        existing = [netns for netns in self.namespaces if netns_exists(netns)]
        if not existing:
            return []
        gatherer = Gatherer(self.nl)
        try:
            gatherer.read(existing, False, False)
            infos = {netns: gatherer.namespace_info(space) for netns, space in gatherer.spaces.items()}
        except ResourceError as exc:
            raise ResourceError(f'purge: {exc}') from exc
        link_steps, address_steps, route_steps = [], [], []
        doomed: set = set()  # (netns, ifname) of links that go
        for netns, info in infos.items():
            for link in info['links']:
                step = self._link(netns, link, doomed)
                if step is not None:
                    link_steps.append(step)
        for netns, info in infos.items():
            seen: set = set()
            for addr in info['addresses']:
                if addr['dev'] in (None, LOOPBACK) or (netns, addr['dev']) in doomed or not declared_address(addr):
                    continue  # link-local, autoconfigured, or going with its link
                options = {'dev': addr['dev'], 'netns': netns, 'address': addr['address'], 'peer': addr['peer'], 'state': 'absent'}
                resource = make_resource(AddressResource, self.nl, options)
                if resource.key() not in self.addresses and resource.key() not in seen:
                    seen.add(resource.key())
                    address_steps.append(resource)
            for route in info['routes']:
                if ((route['dev'] is not None and (netns, route['dev']) in doomed)
                        or not gatherer.declared_route(netns, route)):  # learned, link-local, multipath
                    continue
                options = {'dest': route['dest'], 'gateway': route['gateway'], 'dev': route['dev'], 'metric': route['metric'],
                           'table': route['table'], 'netns': netns, 'state': 'absent'}
                resource = make_resource(RouteResource, self.nl, options)
                metrics = self.routes.get(resource.destination())
                if metrics is None or not (ANY_METRIC in metrics or route['metric'] in metrics):
                    route_steps.append(resource)
        return route_steps + address_steps + link_steps

    def _link(self, netns: str, link: dict, doomed: set) -> Resource | None:
        name = link['name']
        if (name == LOOPBACK or link.get('fallback') or link['kind'] is None or name in self.links.get(netns, ())
                or (netns, name) in doomed):
            return None  # lo, the kernel's fallback tunnels, physical NICs, declared, or going anyway
        if link['kind'] == 'veth':
            peer = link['peer']
            if not peer['named'] or peer['name'] is None or peer['netns'] not in self.namespaces:
                # Deleting one end deletes the other, outside the declared namespaces.
                self.warnings.append(f"purge: kept veth '{name}' in {where(netns)}: its peer is in "
                                     f"{where(peer['netns']) if peer['named'] else 'a namespace without a name'}, "
                                     'which this topology does not declare; deleting one end would delete the other')
                return None
            if peer['name'] in self.links.get(peer['netns'], ()):
                self.warnings.append(f"purge: kept veth '{name}' in {where(netns)}: its peer '{peer['name']}' in "
                                     f"{where(peer['netns'])} is used by the topology")
                return None
            doomed.add((peer['netns'], peer['name']))
            options = {'name': name, 'peer': peer['name'], 'netns': netns, 'peer_netns': peer['netns'], 'state': 'absent'}
            resource = make_resource(VethResource, self.nl, options)
        elif 'tunnel' in link:
            options = {'name': name, 'netns': netns, 'mode': link['tunnel']['mode'], 'state': 'absent'}
            resource = make_resource(TunnelResource, self.nl, options)
        else:
            resource = UndeclaredLink(self.nl, {'name': name, 'netns': netns, 'state': 'absent'})
        doomed.add((netns, name))
        return resource
