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
import threading
import traceback
from collections import OrderedDict
from contextlib import contextmanager

try:
    from pyroute2 import IPRoute, NetlinkError
    from pyroute2 import netns as pr_netns
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


def list_netns() -> list[str]:
    try:
        return sorted(os.listdir(NETNS_RUN_DIR))
    except FileNotFoundError:
        return []


class Netlink:
    """One netlink socket per namespace for the length of a module run.

    Opening a socket in a namespace forks a helper process, so sockets are
    cached; they must be released before the namespace is removed, because an
    open socket keeps a removed namespace alive. The least recently used ones
    are closed past MAX_OPEN, so that a topology of hundreds of namespaces
    stays within the file descriptor limit.
    """

    MAX_OPEN = 64

    def __init__(self) -> None:
        self._sockets: OrderedDict[str, IPRoute] = OrderedDict()
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

    def __call__(self, netns: str | None = None) -> IPRoute:
        key = netns or ''
        if key in self._sockets:
            self._sockets.move_to_end(key)
        else:
            while len(self._sockets) >= self.MAX_OPEN:
                self._sockets.popitem(last=False)[1].close()
            self._sockets[key] = self._open(netns)
        return self._sockets[key]

    @staticmethod
    def _open(netns: str | None) -> IPRoute:
        if not netns:
            with kernel_call('could not open a netlink socket'):
                return IPRoute(ext_ack=True)
        check_netns_name(netns)
        if not netns_exists(netns):
            raise NamespaceMissing(netns)
        try:
            # The socket is made inside the namespace by this thread and handed
            # to IPRoute as an fd: IPRoute(netns=) would fork a child for it,
            # which costs 16 ms natively and half a second under User-Mode Linux.
            fd = _netns_socket_fd(netns)
        except FileNotFoundError as exc:
            raise NamespaceMissing(netns) from exc
        except (NetlinkError, OSError) as exc:
            with kernel_call(f"could not enter network namespace '{netns}'"):
                raise exc
        try:
            return IPRoute(fileno=fd, ext_ack=True)
        except BaseException:
            os.close(fd)
            raise

    def readable(self, netns: str | None) -> bool:
        """False when netns is planned but not made yet: treat it as empty."""
        if netns and netns in self.pending_netns and not netns_exists(netns):
            return False
        return True

    def release(self, netns: str | None) -> None:
        sock = self._sockets.pop(netns or '', None)
        if sock is not None:
            sock.close()

    def close(self) -> None:
        for key in list(self._sockets):
            self.release(key)


SOL_NETLINK = 270
NETLINK_GET_STRICT_CHK = 12


def link_addresses(ipr, index: int, family: int = 0):
    """The addresses of link `index` in ipr's namespace, filtered by the kernel when it can.

    A plain addr('dump', index=) returns every address of the namespace and
    pyroute2 filters them in Python: one address then costs O(addresses in
    the namespace). With NETLINK_GET_STRICT_CHK (Linux 4.20+) the kernel
    honours the index in the request header. Callers still check the index
    and family of what comes back (older kernels ignore the header).
    """
    try:
        ipr.setsockopt(SOL_NETLINK, NETLINK_GET_STRICT_CHK, 1)
    except OSError:
        return ipr.addr('dump', index=index, family=family)
    try:
        # With an explicit dump_filter, pyroute2 puts index and family in the request header.
        return ipr.addr('dump', index=index, family=family, dump_filter=lambda msg: msg.get('index') == index)
    finally:
        ipr.setsockopt(SOL_NETLINK, NETLINK_GET_STRICT_CHK, 0)


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


def _netns_socket_fd(netns: str) -> int:
    """A NETLINK_ROUTE socket made inside netns (flags=0: never created), as a bare fd."""
    with _this_thread_in(lambda: pr_netns.setns(netns, flags=0)):
        return socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, 0).detach()


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
