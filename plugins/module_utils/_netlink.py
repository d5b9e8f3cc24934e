# -*- coding: utf-8 -*-
# Copyright (c) linuxnet.tunnels contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Netlink sessions, kernel error messages, name validation and netns entry.

Everything that touches pyroute2 directly goes through here, so that the
pitfalls (netns auto-creation, silent kwargs, unreadable errors) are handled
once.
"""

from __future__ import annotations

import errno
import ctypes
import os
import socket
import struct
import threading
import time
import traceback
from collections import OrderedDict
from contextlib import contextmanager

try:
    from pyroute2 import IPRoute, NetlinkError
    from pyroute2 import netns as pr_netns
    from pyroute2.netlink import (NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_EXCL, NLM_F_REQUEST,
                                  NLMSG_DONE, NLMSG_ERROR)
    from pyroute2.netlink.rtnl import (RTM_DELADDR, RTM_GETADDR, RTM_GETLINK, RTM_GETNSID, RTM_GETROUTE, RTM_NEWADDR,
                                       RTM_NEWLINK)
    from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
    from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
    from pyroute2.netlink.rtnl.marshal import MarshalRtnl
    from pyroute2.netlink.rtnl.nsidmsg import nsidmsg
    from pyroute2.netlink.rtnl.rtmsg import rtmsg
except ImportError:
    HAS_PYROUTE2 = False
    PYROUTE2_IMPORT_ERROR = traceback.format_exc()

    class NetlinkError(Exception):  # type: ignore[no-redef]
        """Stand-in so that except clauses stay valid without pyroute2."""

        code = 0
else:
    HAS_PYROUTE2 = True
    PYROUTE2_IMPORT_ERROR = None

NETNS_RUN_DIR = '/run/netns'
IFNAMSIZ = 16
# Devices the kernel creates in every namespace once a tunnel module is loaded.
FALLBACK_DEVICES = frozenset(('tunl0', 'gre0', 'gretap0', 'erspan0', 'sit0', 'ip_vti0', 'ip6tnl0', 'ip6gre0', 'ip6_vti0'))


class ResourceError(Exception):
    """A failure whose message is complete and fit to show the user."""


class NamespaceMissing(ResourceError):
    def __init__(self, name: str) -> None:
        super().__init__(f"network namespace '{name}' does not exist")
        self.name = name


def error_text(exc: BaseException) -> str:
    """The kernel's own words for a refusal, with the errno name."""
    code = getattr(exc, 'code', None) if isinstance(exc, NetlinkError) else getattr(exc, 'errno', None)
    if isinstance(exc, NetlinkError) and len(exc.args) > 1:
        text = str(exc.args[1])
    elif isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror
    else:
        text = str(exc) or type(exc).__name__
    name = errno.errorcode.get(code) if isinstance(code, int) else None
    return f'{text} ({name})' if name else text


@contextmanager
def kernel_call(action: str):
    """Turn a refusal inside the block into a ResourceError naming `action`."""
    try:
        yield
    except ResourceError:
        raise
    except (NetlinkError, OSError) as exc:
        if getattr(exc, 'code', None) == errno.EPERM or getattr(exc, 'errno', None) == errno.EPERM:
            raise ResourceError(f'{action}: operation not permitted; the module needs root (become: true)') from exc
        raise ResourceError(f'{action}: {error_text(exc)}') from exc


def errno_of(exc: BaseException) -> int | None:
    """The errno behind a ResourceError raised by kernel_call, if any."""
    cause = exc.__cause__ if isinstance(exc, ResourceError) else exc
    if isinstance(cause, NetlinkError):
        return cause.code
    if isinstance(cause, OSError):
        return cause.errno
    return None


def where(netns: str | None) -> str:
    """Words for a namespace in messages."""
    return f"namespace '{netns}'" if netns else 'the current namespace'


def check_netns_name(name: str, option: str = 'netns') -> None:
    """Reject what iproute2 rejects; pyroute2 would treat a '/' as a path."""
    if not name or name in ('.', '..') or '/' in name or '\0' in name:
        raise ResourceError(f"{option}: '{name}' is not a valid network namespace name (empty, '.', '..' or containing '/')")
    if len(name.encode()) > 255:
        raise ResourceError(f'{option}: network namespace name is longer than 255 bytes')


def check_ifname(name: str, option: str = 'name') -> None:
    """Reject what the kernel's dev_valid_name() rejects, before asking it."""
    if not name:
        raise ResourceError(f'{option}: an interface name cannot be empty')
    if len(name.encode()) >= IFNAMSIZ:
        raise ResourceError(f"{option}: interface name '{name}' is {len(name.encode())} bytes long; the kernel allows at most {IFNAMSIZ - 1}")
    if name in ('.', '..') or any(c in name for c in '/:') or any(c.isspace() for c in name):
        raise ResourceError(f"{option}: '{name}' is not a valid interface name (no '/', ':' or whitespace, not '.' or '..')")


def netns_exists(name: str) -> bool:
    return os.path.exists(os.path.join(NETNS_RUN_DIR, name))


def netns_placeholder(name: str) -> bool:
    """True when /run/netns/name is a file with no namespace mounted on it.

    `ip netns add` and create_netns() make the file first and mount the new
    namespace on it next, and removal unmounts before it unlinks: a run killed
    in between leaves such a file (iproute2 calls it "No such file or
    directory", setns() says EINVAL). A creation in progress mounts within
    microseconds, so the file has to stay empty for a moment to count.
    """
    path = os.path.join(NETNS_RUN_DIR, name)
    nsfs = os.stat('/proc/self/ns/net').st_dev
    for pause in (0.05, 0.2, None):
        try:
            if os.stat(path).st_dev == nsfs:
                return False
        except FileNotFoundError:
            return False
        if pause is None:
            return True
        time.sleep(pause)


def list_netns() -> list[str]:
    try:
        return sorted(os.listdir(NETNS_RUN_DIR))
    except FileNotFoundError:
        return []


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
    clock each time: under User-Mode Linux, where a clock read is a system
    call, one RTM_GETLINK costs 1.7 ms that way against 0.3 ms sent and
    parsed here with pyroute2's own message classes. Reads (the plans and
    the states returned) and the writes whose requests are a header and a
    few attributes (link state and MTU, addresses) come here; the others
    (veths, tunnels, routes), whose requests pyroute2 builds from keyword
    arguments, go to an IPRoute made on first use. Both are sockets inside
    the namespace.
    """

    RECV_SIZE = 1 << 16  # a dump datagram is at most 32 KiB
    DUMP_TRIES = 5

    def __init__(self, netns: str | None) -> None:
        self.netns = netns
        self._ipr: IPRoute | None = None
        self.strict = False
        self._sock = self._open()
        self._marshal = MarshalRtnl()
        self._seq = 0

    def _open(self) -> socket.socket:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, socket.NETLINK_ROUTE, fileno=_netlink_fd(self.netns))
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
            fd = _netlink_fd(self.netns)
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


CLONE_NEWNET = 0x40000000


@contextmanager
def _this_thread_in(enter):
    """Run the block with the calling thread moved into another namespace by enter().

    setns()/unshare() move only the calling thread, and it is moved back
    afterwards; doing it here instead of in a new thread saves a thread
    start per namespace (5 ms under User-Mode Linux). If the way back ever
    failed, the thread would stay in the wrong namespace: that is raised as
    a RuntimeError, never ignored.
    """
    home = os.open('/proc/thread-self/ns/net', os.O_RDONLY)
    try:
        enter()
        try:
            yield
        finally:
            try:
                pr_netns.setns(home, flags=0)
            except OSError as exc:
                raise RuntimeError(f'could not return to the original network namespace: {exc}') from exc
    finally:
        os.close(home)


def _unshare() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


def create_netns(name: str) -> None:
    """Create a named namespace as `ip netns add` does, without forking.

    pyroute2's netns.create() forks a child to unshare (16 ms natively, a
    quarter of a second under User-Mode Linux); the calling thread unshares
    instead, pins its new namespace under /run/netns with pyroute2's own
    attach(), and goes back. A failure may leave the empty placeholder file
    behind, as netns.create() does.
    """
    check_netns_name(name)
    with _this_thread_in(_unshare):
        pr_netns.attach(name, threading.get_native_id())


def _netlink_fd(netns: str | None) -> int:
    """A NETLINK_ROUTE socket made inside netns (None: this thread's own), as a bare fd.

    The thread enters the namespace itself (flags=0: never created):
    IPRoute(netns=) would fork a child for it, which costs 16 ms natively
    and half a second under User-Mode Linux.
    """
    if not netns:
        return socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, socket.NETLINK_ROUTE).detach()
    check_netns_name(netns)
    if not netns_exists(netns):
        raise NamespaceMissing(netns)
    try:
        with _this_thread_in(lambda: pr_netns.setns(netns, flags=0)):
            return socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, socket.NETLINK_ROUTE).detach()
    except FileNotFoundError as exc:
        raise NamespaceMissing(netns) from exc
    except OSError as exc:
        if exc.errno == errno.EINVAL and netns_placeholder(netns):
            raise NamespaceMissing(netns) from exc  # an interrupted run's empty file: no namespace
        raise


def run_in_netns(netns: str | None, func, *args):
    """Call func in a thread that has entered netns (for /proc/sys/net)."""
    if not netns:
        return func(*args)
    box: dict = {}

    def run() -> None:
        try:
            # flags=0: a missing namespace is an error, never created.
            pr_netns.setns(netns, flags=0)
            box['result'] = func(*args)
        except BaseException as exc:  # handed to the caller's thread
            box['error'] = exc

    check_netns_name(netns)
    if not netns_exists(netns):
        raise NamespaceMissing(netns)
    worker = threading.Thread(target=run, name=f'netns-{netns}')
    worker.start()
    worker.join()
    if 'error' in box:
        raise box['error']
    return box.get('result')
