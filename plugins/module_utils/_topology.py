# -*- coding: utf-8 -*-
# Copyright (c) linuxnet.tunnels contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A whole topology in one call, driven through the resource classes.

Every list item is validated against the argument spec of its resource
module and by the resource's own validate() before anything is read or
touched. Each item is then planned and, unless in check mode, applied right
away, in dependency order, through exactly the classes the single-resource
modules use: later plans see what earlier items made. Check mode predicts
what earlier items of the same call would have made (namespaces, links), so
that it reports what a real run does. A failure stops the run and removes
again what this call created.
"""

from __future__ import annotations

import errno
import ipaddress
import re
import socket
import traceback

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.errors import UnsupportedError

from ansible_collections.linuxnet.tunnels.plugins.module_utils._address import AddressResource
from ansible_collections.linuxnet.tunnels.plugins.module_utils._info import Gatherer
from ansible_collections.linuxnet.tunnels.plugins.module_utils._link import LinkResource, get_link
from ansible_collections.linuxnet.tunnels.plugins.module_utils._module import full_argument_spec, new_module
from ansible_collections.linuxnet.tunnels.plugins.module_utils._netlink import (
    FALLBACK_DEVICES,
    Netlink,
    ResourceError,
    errno_of,
    kernel_call,
    netns_exists,
    where,
)
from ansible_collections.linuxnet.tunnels.plugins.module_utils._netns import NetnsResource
from ansible_collections.linuxnet.tunnels.plugins.module_utils._resource import (
    CREATE,
    DELETE,
    REPLACE,
    UPDATE,
    Change,
    Resource,
    converge,
)
from ansible_collections.linuxnet.tunnels.plugins.module_utils._route import RouteResource
from ansible_collections.linuxnet.tunnels.plugins.module_utils._sysctl import SysctlResource, normalise
from ansible_collections.linuxnet.tunnels.plugins.module_utils._tunnel import TunnelResource
from ansible_collections.linuxnet.tunnels.plugins.module_utils._veth import VethResource

# The lists, in the order a present topology is built (absent: backwards).
KINDS = (
    ('namespaces', NetnsResource),
    ('veths', VethResource),
    ('tunnels', TunnelResource),
    ('links', LinkResource),
    ('addresses', AddressResource),
    ('routes', RouteResource),
    ('sysctls', SysctlResource),
)
# Items that live in one namespace and need nothing from another one but the
# veths: they are handled namespace by namespace (see Topology._ordered).
IN_ONE_NAMESPACE = ('tunnels', 'links', 'addresses', 'routes', 'sysctls')
# Settings of objects rather than objects: state=absent has nothing to remove.
SETTINGS = ('links', 'sysctls')

ARGUMENT_SPEC: dict = {key: {'type': 'list', 'elements': 'dict', 'default': []} for key, _cls in KINDS}
ARGUMENT_SPEC.update({
    'state': {'type': 'str', 'choices': ['present', 'absent'], 'default': 'present'},
    'purge': {'type': 'bool', 'default': False},
})

# What ArgumentSpecValidator takes of a resource's module_kwargs.
VALIDATOR_OPTIONS = ('mutually_exclusive', 'required_together', 'required_one_of', 'required_if', 'required_by')
LOOPBACK = 'lo'
# lo in a namespace that was just made: down, and no kind.
NEW_LOOPBACK = {'kind': None, 'up': False, 'mtu': 65536, 'new': False}
VETH_DEFAULT_MTU = 1500
# net.ipv4.conf.<dev>.*, net.ipv6.neigh.<dev>.*: a new link starts from <default>.
SYSCTL_DEVICE = re.compile(r'^net\.ipv[46]\.(?:conf|neigh)\.([^.]+)\.')
ANY_METRIC = 'any'
# Writing one of these sets the forwarding of every link (and of new ones) in the namespace.
FORWARDING_SWITCHES = {'net.ipv4.ip_forward': '4', 'net.ipv4.conf.all.forwarding': '4', 'net.ipv6.conf.all.forwarding': '6'}
FORWARDING = re.compile(r'^net\.ipv([46])\.conf\.[^.]+\.forwarding$')

_validators: dict = {}


class TopologyFailed(ResourceError):
    """A failure after the run started, with what was done and undone."""

    def __init__(self, message: str, details: dict) -> None:
        super().__init__(message)
        self.details = details


def check_options(resource_class, options: dict) -> tuple[dict, list[str]]:
    """(options with defaults filled in, problems) against the resource module's own spec."""
    validator = _validators.get(resource_class)
    if validator is None:
        kwargs = {k: v for k, v in resource_class.module_kwargs.items() if k in VALIDATOR_OPTIONS}
        validator = _validators[resource_class] = ArgumentSpecValidator(full_argument_spec(resource_class), **kwargs)
    result = validator.validate(options)
    problems = []
    for error in result.errors:
        if isinstance(error, UnsupportedError):
            supported = ', '.join(sorted(validator.argument_spec))
            problems.append(f"unsupported option(s) {', '.join(sorted(map(str, result.unsupported_parameters)))} "
                            f'(supported: {supported})')
        else:
            problems.append(str(error))
    return result.validated_parameters, problems


def make_resource(resource_class, nl: Netlink, options: dict) -> Resource:
    """A resource for options we put together ourselves (purge), validated like an item."""
    values, problems = check_options(resource_class, options)
    if problems:  # a bug of ours, not the user's input
        raise ResourceError(f'internal error: {resource_class.kind} {options}: {"; ".join(problems)}')
    resource = resource_class(nl, values)
    resource.validate()
    return resource


def sysctl_device(name: str) -> str | None:
    """The link a per-device sysctl belongs to ('/' in a key part is a dot, as in sysctl(8))."""
    match = SYSCTL_DEVICE.match(str(name))
    if match is None or match.group(1) in ('all', 'default'):
        return None
    return match.group(1).replace('/', '.')


def forwarding_family(name: str) -> str | None:
    """'4' or '6' for a forwarding switch of a namespace or a link, else None."""
    if name in FORWARDING_SWITCHES:
        return FORWARDING_SWITCHES[name]
    match = FORWARDING.match(str(name))
    return match.group(1) if match else None


def route_key(family: int, dst: str | None, dst_len: int, table: int) -> tuple:
    zero = '0.0.0.0' if family == socket.AF_INET else '::'
    network = ipaddress.ip_network(f'{dst or zero}/{dst_len}')
    return (network.version, network.network_address.compressed, network.prefixlen, table)


def options_of(params: dict) -> dict:
    """An item's options as given (the predicted state of something not made yet)."""
    return {key: value for key, value in params.items() if value is not None and key != 'state'}


class Item:
    """One list item (or one thing purge removes) and its resource."""

    __slots__ = ('key', 'index', 'resource')

    def __init__(self, key: str, index: int | None, resource: Resource) -> None:
        self.key = key
        self.index = index  # None: found by purge
        self.resource = resource

    @property
    def params(self) -> dict:
        return self.resource.params

    @property
    def label(self) -> str:
        return 'purge' if self.index is None else f'{self.key}[{self.index}]'

    def __str__(self) -> str:
        return f'{self.label} ({self.resource.name})'

    def namespaces(self) -> set:
        """The namespaces the object lives in (None: the one Ansible runs in)."""
        if self.key == 'namespaces':
            return set()
        found = {self.resource.netns}
        if self.key == 'veths':
            found.add(self.resource.peer_netns)
        return found

    def makes(self) -> list[tuple]:
        """The links this item creates, as (netns, ifname)."""
        res, p = self.resource, self.params
        if self.key == 'veths':
            return [(res.netns, p['name']), (res.peer_netns, p['peer'])]
        if self.key == 'tunnels':
            return [(res.netns, p['name'])]
        return []

    def uses(self) -> list[tuple]:
        """The links this item needs, as (netns, ifname)."""
        res, p = self.resource, self.params
        if self.key in ('tunnels', 'addresses', 'routes'):
            return [(res.netns, p['dev'])] if p.get('dev') else []
        if self.key == 'links':
            return [(res.netns, p['name'])]
        if self.key == 'sysctls':
            dev = sysctl_device(p['name'])
            return [(res.netns, dev)] if dev else []
        return []

    def identity(self) -> tuple:
        """What makes two items of one list the same object."""
        res, p = self.resource, self.params
        if self.key == 'namespaces':
            return (p['name'],)
        if self.key == 'addresses':
            return (res.netns, p['dev'], res.local.compressed)
        if self.key == 'routes':
            # IPv6 keeps routes that differ only in metric side by side; IPv4 does not for the route module.
            metric = (p.get('metric') or 1024) if res.family == socket.AF_INET6 else None
            return (res.netns,) + route_key(res.family, res.dst, res.dst_len, p['table']) + (metric,)
        if self.key == 'sysctls':
            return (res.netns, res.path)
        return (res.netns, p['name'])


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


def build_items(nl: Netlink, params: dict, absent: bool) -> dict[str, list[Item]]:
    """Every item validated, or one ResourceError listing every bad item."""
    items: dict[str, list[Item]] = {key: [] for key, _cls in KINDS}
    errors: list[str] = []
    for key, resource_class in KINDS:
        takes_absent = 'absent' in (resource_class.argument_spec.get('state', {}).get('choices') or ())
        for index, options in enumerate(params.get(key) or []):
            label = f'{key}[{index}]'
            if not isinstance(options, dict):
                errors.append(f'{label}: an item must be a dictionary of options of the {resource_class.kind} module, not {options!r}')
                continue
            if absent and takes_absent:
                # state=absent removes every listed object, whatever the item says.
                options = dict(options, state='absent')
            values, problems = check_options(resource_class, options)
            if problems:
                errors.append(f'{label}: {"; ".join(problems)}')
                continue
            item = Item(key, index, resource_class(nl, values))
            try:
                item.resource.validate()
            except ResourceError as exc:
                errors.append(f'{item}: {exc}')
                continue
            items[key].append(item)
    if not errors:
        errors = cross_check(items, absent)
    if errors:
        raise ResourceError(f'invalid topology (nothing was changed): {" | ".join(errors)}')
    return items


def cross_check(items: dict[str, list[Item]], absent: bool) -> list[str]:
    """What only the whole topology shows: duplicates, one link made twice, unknown namespaces."""
    errors: list[str] = []
    seen: dict = {}
    for key, _cls in KINDS:
        for item in items[key]:
            ident = (key,) + item.identity()
            if ident in seen:
                errors.append(f'{item}: declared twice (also {seen[ident].label})')
            else:
                seen[ident] = item
    if errors:
        return errors
    makers: dict = {}
    for item in items['veths'] + items['tunnels']:
        for link in item.makes():
            if link in makers:
                errors.append(f"{item}: link '{link[1]}' in {where(link[0])} is also made by {makers[link]}")
            makers[link] = item
    if absent:
        return errors  # a namespace that is not there holds nothing to remove
    declared = {i.params['name'] for i in items['namespaces'] if i.params['state'] == 'present'}
    for key, _cls in KINDS[1:]:
        for item in items[key]:
            if item.params.get('state') == 'absent':
                continue
            options = [('netns', item.resource.netns)]
            if key == 'veths' and item.params.get('peer_netns'):
                options.append(('peer_netns', item.params['peer_netns']))
            for option, netns in options:
                if netns and netns not in declared and not netns_exists(netns):
                    errors.append(f"{item}: {option}: network namespace '{netns}' does not exist and is not declared under namespaces")
    return errors


class Topology:
    """Plans and applies a validated topology; `done` is what was (or would be) changed."""

    def __init__(self, nl: Netlink, params: dict, check_mode: bool) -> None:
        self.nl = nl
        self.check_mode = nl.check_mode = check_mode
        self.absent = params['state'] == 'absent'
        self.purge = bool(params.get('purge')) and not self.absent
        self.items = build_items(nl, params, self.absent)
        self.done: list[tuple[Item, Change]] = []
        self.rolled_back: list[str] = []
        self.warnings: list[str] = []
        # Check mode: links earlier items make or change, (netns, ifname) -> kind, up, mtu, new.
        self.links: dict[tuple, dict] = {}
        # Check mode: forwarding values earlier sysctl items set for a whole namespace, (netns, '4'|'6') -> value.
        self.forwarding: dict[tuple, str] = {}
        # state=absent: the listed namespaces that exist (and are about to go).
        self.removed_netns: set[str] = set()

    # ---- order -------------------------------------------------------------

    def _ordered(self) -> list[Item]:
        """Every item but the namespaces, in an order that respects what each item needs.

        Namespace by namespace: the veths with an end in it that are not made
        yet, then its tunnels, links, addresses, routes and sysctls (these
        only need links of their own namespace). Namespaces with the fewest
        veth ends come first, so that a hub comes last: each spoke's socket
        is then used in one stretch and the hub's stays open, instead of
        every socket being opened again once more than Netlink.MAX_OPEN
        namespaces were touched.
        """
        groups: dict = {}
        for key in IN_ONE_NAMESPACE:
            for item in self.items[key]:
                groups.setdefault(item.resource.netns, []).append(item)
        veths_of: dict = {}
        for veth in self.items['veths']:
            for netns in veth.namespaces():
                veths_of.setdefault(netns, []).append(veth)
        spaces = list(dict.fromkeys(list(veths_of) + list(groups)))
        spaces.sort(key=lambda netns: len(veths_of.get(netns, ())))  # stable: otherwise as declared
        steps: list[Item] = []
        placed: set = set()
        for netns in spaces:
            for veth in veths_of.get(netns, ()):
                if id(veth) not in placed:
                    placed.add(id(veth))
                    steps.append(veth)
            steps += groups.get(netns, [])
        return steps

    def _present_steps(self) -> list[Item]:
        return self.items['namespaces'] + self._ordered()

    def _absent_steps(self) -> list[Item]:
        # Backwards; what lives only in namespaces that go anyway goes with them, not one by one.
        steps = [item for item in reversed(self._ordered())
                 if item.key not in SETTINGS and not self._goes_with_namespace(item)]
        return steps + list(reversed(self.items['namespaces']))

    def _goes_with_namespace(self, item: Item) -> bool:
        spaces = item.namespaces()
        return bool(spaces) and None not in spaces and spaces <= self.removed_netns

    # ---- running -----------------------------------------------------------

    def run(self) -> None:
        if self.absent:
            self.removed_netns = {i.params['name'] for i in self.items['namespaces'] if netns_exists(i.params['name'])}
            steps = self._absent_steps()
        else:
            steps = self._purge_steps() if self.purge else []
            steps += self._present_steps()
        item = None
        try:
            for item in steps:
                change = self._step(item)
                if change is not None:
                    if item.index is None and not change.note:
                        change.note = 'not declared (purge)'
                    self.done.append((item, change))
        except ResourceError as exc:
            raise self._failed(item, exc) from exc
        except Exception as exc:  # a bug of ours must not leave half a lab behind either
            failure = self._failed(item, ResourceError(f'unexpected {type(exc).__name__}: {exc}'))
            failure.details['exception'] = traceback.format_exc()
            raise failure from exc

    def _step(self, item: Item) -> Change | None:
        if self.check_mode:
            change = self._predict(item)
            if change is not None:
                self._remember(item, change)
            return change
        if self.absent or item.index is None:
            change = self._plan_removal(item)
            if change is not None:
                item.resource.apply(change)
            return change
        return converge(item.resource, False)

    def _plan_removal(self, item: Item) -> Change | None:
        """A removal's plan; a missing namespace or link means nothing to do."""
        try:
            return item.resource.plan()
        except ResourceError:
            if self._something_missing(item):
                return None
            raise

    def _something_missing(self, item: Item) -> bool:
        if any(netns and not netns_exists(netns) for netns in item.namespaces()):
            return True
        for netns, ifname in item.uses():
            try:
                with kernel_call(f"could not read link '{ifname}' in {where(netns)}"):
                    if get_link(self.nl(netns), ifname) is None:
                        return True
            except ResourceError:
                return True
        return False

    # ---- check mode --------------------------------------------------------

    def _predict(self, item: Item) -> Change | None:
        """The plan, seen through what earlier items of this call would have made."""
        if self.absent or item.index is None:
            return self._plan_removal(item)
        res = item.resource
        self._check_will_exist(item)
        if item.key == 'links':
            return self._predict_link(item)
        if item.key == 'sysctls':
            forced = self.forwarding.get((res.netns, forwarding_family(res.params['name'])))
            if forced is not None:
                return self._predict_forwarding(item, forced)
        made = [link for link in item.uses() if self.links.get(link, {}).get('new')]
        if not made or not self.nl.readable(res.netns):
            # The resources themselves treat a namespace about to be made as empty.
            return res.plan()
        if item.key == 'sysctls':
            return self._predict_sysctl(item)
        if res.params.get('state') == 'absent':
            return None  # a link made anew carries nothing
        if item.key == 'tunnels' and res.read_or_none() is not None:
            return res.plan()  # only its underlay is made anew
        # On a link made (or made again) by this call: it will be created.
        return Change(res.kind, res.name, CREATE, None, options_of(res.params))

    def _check_will_exist(self, item: Item) -> None:
        """A link in a namespace this call makes exists only if an earlier item makes it (or it is lo)."""
        if item.params.get('state') == 'absent':
            return
        for netns, ifname in item.uses():
            if self.nl.readable(netns) or (netns, ifname) in self.links or ifname in FALLBACK_DEVICES:
                continue
            option = 'name' if item.key in SETTINGS else 'dev'
            raise ResourceError(f"{option}: link '{ifname}' does not exist in {where(netns)}: the namespace is made by this "
                                'topology, and only lo and the links the topology declares will be in it')

    def _remember(self, item: Item, change: Change) -> None:
        """Check mode: what this change will have made, for the items after it."""
        res, p = item.resource, item.params
        if item.key == 'namespaces' and change.action == CREATE:
            self.nl.pending_netns.add(p['name'])
            self.links[(p['name'], LOOPBACK)] = dict(NEW_LOOPBACK)
        elif item.key in ('veths', 'tunnels') and change.action in (CREATE, REPLACE, UPDATE):
            after = change.after or {}
            ends = [after, after.get('peer') or {}] if item.key == 'veths' else [after]
            new = change.action != UPDATE
            for link, end in zip(item.makes(), ends):
                mtu = end.get('mtu')
                if mtu is None and new and item.key == 'veths':
                    mtu = VETH_DEFAULT_MTU
                kind = 'veth' if item.key == 'veths' else after.get('mode')
                self.links[link] = {'kind': kind, 'up': end.get('up'), 'mtu': mtu, 'new': new}
        elif item.key == 'sysctls' and p['name'] in FORWARDING_SWITCHES:
            self.forwarding[(res.netns, FORWARDING_SWITCHES[p['name']])] = normalise(p['value'])
        elif item.key == 'links' and change.after:
            known = self.links.setdefault(item.uses()[0], {'new': False})
            known.update({key: change.after.get(key) for key in ('up', 'mtu')})

    def _predict_link(self, item: Item) -> Change | None:
        res, p = item.resource, item.params
        known = self.links.get((res.netns, p['name']))
        if known is None:
            return res.plan()  # an existing link (or a fallback device of a new namespace)
        wanted = {'up': None if p.get('state') is None else p['state'] == 'up', 'mtu': p.get('mtu')}
        differs = [key for key, value in wanted.items() if value is not None and known.get(key) != value]
        if not differs:
            return None
        before = {'name': p['name'], 'netns': res.netns, 'index': None, 'kind': known.get('kind'),
                  'up': known.get('up'), 'mtu': known.get('mtu'), 'operstate': None}
        return Change(res.kind, res.name, UPDATE, before, dict(before, **{key: wanted[key] for key in differs}), differs)

    @staticmethod
    def _predict_forwarding(item: Item, forced: str) -> Change | None:
        """An earlier item switched forwarding for the whole namespace: every link follows."""
        res = item.resource
        wanted = str(res.params['value']).strip()
        if normalise(wanted) == forced:
            return None
        before = {'name': res.params['name'], 'netns': res.netns, 'value': forced}
        return Change(res.kind, res.name, UPDATE, before, dict(before, value=wanted), ['value'])

    def _predict_sysctl(self, item: Item) -> Change | None:
        """A sysctl of a link made by this call starts from the namespace's default for new links."""
        res = item.resource
        name = res.params['name']
        match = SYSCTL_DEVICE.match(name)
        template = SysctlResource(self.nl, dict(res.params, name=f'{name[:match.start(1)]}default{name[match.end(1):]}'))
        template.validate()
        change = template.plan()
        if change is None:
            return None
        return Change(res.kind, res.name, UPDATE, dict(change.before or {}, name=name), dict(change.after, name=name), list(change.attributes))

    # ---- purge -------------------------------------------------------------

    def _declared(self) -> tuple[dict, set, dict]:
        """(netns -> link names, address keys, route key -> metrics) the items declare or use."""
        links: dict = {}
        for items in self.items.values():
            for item in items:
                for netns, ifname in item.makes() + item.uses():
                    links.setdefault(netns, set()).add(ifname)
        addresses = {(i.resource.netns, i.params['dev'], i.resource.local.compressed) for i in self.items['addresses']}
        routes: dict = {}
        for item in self.items['routes']:
            res = item.resource
            key = (res.netns,) + route_key(res.family, res.dst, res.dst_len, item.params['table'])
            metric = item.params.get('metric')
            routes.setdefault(key, set()).add(ANY_METRIC if metric is None else metric)
        return links, addresses, routes

    def _purge_steps(self) -> list[Item]:
        """Removals of what the declared namespaces hold but the topology does not declare.

        Routes first, then addresses, then links; what goes with a removed
        link (its addresses and routes, a veth's other end) is not listed.
        """
        declared = [i.params['name'] for i in self.items['namespaces'] if i.params['state'] == 'present']
        existing = [netns for netns in declared if netns_exists(netns)]
        if not existing:
            return []
        links, addresses, routes = self._declared()
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
                step = self._purge_link(netns, link, links, set(declared), doomed)
                if step is not None:
                    link_steps.append(step)
        for netns, info in infos.items():
            seen: set = set()
            for addr in info['addresses']:
                key = (netns, addr['dev'], addr['local'])
                if (addr['dev'] in (None, LOOPBACK) or (netns, addr['dev']) in doomed or key in addresses or key in seen
                        or not Gatherer._declared_address(addr)):  # link-local, autoconfigured
                    continue
                seen.add(key)
                options = {'dev': addr['dev'], 'netns': netns, 'address': addr['address'], 'peer': addr['peer'], 'state': 'absent'}
                address_steps.append(Item('addresses', None, make_resource(AddressResource, self.nl, options)))
            for route in info['routes']:
                if ((route['dev'] is not None and (netns, route['dev']) in doomed)
                        or not gatherer._declared_route(netns, route)):  # learned, link-local, multipath
                    continue
                network = ipaddress.ip_network(route['dest'])
                metrics = routes.get((netns, network.version, network.network_address.compressed, network.prefixlen, route['table']))
                if metrics is not None and (ANY_METRIC in metrics or route['metric'] in metrics):
                    continue
                options = {'dest': route['dest'], 'gateway': route['gateway'], 'dev': route['dev'], 'metric': route['metric'],
                           'table': route['table'], 'netns': netns, 'state': 'absent'}
                route_steps.append(Item('routes', None, make_resource(RouteResource, self.nl, options)))
        return route_steps + address_steps + link_steps

    def _purge_link(self, netns: str, link: dict, links: dict, declared: set, doomed: set) -> Item | None:
        name = link['name']
        if (name == LOOPBACK or link.get('fallback') or link['kind'] is None or name in links.get(netns, ())
                or (netns, name) in doomed):
            return None  # lo, the kernel's fallback tunnels, physical NICs, declared, or going anyway
        if link['kind'] == 'veth':
            peer = link['peer']
            if not peer['named'] or peer['name'] is None or peer['netns'] not in declared:
                # Deleting one end deletes the other, outside the declared namespaces.
                self.warnings.append(f"purge: kept veth '{name}' in {where(netns)}: its peer is in "
                                     f"{where(peer['netns']) if peer['named'] else 'a namespace without a name'}, "
                                     'which this topology does not declare; deleting one end would delete the other')
                return None
            if peer['name'] in links.get(peer['netns'], ()):
                self.warnings.append(f"purge: kept veth '{name}' in {where(netns)}: its peer '{peer['name']}' in "
                                     f"{where(peer['netns'])} is used by the topology")
                return None
            doomed.add((peer['netns'], peer['name']))
            options = {'name': name, 'peer': peer['name'], 'netns': netns, 'peer_netns': peer['netns'], 'state': 'absent'}
            resource = make_resource(VethResource, self.nl, options)
            key = 'veths'
        elif 'tunnel' in link:
            options = {'name': name, 'netns': netns, 'mode': link['tunnel']['mode'], 'state': 'absent'}
            resource = make_resource(TunnelResource, self.nl, options)
            key = 'tunnels'
        else:
            resource = UndeclaredLink(self.nl, {'name': name, 'netns': netns, 'state': 'absent'})
            key = 'links'
        doomed.add((netns, name))
        return Item(key, None, resource)

    # ---- failure -----------------------------------------------------------

    def _failed(self, item: Item | None, exc: ResourceError) -> TopologyFailed:
        message = f'{item}: {exc}' if item is not None else str(exc)
        if not self.check_mode:
            undone, failed = self._rollback()
            if undone:
                message += f'. Rolled back what this call had created: {", ".join(undone)}'
            if failed:
                message += f'. Could NOT roll back: {"; ".join(failed)}'
            kept = [f'{i} {c.action}' for i, c in self.done if c.action != CREATE]
            if kept:
                message += f'. Changes to what existed before stay: {", ".join(kept)}'
        return TopologyFailed(message, {'changes': self._summaries(), 'rolled_back': self.rolled_back})

    def _rollback(self) -> tuple[list[str], list[str]]:
        """Undo every creation of this call, newest first.

        Each object is removed on its own, and a namespace this call made goes
        only once nothing else is left in it: a concurrent run may have put
        its own links there meanwhile, and those are not ours to delete.
        """
        undone, failed = [], []
        for item, change in reversed(self.done):
            if change.action != CREATE:
                continue
            try:
                if item.key == 'namespaces':
                    strangers = self._links_in(item.params['name'])
                    if strangers:
                        failed.append(f"{item}: kept, it holds links this call did not make ({', '.join(strangers)})")
                        continue
                item.resource.undo(change)
            except ResourceError as exc:
                failed.append(f'{item}: {exc}')
                continue
            undone.append(str(item))
            self.rolled_back.append(f'{change.kind} {change.name}')
        return undone, failed

    def _links_in(self, netns: str) -> list[str]:
        """Links in netns other than lo and the kernel's fallback tunnel devices."""
        with kernel_call(f"could not list the links of {where(netns)}"):
            names = [msg.get('ifname') for msg in self.nl(netns).links()]
        return sorted(name for name in names if name != 'lo' and name not in FALLBACK_DEVICES)

    # ---- result ------------------------------------------------------------

    def _summaries(self) -> list[dict]:
        return [dict(change.summary(), item=item.label) for item, change in self.done]

    def result(self, diff: bool) -> dict:
        changes = [change for _item, change in self.done]
        by_action = {
            'created': [c for c in changes if c.action == CREATE],
            'updated': [c for c in changes if c.action in (UPDATE, REPLACE)],
            'removed': [c for c in changes if c.action == DELETE],
        }
        out: dict = {'changed': bool(changes), 'changes': self._summaries()}
        for key, found in by_action.items():
            out[key] = [f'{c.kind} {c.name}' for c in found]
        out['counts'] = {key: len(found) for key, found in by_action.items()}
        if diff:
            out['diff'] = [c.diff() for c in changes]
        return out


def run_topology_module() -> None:
    """The whole main() of the topology module."""
    module = new_module(ARGUMENT_SPEC)
    with Netlink() as nl:
        try:
            topology = Topology(nl, module.params, module.check_mode)
            topology.run()
        except TopologyFailed as exc:
            module.fail_json(msg=str(exc), **exc.details)
        except ResourceError as exc:
            module.fail_json(msg=str(exc))
        result = topology.result(module._diff)
    for warning in topology.warnings:
        module.warn(warning)
    module.exit_json(**result)
