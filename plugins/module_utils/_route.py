# -*- coding: utf-8 -*-
# Copyright (c) linuxnet.tunnels contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Unicast routes (gateway and/or device), IPv4 and IPv6, in any table.

A route is identified by its destination and table, plus its metric for
IPv6 (the kernel keeps IPv6 routes that differ only in metric side by side).
Routes are found with exact dump filters (dst + dst_len, never a FIB lookup)
and changed with route('replace') when the kernel can do it in place.
"""

from __future__ import annotations

import errno
import ipaddress
import socket

from ansible_collections.linuxnet.tunnels.plugins.module_utils._address import FAMILY, FAMILY_NAME, parse_ip
from ansible_collections.linuxnet.tunnels.plugins.module_utils._link import get_link
from ansible_collections.linuxnet.tunnels.plugins.module_utils._netlink import (
    NetlinkError,
    ResourceError,
    check_ifname,
    errno_of,
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

RT_TABLE_MAIN = 254
RTN_UNICAST = 1
RT_SCOPE_LINK = 253
RT_SCOPE_NOWHERE = 255  # in a delete request: any scope
U32_MAX = 2 ** 32 - 1
# The metric the kernel gives a route added without one.
DEFAULT_METRIC = {socket.AF_INET: 0, socket.AF_INET6: 1024}


class RouteResource(Resource):
    """One unicast route: dest via gateway and/or dev, with metric, in a table."""

    kind = 'route'
    argument_spec = {
        'dest': {'type': 'str', 'required': True},
        'gateway': {'type': 'str'},
        'dev': {'type': 'str'},
        'metric': {'type': 'int'},
        'table': {'type': 'int', 'default': RT_TABLE_MAIN},
        'state': {'type': 'str', 'choices': ['present', 'absent'], 'default': 'present'},
    }
    module_kwargs = {'required_if': [('state', 'present', ('gateway', 'dev'), True)]}

    def __init__(self, nl, params: dict) -> None:
        super().__init__(nl, params)
        self.family = 0
        self.dst: str | None = None  # network address; None for a default route
        self.dst_len = 0
        self.gateway: str | None = None

    def display_name(self) -> str:
        table = self.params.get('table') or RT_TABLE_MAIN
        return self.params['dest'] + (f' table {table}' if table != RT_TABLE_MAIN else '')

    def destination(self) -> tuple:
        """(netns, IP version, network address, prefix length, table): the routes to one place."""
        zero = '0.0.0.0' if self.family == socket.AF_INET else '::'
        network = ipaddress.ip_network(f'{self.dst or zero}/{self.dst_len}')
        return (self.netns, network.version, network.network_address.compressed, network.prefixlen, self.params['table'])

    def key(self) -> tuple:
        # IPv6 keeps routes that differ only in metric side by side; IPv4 does not for the route module.
        metric = (self.params.get('metric') or DEFAULT_METRIC[self.family]) if self.family == socket.AF_INET6 else None
        return self.destination() + (metric,)

    def uses(self) -> list[tuple]:
        return [(self.netns, self.params['dev'])] if self.params.get('dev') else []

    def wanted(self) -> dict:
        self._parsed()
        return self._wanted(None)

    # ---- input ----------------------------------------------------------

    def validate(self) -> None:
        p = self.params
        gw_family = None
        if p.get('gateway'):
            gateway, _prefix = parse_ip(p['gateway'], 'gateway', with_prefix=False)
            self.gateway = gateway.compressed
            gw_family = FAMILY[gateway.version]
        dest = str(p['dest']).strip()
        if dest == 'default':
            if gw_family is None:
                raise ResourceError("dest: 'default' does not say whether the route is IPv4 or IPv6; give a gateway, "
                                    'or write 0.0.0.0/0 or ::/0')
            self.family, self.dst, self.dst_len = gw_family, None, 0
        else:
            if '%' in dest:
                raise ResourceError(f"dest: '{p['dest']}' is not a valid IPv4 or IPv6 network")
            try:
                network = ipaddress.ip_network(dest, strict=True)
            except ValueError as exc:
                raise ResourceError(f"dest: '{p['dest']}' is not a valid destination (an IPv4 or IPv6 network such as "
                                    f"10.20.0.0/16, or 'default'): {exc}") from exc
            self.family = FAMILY[network.version]
            self.dst_len = network.prefixlen
            self.dst = network.network_address.compressed if network.prefixlen else None
            if gw_family is not None and gw_family != self.family:
                raise ResourceError(f"gateway: '{p['gateway']}' is {FAMILY_NAME[gw_family]} but dest '{p['dest']}' is "
                                    f'{FAMILY_NAME[self.family]}; both must be of one family')
        if p.get('dev'):
            check_ifname(p['dev'], 'dev')
        if p.get('metric') is not None and not 0 <= p['metric'] <= U32_MAX:
            raise ResourceError(f"metric: {p['metric']} is out of range (0-{U32_MAX})")
        table = p.get('table')
        if table is None:
            p['table'] = RT_TABLE_MAIN
        elif not 1 <= table <= U32_MAX:
            raise ResourceError(f'table: {table} is out of range (1-{U32_MAX}; the main table is 254)')
        if p.get('state', 'present') == 'present' and not (p.get('gateway') or p.get('dev')):
            raise ResourceError('gateway or dev is required for a route (a gateway, a device or both)')

    def _parsed(self) -> None:
        if not self.family:
            self.validate()

    # ---- reading --------------------------------------------------------

    def _dest_text(self) -> str:
        if self.dst_len == 0:
            return 'default'
        return f'{self.dst}/{self.dst_len}'

    def _public(self, gateway: str | None, dev: str | None, metric: int) -> dict:
        return {
            'dest': self._dest_text(),
            'family': FAMILY_NAME[self.family],
            'gateway': gateway,
            'dev': dev,
            'metric': metric,
            'table': self.params['table'],
            'netns': self.netns,
        }

    def _candidates(self) -> list[dict]:
        """Unicast routes with exactly our destination in our table."""
        session = self.nl(self.netns)
        with kernel_call(f'could not read the routes to {self._dest_text()} in {where(self.netns)}'):
            dump = session.routes(self.family, self.params['table'])
            out = []
            names: dict = {}
            for msg in dump:
                # The kernel filters by table only where it checks dump requests strictly (4.20+).
                table = msg.get('RTA_TABLE') or msg['table']  # the header field cannot hold tables above 255
                dst = msg.get('dst')
                if (msg['family'] != self.family or msg['dst_len'] != self.dst_len or table != self.params['table']
                        or msg['type'] != RTN_UNICAST):
                    continue
                if self.dst is not None and (dst is None or ipaddress.ip_address(dst).compressed != self.dst):
                    continue
                oif = msg.get('oif')
                if oif is not None and oif not in names:
                    names[oif] = session.get_link(index=oif).get('ifname')
                gateway = msg.get('gateway')
                out.append({
                    'gateway': ipaddress.ip_address(gateway).compressed if gateway else None,
                    'dev': names.get(oif),
                    'oif': oif,
                    'metric': msg.get('priority') or 0,
                    'multipath': msg.get('multipath') is not None,
                    'scope': msg['scope'],
                })
        return out

    def _select(self, candidates: list[dict]) -> dict | None:
        """The route this task is about, among those to the same destination and table."""
        metric = self.params.get('metric')
        if metric is not None:
            exact = [c for c in candidates if c['metric'] == metric]
            if exact:
                return exact[0]
            # IPv6: another metric is another route. IPv4: the same route with a new metric.
            if self.family == socket.AF_INET6 or not candidates:
                return None
            if len(candidates) == 1:
                return candidates[0]
        elif len(candidates) <= 1:
            return candidates[0] if candidates else None
        else:
            matching = [c for c in candidates if not self._differs(c)]
            if matching:
                return matching[0]
        metrics = ', '.join(str(c['metric']) for c in candidates)
        raise ResourceError(f'dest: there are {len(candidates)} routes to {self._dest_text()} in table {self.params["table"]} '
                            f'of {where(self.netns)} (metrics {metrics}); set metric to say which one this task is about')

    def _differs(self, route: dict) -> list[str]:
        p = self.params
        differs = []
        if route['multipath'] or route['gateway'] != self.gateway:
            differs.append('gateway')
        if p.get('dev') and route['dev'] != p['dev']:
            differs.append('dev')
        if p.get('metric') is not None and route['metric'] != p['metric']:
            differs.append('metric')
        return differs

    def read(self) -> dict | None:
        self._parsed()
        if self.params['state'] == 'absent':
            found = self._matching_absent(self._candidates())
            route = found[0] if found else None
        else:
            route = self._select(self._candidates())
        return None if route is None else self._public(route['gateway'], route['dev'], route['metric'])

    def _matching_absent(self, candidates: list[dict]) -> list[dict]:
        """For state=absent: every route to dest in table that matches the options given."""
        p = self.params
        return [c for c in candidates
                if (p.get('metric') is None or c['metric'] == p['metric'])
                and (self.gateway is None or c['gateway'] == self.gateway)
                and (not p.get('dev') or c['dev'] == p['dev'])]

    # ---- planning -------------------------------------------------------

    def _wanted(self, current: dict | None) -> dict:
        p = self.params
        metric = p.get('metric')
        if metric is None:
            metric = current['metric'] if current else DEFAULT_METRIC[self.family]
        return self._public(self.gateway, p.get('dev') or (current or {}).get('dev'), metric)

    def plan_state(self) -> Change | None:
        self._parsed()
        p = self.params
        if p['state'] == 'absent':
            found = self._matching_absent(self._candidates())
            if not found:
                return None
            before = self._public(found[0]['gateway'], found[0]['dev'], found[0]['metric'])
            note = f'{len(found)} routes match: all are deleted' if len(found) > 1 else ''
            return Change(self.kind, self.name, DELETE, before, None, note=note)
        if p.get('dev'):
            self._dev_index()  # a missing dev is an error in check mode too
        route = self._select(self._candidates())
        if route is None:
            return Change(self.kind, self.name, CREATE, None, self._wanted(None))
        differs = self._differs(route)
        if not differs:
            return None
        before = self._public(route['gateway'], route['dev'], route['metric'])
        after = self._wanted(route)
        if not p.get('dev') and 'gateway' in differs:
            after['dev'] = None  # the kernel picks the device that reaches the new gateway
        if 'metric' in differs:
            # Only IPv4 gets here: the kernel keys routes by metric, so replace would add a second one.
            note = (f"metric changes from {route['metric']} to {p['metric']}; the kernel keeps IPv4 routes with different metrics "
                    'side by side, so the new route is added and the old one deleted')
            return Change(self.kind, self.name, REPLACE, before, after, differs, note)
        return Change(self.kind, self.name, UPDATE, before, after, differs)

    # ---- applying -------------------------------------------------------

    def _dev_index(self) -> int:
        dev = self.params['dev']
        with kernel_call(f"could not read link '{dev}' in {where(self.netns)}"):
            msg = get_link(self.nl(self.netns), dev)
        if msg is None:
            raise ResourceError(f"dev: link '{dev}' does not exist in {where(self.netns)}")
        return msg['index']

    def _request(self, metric: int | None) -> dict:
        request: dict = {'family': self.family, 'dst_len': self.dst_len, 'table': self.params['table'], 'type': 'unicast'}
        request['dst'] = self.dst if self.dst is not None else ('0.0.0.0' if self.family == socket.AF_INET else '::')
        if metric is not None:
            request['priority'] = metric
        return request

    def _write(self, command: str, metric: int | None) -> None:
        p = self.params
        request = self._request(metric)
        if self.gateway:
            request['gateway'] = self.gateway
        elif self.family == socket.AF_INET:
            request['scope'] = RT_SCOPE_LINK  # as iproute2 does for a route without gateway
        if p.get('dev'):
            request['oif'] = self._dev_index()
        via = ' '.join(part for part in (f'via {self.gateway}' if self.gateway else '', f"dev {p['dev']}" if p.get('dev') else '') if part)
        action = f"could not {'add' if command == 'add' else 'change'} the route to {self._dest_text()} {via} in {where(self.netns)}"
        try:
            with kernel_call(action):
                self.nl(self.netns).route(command, **request)
        except ResourceError as exc:
            if errno_of(exc) == errno.ENETUNREACH and self.gateway:
                raise ResourceError(f'{exc}; gateway {self.gateway} must be on a connected subnet of a link that is up') from exc
            raise

    def apply(self, change: Change) -> None:
        self._parsed()
        p = self.params
        if change.action == DELETE:
            self.remove()
        elif change.action == CREATE:
            self._write('add', p.get('metric'))
        elif change.action == UPDATE:
            # Same identity (dest, table, metric): the kernel swaps the route in place.
            self._write('replace', change.before['metric'])
        elif change.action == REPLACE:
            self._write('add', p['metric'])
            try:
                self._delete(change.before)
            except ResourceError:
                self._delete_quietly(self._public(self.gateway, None, p['metric']))
                raise

    def _delete(self, route: dict) -> None:
        request = self._request(route['metric'])
        # pyroute2 would send scope universe, and the kernel only deletes a route of the scope asked for.
        request['scope'] = route.get('scope', RT_SCOPE_NOWHERE)
        if route.get('gateway'):
            request['gateway'] = route['gateway']
        try:
            with kernel_call(f"could not delete the route to {self._dest_text()} (metric {route['metric']}) in {where(self.netns)}"):
                self.nl(self.netns).route('del', **request)
        except ResourceError as exc:
            if errno_of(exc) != errno.ESRCH:  # gone already
                raise

    def _delete_quietly(self, route: dict) -> None:
        try:
            self._delete(route)
        except (ResourceError, NetlinkError, OSError):
            pass

    def remove(self) -> None:
        """Delete the routes this task is about (all matches of dest, table and the options given)."""
        self._parsed()
        for route in self._matching_absent(self._candidates()):
            self._delete(route)
