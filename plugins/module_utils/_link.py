# -*- coding: utf-8 -*-
# Copyright (c) linuxnet.tunnels contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Existing links: look-up, admin state and MTU.

get_link(), link_state() and set_link() are the building blocks the veth,
tunnel and topology code reuse; LinkResource is the `link` module's resource.
"""

from __future__ import annotations

import errno
import os

from ansible_collections.linuxnet.tunnels.plugins.module_utils._errors import NamespaceMissing, ResourceError, kernel_call, where
from ansible_collections.linuxnet.tunnels.plugins.module_utils._names import FALLBACK_DEVICES, NETNS_RUN_DIR, check_ifname, list_netns
from ansible_collections.linuxnet.tunnels.plugins.module_utils._netlink import IFF_UP, NetlinkError
from ansible_collections.linuxnet.tunnels.plugins.module_utils._resource import (
    UPDATE,
    Change,
    Resource,
    changed_attributes,
    compact,
)

NSID_NOT_ASSIGNED = 0xFFFFFFFF  # NETNSA_NSID_NOT_ASSIGNED (-1) read as unsigned


def get_link(session, ifname: str):
    """The link message for `ifname` in the session's namespace, or None if there is none.

    One RTM_GETLINK by name; ENODEV means absent. Other refusals raise
    NetlinkError: wrap the call in kernel_call() for a readable message.
    """
    try:
        msg = session.get_link(ifname)
    except NetlinkError as exc:
        if exc.code == errno.ENODEV:
            return None
        raise
    return msg


def link_state(msg) -> dict:
    """The comparable state of a link message.

    Returns ifname, index, kind (None for lo and physical NICs), up (the
    administrative IFF_UP flag, never the carrier), mtu and operstate (the
    kernel's operational state, for information only: a veth whose peer is
    down is admin up and operationally DOWN).
    """
    return {
        'ifname': msg.get('ifname'),
        'index': msg['index'],
        'kind': msg.get(('linkinfo', 'kind')),
        'up': bool(msg['flags'] & IFF_UP),
        'mtu': msg.get('mtu'),
        'operstate': msg.get('operstate'),
    }


def set_link(session, index: int, up: bool | None = None, mtu: int | None = None) -> None:
    """Set the admin state and/or MTU of link `index` in the session's namespace.

    None leaves that attribute alone; nothing is sent when both are None.
    The MTU is set before bringing a link up and after bringing it down, so
    the link never carries traffic with the old MTU. Raises NetlinkError
    (wrap in kernel_call() for a readable message): EINVAL with the kernel's
    extack text when the MTU is outside the device's range.
    """
    if mtu is not None and up is not False:
        session.change_link(index, mtu=mtu)
    if up is not None:
        session.change_link(index, up=up)
    if mtu is not None and up is False:
        session.change_link(index, mtu=mtu)


def netns_fd(netns: str | None) -> int:
    """An open fd on a named namespace (None: the one this process runs in).

    The caller closes it. A missing namespace raises NamespaceMissing.
    """
    path = '/proc/self/ns/net' if not netns else os.path.join(NETNS_RUN_DIR, netns)
    try:
        return os.open(path, os.O_RDONLY)
    except FileNotFoundError as exc:
        raise NamespaceMissing(str(netns)) from exc


def nsid_of(session, netns: str | None) -> int | None:
    """The id the session's namespace gives `netns` (what IFLA_LINK_NETNSID reports), or None."""
    fd = netns_fd(netns)
    try:
        nsid = session.netnsid(fd)
    finally:
        os.close(fd)
    return None if nsid is None or nsid in (NSID_NOT_ASSIGNED, -1) else nsid


def netns_of_nsid(session, nsid: int, candidates: list[str | None]) -> tuple[bool, str | None]:
    """Map a link's IFLA_LINK_NETNSID (relative to the session's namespace) to a name.

    Tries `candidates` first (None is the namespace this process runs in),
    then every named namespace. Returns (found, name); a namespace without a
    name in /run/netns (a container's, say) gives (False, None).
    """
    return NsidNames(session, list(candidates) + list_netns()).lookup(nsid)


class NsidNames:
    """netns_of_nsid() for many ids of one session: each candidate namespace is asked at most once.

    A hub with a veth to each of N namespaces would otherwise ask about N/2 of
    them per veth: N*N/2 requests.
    """

    def __init__(self, session, candidates: list[str | None]) -> None:
        self._session = session
        self._unasked = iter(dict.fromkeys(candidates))
        self._names: dict[int, str | None] = {}

    def lookup(self, nsid: int) -> tuple[bool, str | None]:
        while nsid not in self._names:
            try:
                name = next(self._unasked)
            except StopIteration:
                return False, None
            try:
                found = nsid_of(self._session, name)
            except (NamespaceMissing, NetlinkError, OSError):
                continue  # vanished or unreadable: not the one
            if found is not None:
                self._names.setdefault(found, name)
        return True, self._names[nsid]


class LinkResource(Resource):
    """An existing link (lo, a NIC, a link another task made): admin state and MTU."""

    kind = 'link'
    argument_spec = {
        'name': {'type': 'str', 'required': True},
        'state': {'type': 'str', 'choices': ['up', 'down']},
        'mtu': {'type': 'int'},
    }

    def validate(self) -> None:
        check_ifname(self.params['name'], 'name')
        check_mtu(self.params.get('mtu'))

    def _msg(self):
        with kernel_call(f"could not read link '{self.params['name']}' in {where(self.netns)}"):
            return get_link(self.nl(self.netns), self.params['name'])

    def read(self) -> dict | None:
        msg = self._msg()
        return None if msg is None else self._public(msg)

    def _public(self, msg) -> dict:
        state = link_state(msg)
        return {
            'name': state['ifname'],
            'netns': self.netns,
            'index': state['index'],
            'kind': state['kind'],
            'up': state['up'],
            'mtu': state['mtu'],
            'operstate': state['operstate'],
        }

    is_setting = True
    uses_option = 'name'
    PREDICTED_UNKNOWN = ('index', 'operstate')

    def uses(self) -> list[tuple]:
        return [(self.netns, self.params['name'])]

    @classmethod
    def link_facts(cls, gatherer, space, msg) -> dict:
        state = link_state(msg)
        out = {key: state[key] for key in ('index', 'kind', 'up', 'mtu', 'operstate')}
        out['name'] = state['ifname']
        if state['ifname'] in FALLBACK_DEVICES:
            out['fallback'] = True
        return out

    @classmethod
    def topology_items(cls, gatherer, infos: dict) -> dict:
        items = [compact({'name': link['name'], 'netns': netns, 'state': 'up' if link['up'] else 'down', 'mtu': link['mtu']})
                 for netns, info in infos.items() for link in info['links']
                 if not link.get('fallback') and not gatherer.claimed(link)]  # fallback devices: the kernel's own
        return {'links': items}

    def _wanted(self) -> dict:
        state = self.params.get('state')
        return {'up': None if state is None else state == 'up', 'mtu': self.params.get('mtu')}

    def _change(self, current: dict) -> Change | None:
        wanted = self._wanted()
        differs = changed_attributes(current, wanted)
        if not differs:
            return None
        after = dict(current, **{key: wanted[key] for key in differs})
        return Change(self.kind, self.name, UPDATE, current, after, differs)

    def plan(self) -> Change | None:
        name = self.params['name']
        msg = self._msg()
        if msg is None:
            raise ResourceError(
                f"name: link '{name}' does not exist in {where(self.netns)}; this module only changes existing links "
                '(create veth pairs with linuxnet.tunnels.veth and tunnels with linuxnet.tunnels.tunnel)')
        check_mtu_range(msg, self._wanted()['mtu'], name)
        return self._change(self._public(msg))

    def predict(self, forecast) -> Change | None:
        known = forecast.links.get((self.netns, self.params['name']))
        if known is None:
            if forecast.pending(self.netns):
                return self.predict_fresh(forecast)
            return self.plan()  # a link that exists and that no earlier item touches
        current = {'name': self.params['name'], 'netns': self.netns, 'index': known.get('index'), 'kind': known.get('kind'),
                   'up': known.get('up'), 'mtu': known.get('mtu'), 'operstate': None}
        change = self._change(current)
        if change is not None and 'mtu' in change.attributes and current['mtu'] is None:
            change.uncertain = 'the kernel picks the MTU of a link made without one, so it is not known yet'
        return change

    def predict_fresh(self, forecast) -> Change | None:
        """A fallback device of a namespace this call makes: its state before is not known."""
        wanted = self._wanted()
        if all(value is None for value in wanted.values()):
            return None
        after = {'name': self.params['name'], 'netns': self.netns, 'index': None, 'kind': None,
                 'up': wanted['up'], 'mtu': wanted['mtu'], 'operstate': None}
        return Change(self.kind, self.name, UPDATE, None, after, [k for k, v in wanted.items() if v is not None],
                      uncertain='the namespace is made by this task, so the state this device starts with is not known yet')

    def remember(self, change: Change, forecast) -> None:
        known = forecast.links.setdefault((self.netns, self.params['name']), {'new': False})
        known.update({key: change.after.get(key) for key in ('up', 'mtu')})

    def apply(self, change: Change) -> None:
        name = self.params['name']
        up = change.after['up'] if 'up' in change.attributes else None
        mtu = change.after['mtu'] if 'mtu' in change.attributes else None
        session = self.nl(self.netns)
        msg = self._msg()  # again: the plan may predate the namespace (topology)
        if msg is None:
            raise ResourceError(f"name: link '{name}' does not exist in {where(self.netns)}")
        try:
            with kernel_call(f"could not set link '{name}' in {where(self.netns)}"):
                set_link(session, msg['index'], up=up, mtu=mtu)
        except ResourceError:
            # Put back whatever part of the change went through.
            before = change.before
            try:
                set_link(session, msg['index'], up=before['up'] if up is not None else None,
                         mtu=before['mtu'] if mtu is not None else None)
            except (NetlinkError, OSError):
                pass
            raise


MTU_MAX = 2 ** 31 - 1


def check_mtu(mtu: int | None, option: str = 'mtu') -> None:
    """Refuse MTUs no device can take, before asking the kernel."""
    if mtu is not None and not 0 < mtu <= MTU_MAX:
        raise ResourceError(f'{option}: {mtu} is not a valid MTU (a positive integer)')


def check_mtu_range(msg, mtu: int | None, ifname: str, option: str = 'mtu') -> None:
    """Refuse an MTU outside the limits the link reports, so check mode predicts the failure."""
    if mtu is None:
        return
    low, high = msg.get('min_mtu'), msg.get('max_mtu')
    if (low and mtu < low) or (high and mtu > high):
        raise ResourceError(f"{option}: {mtu} is outside the range {low or 0}-{high or MTU_MAX} that link '{ifname}' accepts")
