# -*- coding: utf-8 -*-
# Copyright (c) linuxnet.tunnels contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""veth pairs, the peer created directly in its own namespace.

The kernel does not report a veth's peer in dumps; the pair is recognised by
IFLA_LINK (the peer's index in its namespace) plus IFLA_LINK_NETNSID (that
namespace's id, relative to the asking socket), and confirmed by the peer's
name and back-pointer.
"""

from __future__ import annotations

import errno
import os

from ansible_collections.linuxnet.tunnels.plugins.module_utils._link import (
    NsidNames,
    check_mtu,
    get_link,
    link_state,
    netns_fd,
    netns_of_nsid,
    set_link,
)
from ansible_collections.linuxnet.tunnels.plugins.module_utils._errors import NamespaceMissing, ResourceError, errno_of, kernel_call, where
from ansible_collections.linuxnet.tunnels.plugins.module_utils._names import check_ifname, check_netns_name, list_netns
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

VETH_MIN_MTU = 68
VETH_MAX_MTU = 65535
VETH_DEFAULT_MTU = 1500  # what the kernel gives a veth created without one


class VethResource(Resource):
    """A veth pair: `name` in netns, `peer` in peer_netns (default: netns)."""

    kind = 'veth'
    argument_spec = {
        'name': {'type': 'str', 'required': True},
        'peer': {'type': 'str', 'required': True},
        'peer_netns': {'type': 'str'},
        'mtu': {'type': 'int'},
        'up': {'type': 'bool', 'default': True},
        'recreate': {'type': 'bool', 'default': False},
        'state': {'type': 'str', 'choices': ['present', 'absent'], 'default': 'present'},
    }

    def __init__(self, nl, params: dict) -> None:
        super().__init__(nl, params)
        self.peer_netns: str | None = params.get('peer_netns') or self.netns

    def validate(self) -> None:
        p = self.params
        check_ifname(p['name'], 'name')
        check_ifname(p['peer'], 'peer')
        if self.netns:
            check_netns_name(self.netns, 'netns')
        if p.get('peer_netns'):
            check_netns_name(p['peer_netns'], 'peer_netns')
        if p['name'] == p['peer'] and self.netns == self.peer_netns:
            raise ResourceError(f"peer: '{p['peer']}' is the same name as the veth itself in {where(self.netns)}; "
                                'both ends can only share a name in different namespaces')
        mtu = p.get('mtu')
        check_mtu(mtu)
        if mtu is not None and not VETH_MIN_MTU <= mtu <= VETH_MAX_MTU:
            raise ResourceError(f'mtu: {mtu} is outside the range {VETH_MIN_MTU}-{VETH_MAX_MTU} that a veth accepts')

    # ---- reading --------------------------------------------------------

    def _end(self, msg, netns: str | None) -> dict:
        state = link_state(msg)
        return {'name': state['ifname'], 'netns': netns, 'index': state['index'], 'mtu': state['mtu'], 'up': state['up']}

    def _find(self) -> tuple[object | None, dict | None, str]:
        """(local message, current pair state, why it is not the wanted pair).

        The pair state is None when nothing is named `name`; the reason is ''
        when the link is exactly the wanted pair.
        """
        p = self.params
        session = self.nl(self.netns)
        with kernel_call(f"could not read link '{p['name']}' in {where(self.netns)}"):
            msg = get_link(session, p['name'])
        if msg is None:
            return None, None, ''
        local = self._end(msg, self.netns)
        kind = link_state(msg)['kind']
        if kind != 'veth':
            local['peer'] = None
            return msg, local, f"'{p['name']}' in {where(self.netns)} is {'a ' + kind if kind else 'a loopback or physical'} link, not a veth"
        peer_index = msg.get('link')
        nsid = msg.get('link_netnsid')
        if nsid is None:
            found, peer_ns = True, self.netns
        else:
            # Ask about the wanted namespace first: usually it is the one.
            with kernel_call(f"could not map the namespace id of the peer of '{p['name']}'"):
                found, peer_ns = netns_of_nsid(session, nsid, [self.peer_netns, None])
        if not found:
            local['peer'] = {'name': None, 'netns': None, 'index': peer_index, 'mtu': None, 'up': None}
            return msg, local, f"the peer of '{p['name']}' is in a namespace without a name (namespace id {nsid})"
        peer = self._peer_msg(peer_ns, peer_index)
        if peer is None:
            local['peer'] = {'name': None, 'netns': peer_ns, 'index': peer_index, 'mtu': None, 'up': None}
            return msg, local, f"the peer of '{p['name']}' (index {peer_index} in {where(peer_ns)}) could not be found"
        local['peer'] = self._end(peer, peer_ns)
        if peer.get('link') != msg['index']:
            return msg, local, f"link {local['peer']['name']} in {where(peer_ns)} does not point back to '{p['name']}'"
        if (peer_ns or None) != (self.peer_netns or None) or local['peer']['name'] != p['peer']:
            return msg, local, (f"'{p['name']}' is paired with '{local['peer']['name']}' in {where(peer_ns)}, "
                                f"not with '{p['peer']}' in {where(self.peer_netns)}")
        return msg, local, ''

    def _peer_msg(self, peer_ns: str | None, index: int | None):
        if index is None:
            return None
        try:
            with kernel_call(f'could not read the peer of {self.params["name"]} in {where(peer_ns)}'):
                peer = self.nl(peer_ns).get_link(index=index)
        except ResourceError as exc:
            if errno_of(exc) == errno.ENODEV:
                return None
            raise
        return peer

    def read(self) -> dict | None:
        return self._find()[1]

    # ---- planning -------------------------------------------------------

    def _wanted(self) -> dict:
        p = self.params
        end = {'mtu': p.get('mtu'), 'up': p['up']}
        return {
            'name': p['name'], 'netns': self.netns, 'index': None, **end,
            'peer': {'name': p['peer'], 'netns': self.peer_netns, 'index': None, **end},
        }

    def _check_peer_name_free(self, current: dict | None) -> None:
        """Creation is atomic, but check mode should predict an EEXIST too."""
        p = self.params
        if not self.nl.readable(self.peer_netns):
            return
        try:
            session = self.nl(self.peer_netns)
        except NamespaceMissing as exc:
            raise ResourceError(f'peer_netns: {exc}') from exc
        with kernel_call(f"could not read link '{p['peer']}' in {where(self.peer_netns)}"):
            other = get_link(session, p['peer'])
        if other is None:
            return
        old_peer = (current or {}).get('peer') or {}
        if old_peer.get('name') == p['peer'] and (old_peer.get('netns') or None) == (self.peer_netns or None):
            return  # the old pair's own peer: it goes when the old pair is deleted
        raise ResourceError(f"peer: a link named '{p['peer']}' already exists in {where(self.peer_netns)} "
                            f"and is not part of the veth '{p['name']}'; choose another peer name or remove that link")

    def wanted(self) -> dict:
        return self._wanted()

    def namespace_options(self) -> list[tuple[str, str | None]]:
        options = [('netns', self.netns)]
        if self.params.get('peer_netns'):
            options.append(('peer_netns', self.params['peer_netns']))
        return options

    def makes(self) -> list[tuple]:
        return [(self.netns, self.params['name']), (self.peer_netns, self.params['peer'])]

    # ---- net_info ---------------------------------------------------------

    @classmethod
    def gather(cls, gatherer, session, space) -> None:
        """Where each veth's peer is: its nsid is relative to this namespace, so map it while its socket is open."""
        # Named namespaces first, as the current one may have a name too.
        others = [name for name in list_netns() if name != space.netns] + ([None] if space.netns is not None else [])
        nsid_names = NsidNames(session, others)  # each candidate asked once, however many veths a hub has
        peers = space.found[cls.kind] = {}
        for msg in space.links:
            nsid = msg.get('link_netnsid')
            if link_state(msg)['kind'] != 'veth' or nsid is None:
                continue
            with kernel_call(f"could not map the namespace id of the peer of '{msg.get('ifname')}' in {where(space.netns)}"):
                peers[msg['index']] = nsid_names.lookup(nsid)

    @classmethod
    def link_facts(cls, gatherer, space, msg) -> dict:
        if link_state(msg)['kind'] != 'veth':
            return {}
        peer_index = msg.get('link')
        found, peer_netns = space.found[cls.kind].get(msg['index'], (True, space.netns))
        return {'peer': {
            'name': gatherer.link_name(peer_netns, peer_index) if found else None,
            'netns': peer_netns,
            'index': peer_index,
            'named': found,  # False: the peer is in a namespace without a name
        }}

    @classmethod
    def claims_link(cls, link: dict) -> bool:
        return link['kind'] == 'veth'

    @classmethod
    def topology_items(cls, gatherer, infos: dict) -> dict:
        """One item per pair; a link item per end when the ends' MTUs differ (the veth module gives both one)."""
        out: dict = {'veths': [], 'links': []}
        seen: set = set()
        # The current namespace comes first: a veth with one end there must be
        # declared from that end (the veth module's peer_netns cannot name it).
        for netns, info in infos.items():
            for link in info['links']:
                if link['kind'] == 'veth' and (netns, link['index']) not in seen:
                    seen.update({(netns, link['index']), (link['peer']['netns'], link['peer']['index'])})
                    cls._pair_items(gatherer, out, netns, link)
        return out

    @staticmethod
    def _pair_items(gatherer, out: dict, netns: str | None, link: dict) -> None:
        peer = link['peer']
        if not peer['named'] or peer['name'] is None:
            gatherer.warnings.append(f"veth '{link['name']}' in {where(netns)} is left out of the topology: its peer is in a "
                                     'namespace without a name (a container?), which the veth module cannot name')
            return
        peer_msg = gatherer.link_msg(peer['netns'], peer['index'])
        peer_link = link_state(peer_msg) if peer_msg is not None else {'up': link['up'], 'mtu': link['mtu']}
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
            # Without mtu the veth module leaves the ends' MTUs alone; a link item per end gives each its own.
            out['links'].append(compact({'name': link['name'], 'netns': netns, 'mtu': link['mtu']}))
            out['links'].append(compact({'name': peer['name'], 'netns': peer['netns'], 'mtu': peer_link['mtu']}))
        item['up'] = primary['up']
        if peer_link['up'] != link['up']:
            gatherer.warnings.append(
                f"veth '{link['name']}' in {where(netns)} is {'up' if link['up'] else 'down'} but its peer '{peer['name']}' in "
                f"{where(peer['netns'])} is {'up' if peer_link['up'] else 'down'}; the veth module brings both ends up or down "
                f"together, so the topology says up: {str(item['up']).lower()} for both")
        out['veths'].append(compact(item))

    def predict_fresh(self, forecast) -> Change | None:
        if self.params['state'] == 'absent':
            return None
        self._check_peer_name_free(None)
        return Change(self.kind, self.name, CREATE, None, self._wanted())

    def remember(self, change: Change, forecast) -> None:
        if change.action == DELETE:
            return
        new = change.action != UPDATE
        for link, end in zip(self.makes(), (change.after, change.after['peer'])):
            mtu = end['mtu']
            if mtu is None and new:
                mtu = VETH_DEFAULT_MTU
            forecast.links[link] = {'kind': 'veth', 'up': end['up'], 'mtu': mtu, 'new': new}

    def plan(self) -> Change | None:
        p = self.params
        if self.params['state'] == 'absent':
            return self._plan_absent()
        try:
            _msg, current, mismatch = self._find()
        except NamespaceMissing as exc:
            raise ResourceError(f'netns: {exc}') from exc
        wanted = self._wanted()
        if current is None:
            try:
                self._check_peer_name_free(None)
                return Change(self.kind, self.name, CREATE, None, wanted)
            except ResourceError:
                # A concurrent run may have made the whole pair between our two reads.
                _msg, current, mismatch = self._find()
                if current is None:
                    raise
        if mismatch:
            if not p['recreate']:
                raise ResourceError(f"name: {mismatch}; set recreate: true to delete it and create the pair "
                                    f"'{p['name']}' <-> '{p['peer']}' ({where(self.peer_netns)})")
            self._check_peer_name_free(current)
            return Change(self.kind, self.name, REPLACE, current, wanted, note=f'{mismatch}: deleted and created again (recreate: true)')
        differs = []
        after = {**current, 'peer': dict(current['peer'])}
        for attr in ('mtu', 'up'):
            if wanted[attr] is None:
                continue
            for end, label in ((after, attr), (after['peer'], f'peer_{attr}')):
                if end[attr] != wanted[attr]:
                    end[attr] = wanted[attr]
                    differs.append(label)
        if not differs:
            return None
        return Change(self.kind, self.name, UPDATE, current, after, differs)

    def _plan_absent(self) -> Change | None:
        try:
            _msg, current, mismatch = self._find()
        except NamespaceMissing:
            return None  # no namespace, no link in it
        if current is None:
            return None
        if current['peer'] is None:
            # Never delete something that is not a veth because of a veth task.
            raise ResourceError(f'name: {mismatch}; refusing to delete it')
        note = f'{mismatch}; deleting it anyway (state: absent)' if mismatch else ''
        return Change(self.kind, self.name, DELETE, current, None, note=note)

    # ---- applying -------------------------------------------------------

    def apply(self, change: Change) -> None:
        if change.action == DELETE:
            self.remove()
        elif change.action == CREATE:
            self._create()
        elif change.action == REPLACE:
            self.remove()
            self._create()
        elif change.action == UPDATE:
            self._update(change)

    def _create(self) -> None:
        p = self.params
        session = self.nl(self.netns)
        peer: dict = {'ifname': p['peer']}
        local: dict = {'ifname': p['name'], 'kind': 'veth', 'peer': peer}
        if p.get('mtu') is not None:
            local['mtu'] = peer['mtu'] = p['mtu']
        if p['up']:
            local['state'] = 'up'
        fd = None
        if (self.peer_netns or None) != (self.netns or None):
            try:
                fd = netns_fd(self.peer_netns)
            except NamespaceMissing as exc:
                raise ResourceError(f'peer_netns: {exc}') from exc
            peer['net_ns_fd'] = fd
        try:
            # One request: the kernel makes both ends or neither (EEXIST leaves nothing behind).
            with kernel_call(f"could not create veth '{p['name']}' in {where(self.netns)} with peer '{p['peer']}' in {where(self.peer_netns)}"):
                session.link('add', **local)
        finally:
            if fd is not None:
                os.close(fd)
        if p['up']:
            # Admin flags cannot travel in the peer part of the create request.
            try:
                with kernel_call(f"could not bring up veth peer '{p['peer']}' in {where(self.peer_netns)}"):
                    peer_session = self.nl(self.peer_netns)
                    peer_msg = get_link(peer_session, p['peer'])
                    if peer_msg is None:
                        raise ResourceError(f"veth peer '{p['peer']}' vanished from {where(self.peer_netns)} right after it was created")
                    set_link(peer_session, peer_msg['index'], up=True)
            except ResourceError:
                self._remove_quietly()
                raise

    def _update(self, change: Change) -> None:
        p = self.params
        wanted_mtu, wanted_up = p.get('mtu'), p['up']
        for end, netns, prefix in ((p['name'], self.netns, ''), (p['peer'], self.peer_netns, 'peer_')):
            mtu = wanted_mtu if f'{prefix}mtu' in change.attributes else None
            up = wanted_up if f'{prefix}up' in change.attributes else None
            if mtu is None and up is None:
                continue
            with kernel_call(f"could not set veth end '{end}' in {where(netns)}"):
                session = self.nl(netns)
                msg = get_link(session, end)
                if msg is None:
                    raise ResourceError(f"veth end '{end}' disappeared from {where(netns)}")
                set_link(session, msg['index'], up=up, mtu=mtu)

    def remove(self) -> None:
        """Delete the pair (deleting one end deletes both); gone already is fine."""
        name = self.params['name']
        try:
            with kernel_call(f"could not delete veth '{name}' in {where(self.netns)}"):
                self.nl(self.netns).link('del', ifname=name)
        except ResourceError as exc:
            if errno_of(exc) != errno.ENODEV:
                raise

    def _remove_quietly(self) -> None:
        try:
            self.nl(self.netns).link('del', ifname=self.params['name'])
        except (NetlinkError, OSError, ResourceError):
            pass
