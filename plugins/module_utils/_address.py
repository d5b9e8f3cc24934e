# -*- coding: utf-8 -*-
# Copyright (c) linuxnet.tunnels contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""IPv4 and IPv6 addresses on a link, point-to-point ones included.

An address is identified by its local address on the link: 10.0.0.1/24 and
10.0.0.1/16 are the same address with a different prefix, and changing the
prefix or the peer replaces it (the kernel would otherwise keep both).
"""

from __future__ import annotations

import errno
import ipaddress
import socket

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
    Change,
    Resource,
)

IFA_F_NODAD = 0x02  # include/uapi/linux/if_addr.h
FAMILY = {4: socket.AF_INET, 6: socket.AF_INET6}
FAMILY_NAME = {socket.AF_INET: 'ipv4', socket.AF_INET6: 'ipv6'}


def parse_ip(value: str, option: str, with_prefix: bool = True) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int | None]:
    """(address, prefix length or None when not written) from '10.0.0.1/24' or 'fd00::1'."""
    text = str(value).strip()
    if not text or '%' in text or (not with_prefix and '/' in text):
        raise ResourceError(f"{option}: '{value}' is not a valid IPv4 or IPv6 address{' (with an optional /prefix)' if with_prefix else ''}")
    try:
        iface = ipaddress.ip_interface(text)
    except ValueError as exc:
        raise ResourceError(f"{option}: '{value}' is not a valid IPv4 or IPv6 address"
                            f"{' (with an optional /prefix)' if with_prefix else ''}: {exc}") from exc
    return iface.ip, (iface.network.prefixlen if '/' in text else None)


class AddressResource(Resource):
    """One address (local, prefix length, optional peer) on one link."""

    kind = 'address'
    argument_spec = {
        'dev': {'type': 'str', 'required': True},
        'address': {'type': 'str', 'required': True},
        'peer': {'type': 'str'},
        'state': {'type': 'str', 'choices': ['present', 'absent'], 'default': 'present'},
    }

    def __init__(self, nl, params: dict) -> None:
        super().__init__(nl, params)
        self.local = None
        self.peer = None
        self.prefixlen = 0
        self.family = 0
        # (link index, addresses with our local one) as the last plan read them.
        self._seen: tuple | None = None

    def display_name(self) -> str:
        return f"{self.params['address']} dev {self.params['dev']}"

    def key(self) -> tuple:
        return (self.netns, self.params['dev'], self.local.compressed)

    def uses(self) -> list[tuple]:
        return [(self.netns, self.params['dev'])]

    def wanted(self) -> dict:
        self._parsed()
        return self._wanted()

    def validate(self) -> None:
        check_ifname(self.params['dev'], 'dev')
        local, local_len = parse_ip(self.params['address'], 'address')
        peer, peer_len = None, None
        if self.params.get('peer'):
            peer, peer_len = parse_ip(self.params['peer'], 'peer')
            if peer.version != local.version:
                raise ResourceError(f"peer: '{self.params['peer']}' is IPv{peer.version} but address "
                                    f"'{self.params['address']}' is IPv{local.version}; both must be of one family")
            if local_len is not None and peer_len is not None and local_len != peer_len:
                raise ResourceError(f'address and peer give different prefix lengths (/{local_len} and /{peer_len}); give it once')
        self.local, self.peer = local, peer
        # iproute2's rule: the peer's prefix, else the address's, else a host prefix.
        self.prefixlen = next(n for n in (peer_len, local_len, local.max_prefixlen) if n is not None)
        self.family = FAMILY[local.version]

    # ---- reading --------------------------------------------------------

    def _public(self, local: str, prefixlen: int, peer: str | None, family: int) -> dict:
        return {
            'dev': self.params['dev'],
            'netns': self.netns,
            'address': f'{local}/{prefixlen}',
            'local': local,
            'prefixlen': prefixlen,
            'peer': peer,
            'family': FAMILY_NAME.get(family, str(family)),
        }

    def _wanted(self) -> dict:
        return self._public(self.local.compressed, self.prefixlen, self.peer.compressed if self.peer else None, self.family)

    def _link_index(self) -> int | None:
        dev = self.params['dev']
        with kernel_call(f"could not read link '{dev}' in {where(self.netns)}"):
            msg = get_link(self.nl(self.netns), dev)
        return None if msg is None else msg['index']

    def _same_local(self, index: int) -> list[dict]:
        """Every address on the link whose local address is ours, as kernel messages reduced to dicts.

        The dump is filtered by index only: a filter on `address` matches the
        peer of point-to-point addresses (IFA_ADDRESS).
        """
        found = []
        with kernel_call(f"could not read the addresses of '{self.params['dev']}' in {where(self.netns)}"):
            dump = self.nl(self.netns).addresses(index, self.family)
        for msg in dump:
            if msg['family'] != self.family or msg.get('index', index) != index:
                continue
            raw_local = msg.get('local') or msg.get('address')
            raw_address = msg.get('address')
            if raw_local is None:
                continue
            local = ipaddress.ip_address(raw_local).compressed
            if local != self.local.compressed:
                continue
            peer = ipaddress.ip_address(raw_address).compressed if raw_address and raw_address != raw_local else None
            found.append({'local': local, 'prefixlen': msg['prefixlen'], 'peer': peer,
                          'raw_local': msg.get('local'), 'raw_address': raw_address})
        return found

    def _parsed(self) -> None:
        if self.local is None:
            self.validate()

    def read(self) -> dict | None:
        self._parsed()
        index = self._link_index()
        if index is None:
            return None
        found = self._same_local(index)
        if not found:
            return None
        wanted = (self.prefixlen, self.peer.compressed if self.peer else None)
        best = next((f for f in found if (f['prefixlen'], f['peer']) == wanted), found[0])
        return self._public(best['local'], best['prefixlen'], best['peer'], self.family)

    # ---- planning -------------------------------------------------------

    def plan_state(self) -> Change | None:
        self._parsed()
        dev = self.params['dev']
        present = self.params['state'] == 'present'
        self._seen = None
        index = self._link_index()
        if index is None:
            if present:
                raise ResourceError(f"dev: link '{dev}' does not exist in {where(self.netns)}")
            return None  # no link, no address on it
        found = self._same_local(index)
        self._seen = (index, found)
        wanted = self._wanted()
        if not present:
            if not found:
                return None
            before = self._public(found[0]['local'], found[0]['prefixlen'], found[0]['peer'], self.family)
            note = ''
            if len(found) > 1:
                note = f"{len(found)} addresses with local address {self.local.compressed} on '{dev}': all are deleted"
            return Change(self.kind, self.name, DELETE, before, None, note=note)
        exact = [f for f in found if (f['prefixlen'], f['peer']) == (wanted['prefixlen'], wanted['peer'])]
        others = [f for f in found if f not in exact]
        if exact and not others:
            return None
        if not found:
            return Change(self.kind, self.name, CREATE, None, wanted)
        old = others[0]
        before = self._public(old['local'], old['prefixlen'], old['peer'], self.family)
        attributes = [key for key in ('prefixlen', 'peer') if before[key] != wanted[key]]
        described = ', '.join(self._describe(f) for f in others)
        outcome = 'so it is deleted' if exact else 'so it is deleted and the new one added'
        note = (f'{described} on {dev} has the same local address; the kernel cannot change the prefix length or peer of an address '
                f'in place (it would keep both), {outcome}')
        return Change(self.kind, self.name, REPLACE, before, wanted, attributes, note)

    @staticmethod
    def _describe(found: dict) -> str:
        text = f"{found['local']}/{found['prefixlen']}"
        return f"{text} peer {found['peer']}" if found['peer'] else text

    # ---- applying -------------------------------------------------------

    def apply(self, change: Change) -> None:
        self._parsed()
        if change.action == DELETE:
            self.remove()
            return
        # The plan has just read the link and its addresses (converge() plans right before it applies).
        index, current = self._seen
        removed = []
        wanted_key = (self.prefixlen, self.peer.compressed if self.peer else None)
        try:
            # Delete first: IPv6 refuses a second address with the same local one.
            for found in current:
                if (found['prefixlen'], found['peer']) != wanted_key:
                    self._delete(index, found)
                    removed.append(found)
            if removed:
                current = self._same_local(index)
            if not any((f['prefixlen'], f['peer']) == wanted_key for f in current):
                self._add(index)
        except ResourceError:
            for found in removed:
                self._restore(index, found)
            raise

    def _add(self, index: int) -> None:
        request: dict = {'index': index, 'family': self.family, 'prefixlen': self.prefixlen}
        if self.peer is not None:
            request.update(local=self.local.compressed, address=self.peer.compressed)
        else:
            request.update(address=self.local.compressed)
            if self.family == socket.AF_INET:
                request['local'] = self.local.compressed
        if self.family == socket.AF_INET6:
            # No duplicate address detection: usable at once, even before carrier.
            request['flags'] = IFA_F_NODAD
        try:
            with kernel_call(f"could not add address {self._describe(self._wanted_found())} to '{self.params['dev']}' in {where(self.netns)}"):
                self.nl(self.netns).change_address('add', **request)
        except ResourceError as exc:
            if self.family == socket.AF_INET6 and errno_of(exc) == errno.EOPNOTSUPP:
                raise ResourceError(f'{exc}; is IPv6 available in this kernel (the ipv6 module loaded, not disabled)?') from exc
            raise

    def _wanted_found(self) -> dict:
        return {'local': self.local.compressed, 'prefixlen': self.prefixlen, 'peer': self.peer.compressed if self.peer else None}

    def _delete(self, index: int, found: dict) -> None:
        # Exactly what the dump reported: local and peer identify a p2p address.
        request: dict = {'index': index, 'family': self.family, 'prefixlen': found['prefixlen']}
        if found['raw_local'] is not None:
            request['local'] = found['raw_local']
        if found['raw_address'] is not None:
            request['address'] = found['raw_address']
        try:
            with kernel_call(f"could not delete address {self._describe(found)} from '{self.params['dev']}' in {where(self.netns)}"):
                self.nl(self.netns).change_address('del', **request)
        except ResourceError as exc:
            if errno_of(exc) != errno.EADDRNOTAVAIL:  # gone already
                raise

    def _restore(self, index: int, found: dict) -> None:
        request: dict = {'index': index, 'family': self.family, 'prefixlen': found['prefixlen']}
        if found['raw_local'] is not None:
            request['local'] = found['raw_local']
        if found['raw_address'] is not None:
            request['address'] = found['raw_address']
        if self.family == socket.AF_INET6:
            request['flags'] = IFA_F_NODAD
        try:
            self.nl(self.netns).change_address('add', **request)
        except (NetlinkError, OSError):
            pass  # best effort: the original error is what the user needs

    def remove(self) -> None:
        """Delete every address with our local address on the link."""
        self._parsed()
        index = self._link_index()
        if index is None:
            return
        for found in self._same_local(index):
            self._delete(index, found)
