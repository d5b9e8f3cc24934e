# -*- coding: utf-8 -*-
# Copyright (c) linuxnet.tunnels contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Netlink sessions: one socket per namespace for the length of a module run.

Every netlink request goes through here, so that pyroute2's pitfalls
(netns auto-creation, silent kwargs, unreadable errors) are handled once.
Errors live in _errors, names in _names, entering a namespace in _enter.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
import traceback
from collections import OrderedDict

from ansible_collections.linuxnet.tunnels.plugins.module_utils._enter import netlink_fd
from ansible_collections.linuxnet.tunnels.plugins.module_utils._errors import kernel_call, register_kernel_error, where
from ansible_collections.linuxnet.tunnels.plugins.module_utils._names import netns_exists, netns_placeholder

try:
    from pyroute2 import IPRoute, NetlinkError
    from pyroute2.netlink import (NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_EXCL, NLM_F_REPLACE,
                                  NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR)
    from pyroute2.netlink.rtnl import (RTM_DELADDR, RTM_DELQDISC, RTM_GETADDR, RTM_GETLINK, RTM_GETNSID, RTM_GETQDISC,
                                       RTM_GETROUTE, RTM_NEWADDR, RTM_NEWLINK, RTM_NEWQDISC)
    from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
    from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
    from pyroute2.netlink.rtnl.marshal import MarshalRtnl
    from pyroute2.netlink.rtnl.nsidmsg import nsidmsg
    from pyroute2.netlink.rtnl.rtmsg import rtmsg
    from pyroute2.netlink.rtnl.tcmsg import tcmsg
except ImportError:
    HAS_PYROUTE2 = False
    PYROUTE2_IMPORT_ERROR = traceback.format_exc()

    class NetlinkError(Exception):  # type: ignore[no-redef]
        """Stand-in so that except clauses stay valid without pyroute2."""

        code = 0
else:
    HAS_PYROUTE2 = True
    PYROUTE2_IMPORT_ERROR = None
    register_kernel_error(NetlinkError)

SOL_NETLINK = 270
NETLINK_EXT_ACK = 11
NETLINK_GET_STRICT_CHK = 12
IFF_UP = 0x1  # include/uapi/linux/if.h
NLMSG_SEQ_OFFSET = 8  # in struct nlmsghdr: len (4), type (2), flags (2), seq (4)
READ_REQUESTS = frozenset((RTM_GETLINK, RTM_GETADDR, RTM_GETROUTE, RTM_GETNSID)) if HAS_PYROUTE2 else frozenset()


class Session:
    """The netlink socket of one namespace: reads and simple writes here, the rest through IPRoute.

    pyroute2's synchronous IPRoute runs an asyncio event loop for every
    request and again for every message of a dump, and the loop reads the
    clock each time, which is slow where a clock read is a system call.
    Reads (the plans and the states returned) and the writes whose requests
    are a header and a few attributes (link state and MTU, addresses) are
    sent and parsed here with pyroute2's own message classes; the others
    (veths, tunnels, routes), whose requests pyroute2 builds from keyword
    arguments, go to an IPRoute made on first use. Both are sockets inside
    the namespace.

    Given another protocol and its marshal, a Session talks that netlink
    family (NETLINK_XFRM: _xfrm.py) through the same _request().
    """

    RECV_SIZE = 1 << 16  # a dump datagram is at most 32 KiB
    DUMP_TRIES = 5

    def __init__(self, netns: str | None, protocol: int = socket.NETLINK_ROUTE, marshal=None) -> None:
        self.netns = netns
        self.protocol = protocol
        self._ipr: IPRoute | None = None
        self.strict = False
        self._sock = self._open()
        self._marshal = marshal or MarshalRtnl()
        self._seq = 0

    def _open(self) -> socket.socket:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, self.protocol, fileno=netlink_fd(self.netns, self.protocol))
        try:
            sock.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)
            # The kernel then applies the filters of a dump request (Linux 4.20+).
            sock.setsockopt(SOL_NETLINK, NETLINK_GET_STRICT_CHK, 1)
            self.strict = True
        except OSError:
            self.strict = False
        return sock

    @property
    def ipr(self) -> IPRoute:
        if self._ipr is None:
            fd = netlink_fd(self.netns)
            try:
                self._ipr = IPRoute(fileno=fd, ext_ack=True)
            except BaseException:
                os.close(fd)
                raise
        return self._ipr

    # Writes that pyroute2 builds: IPRoute.
    def link(self, command: str, **kwargs):
        return self.ipr.link(command, **kwargs)

    def route(self, command: str, **kwargs):
        return self.ipr.route(command, **kwargs)

    def close(self) -> None:
        if self._ipr is not None:
            self._ipr.close()
        self._sock.close()

    # Reads. Refusals raise NetlinkError, as IPRoute's do.
    def get_link(self, ifname: str | None = None, index: int = 0):
        """The link message by name or index; NetlinkError ENODEV when there is none."""
        msg = ifinfmsg()
        msg['index'] = index
        if ifname is not None:
            msg['attrs'] = [('IFLA_IFNAME', ifname)]
        return self._request(msg, RTM_GETLINK)[0]

    def links(self) -> list:
        return self._request(ifinfmsg(), RTM_GETLINK, dump=True)

    def addresses(self, index: int = 0, family: int = 0) -> list:
        """Addresses of one link (index) or of all, of one family (0: all); filtered again here."""
        msg = ifaddrmsg()
        msg['family'] = family
        if self.strict:
            msg['index'] = index
        found = self._request(msg, RTM_GETADDR, dump=True)
        return [m for m in found if (not index or m['index'] == index) and (not family or m['family'] == family)]

    def routes(self, family: int = 0, table: int | None = None) -> list:
        """Routes of one family (0: all) and table (None: all); filtered again here by family only."""
        msg = rtmsg()
        msg['family'] = family
        if table is not None and self.strict:
            msg['attrs'] = [('RTA_TABLE', table)]
        try:
            found = self._request(msg, RTM_GETROUTE, dump=True)
        except NetlinkError as exc:
            if exc.code == errno.ENOENT and table is not None:
                return []  # "FIB table does not exist": nothing in it
            raise
        return [m for m in found if not family or m['family'] == family]

    def change_link(self, index: int, up: bool | None = None, mtu: int | None = None) -> None:
        """Set the admin state and/or MTU of link `index` in one RTM_NEWLINK (as `ip link set`)."""
        msg = ifinfmsg()
        msg['index'] = index
        if up is not None:
            msg['flags'] = IFF_UP if up else 0
            msg['change'] = IFF_UP
        if mtu is not None:
            msg['attrs'] = [('IFLA_MTU', mtu)]
        self._request(msg, RTM_NEWLINK, flags=NLM_F_ACK)

    def change_address(self, command: str, index: int, family: int, prefixlen: int,
                       local: str | None = None, address: str | None = None, flags: int = 0) -> None:
        """Add ('add': EEXIST if it is there) or delete ('del') an address, as `ip addr add/del`."""
        msg = ifaddrmsg()
        msg['family'] = family
        msg['prefixlen'] = prefixlen
        msg['flags'] = flags
        msg['index'] = index
        msg['attrs'] = [(name, value) for name, value in (('IFA_LOCAL', local), ('IFA_ADDRESS', address)) if value is not None]
        if command == 'add':
            self._request(msg, RTM_NEWADDR, flags=NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL)
        else:
            self._request(msg, RTM_DELADDR, flags=NLM_F_ACK)

    def qdiscs(self, index: int = 0) -> list:
        """The qdiscs of link `index` (0: of every link), TCA_OPTIONS decoded by kind; filtered here."""
        msg = tcmsg()
        msg['index'] = index
        return [m for m in self._request(msg, RTM_GETQDISC, dump=True) if not index or m['index'] == index]

    def change_qdisc(self, command: str, msg) -> None:
        """'replace' (create, or change in place when the kind matches) or 'del' the qdisc a tcmsg names.

        The caller builds the whole tcmsg: IPRoute.tc() builds netem options from
        keyword arguments, sends rate and corruption only when non-zero and
        leaks rate= into TCA_RATE.
        """
        if command == 'replace':
            self._request(msg, RTM_NEWQDISC, flags=NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE)
        else:
            self._request(msg, RTM_DELQDISC, flags=NLM_F_ACK)

    def netnsid(self, fd: int) -> int | None:
        """The id this namespace gives the namespace open on fd (RTM_GETNSID), as the kernel says it."""
        msg = nsidmsg()
        msg['attrs'] = [('NETNSA_FD', fd)]
        return self._request(msg, RTM_GETNSID)[0].get_attr('NETNSA_NSID')

    def _request(self, msg, msg_type: int, dump: bool = False, flags: int = 0) -> list:
        """The answer to one request: every message of a dump, the message asked for, or [] for an ACK."""
        msg['header']['type'] = msg_type
        msg['header']['flags'] = NLM_F_REQUEST | (NLM_F_DUMP if dump else 0) | flags
        msg.encode()
        data = bytearray(msg.data)
        for _try in range(self.DUMP_TRIES):
            self._seq += 1
            struct.pack_into('=I', data, NLMSG_SEQ_OFFSET, self._seq)
            self._sock.send(data)
            try:
                found, interrupted = self._responses(dump)
            except OSError as exc:
                # ENOBUFS: the socket's buffer overran and part of the answer is lost. A read
                # is asked again on a fresh socket, where no rest of the old answer can arrive;
                # a write may have been made, so its error stands.
                if exc.errno != errno.ENOBUFS or msg_type not in READ_REQUESTS:
                    raise
                self._sock.close()
                self._sock = self._open()
                continue
            if not interrupted:
                return found
        raise NetlinkError(errno.EAGAIN, f'answer incomplete {self.DUMP_TRIES} times in a row (the kernel kept changing, '
                                         'or dropped messages: ENOBUFS)')

    def _responses(self, dump: bool) -> tuple[list, bool]:
        """(messages, dump interrupted) for the request just sent."""
        found: list = []
        interrupted = False
        while True:
            data = self._sock.recv(self.RECV_SIZE)
            for msg in self._marshal.parse(data):
                header = msg['header']
                if header['sequence_number'] != self._seq:
                    continue  # an answer to an earlier, abandoned request
                if header['error'] is not None:
                    raise header['error']
                interrupted = interrupted or bool(header['flags'] & NLM_F_DUMP_INTR)
                if header['type'] in (NLMSG_DONE, NLMSG_ERROR):
                    return found, interrupted
                found.append(msg)
                if not dump:
                    return found, False


class Netlink:
    """One netlink Session per namespace for the length of a module run.

    Sessions are cached; they must be released before the namespace is
    removed, because an open socket keeps a removed namespace alive. The
    least recently used ones are closed past MAX_OPEN, so that a topology of
    hundreds of namespaces stays within the file descriptor limit.
    """

    MAX_OPEN = 64

    def __init__(self) -> None:
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        # Namespaces that a plan is about to create: reading them gives "empty".
        self.pending_netns: set[str] = set()
        # Whether plans only predict (check mode): checks that exist only to
        # predict a kernel refusal can be skipped in a real run, where the
        # kernel refuses by itself (the tunnel collision scan dumps every link).
        self.check_mode = True

    def __enter__(self) -> Netlink:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __call__(self, netns: str | None = None) -> Session:
        key = netns or ''
        if key in self._sessions:
            self._sessions.move_to_end(key)
        else:
            while len(self._sessions) >= self.MAX_OPEN:
                self._sessions.popitem(last=False)[1].close()
            with kernel_call(f'could not open a netlink socket in {where(netns)}'):
                self._sessions[key] = Session(netns or None)
        return self._sessions[key]

    def readable(self, netns: str | None) -> bool:
        """False when netns is planned but not made yet: treat it as empty."""
        if netns and netns in self.pending_netns and (not netns_exists(netns) or netns_placeholder(netns)):
            return False
        return True

    def release(self, netns: str | None) -> None:
        session = self._sessions.pop(netns or '', None)
        if session is not None:
            session.close()

    def close(self) -> None:
        for key in list(self._sessions):
            self.release(key)
