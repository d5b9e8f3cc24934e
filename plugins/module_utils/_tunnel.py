# -*- coding: utf-8 -*-
# Copyright (c) linuxnet.tunnels contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""L3 tunnels over IPv4: ipip, gre, sit, isatap and vti.

plan() merges the options into the tunnel's current kernel parameters
(_tunnel_params), and the two public views (before, after) decide the
change. apply() always sends the complete parameter set with kind=.
"""

from __future__ import annotations

import errno
import os
import re
import uuid

from ansible_collections.linuxnet.tunnels.plugins.module_utils._errors import ResourceError, error_text, kernel_call, where
from ansible_collections.linuxnet.tunnels.plugins.module_utils._link import get_link, set_link
from ansible_collections.linuxnet.tunnels.plugins.module_utils._names import FALLBACK_DEVICES
from ansible_collections.linuxnet.tunnels.plugins.module_utils._netlink import NetlinkError
from ansible_collections.linuxnet.tunnels.plugins.module_utils._resource import (
    CREATE,
    DELETE,
    REPLACE,
    UPDATE,
    Change,
    Resource,
    compact,
)
from ansible_collections.linuxnet.tunnels.plugins.module_utils._tunnel_params import (
    ENCAP_TYPES,
    MODES,
    VIEW_KEYS,
    check_conflicts,
    collides,
    default_parms,
    describe_endpoints,
    fit_to_mode,
    merge,
    netlink_spec,
    p2p_class,
    parms_from_msg,
    validate_params,
    view,
    view_address,
)

# The name a replace gives the new tunnel until the old one is gone (see _replace_beside).
TEMPORARY_NAME = re.compile(r'lnt[0-9a-f]{8}')


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

    # -- net_info ------------------------------------------------------------

    @classmethod
    def link_facts(cls, gatherer, space, msg) -> dict:
        mode, parms = parms_from_msg(msg)
        if mode is None:
            return {}
        tunnel = view(msg.get('ifname'), mode, parms, space.names.get(parms['link']) if parms['link'] else None, msg['index'])
        del tunnel['name'], tunnel['ifindex']
        return {'tunnel': tunnel}

    @classmethod
    def claims_link(cls, link: dict) -> bool:
        return 'tunnel' in link

    @classmethod
    def topology_items(cls, gatherer, infos: dict) -> dict:
        return {'tunnels': [cls._item(netns, link) for netns, info in infos.items() for link in info['links']
                            if 'tunnel' in link and not link.get('fallback')]}

    @staticmethod
    def _item(netns: str | None, link: dict) -> dict:
        """The tunnel module's options for a tunnel of net_info's view."""
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
        return compact(item)

    # -- check mode in a topology ----------------------------------------------

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
