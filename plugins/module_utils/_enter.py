# -*- coding: utf-8 -*-
# Copyright (c) linuxnet.tunnels contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Into a named network namespace and back: the one way the collection enters one.

The calling thread itself enters (setns moves only that thread) and returns
before the block ends; what it made inside (a socket) stays in the namespace
it was made in. Reading never creates a namespace: setns with flags=0.
"""

from __future__ import annotations

import ctypes
import errno
import os
import socket
import threading
from contextlib import contextmanager

from ansible_collections.linuxnet.tunnels.plugins.module_utils._errors import NamespaceMissing
from ansible_collections.linuxnet.tunnels.plugins.module_utils._names import check_netns_name, netns_exists, netns_placeholder

try:
    from pyroute2 import netns as pr_netns
except ImportError:
    pass  # reported once by the module through _netlink.HAS_PYROUTE2

CLONE_NEWNET = 0x40000000


@contextmanager
def _this_thread_in(enter):
    """Run the block with the calling thread moved into another namespace by enter(), then back.

    Without a new thread or process: pyroute2's own ways (IPRoute(netns=),
    netns.create()) fork a child for it. If the way back ever failed, the
    thread would stay in the wrong namespace: that is raised as a
    RuntimeError, never ignored.
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


@contextmanager
def inside(netns: str | None):
    """Run the block inside the named namespace (None: where the thread already is); never creates it."""
    if not netns:
        yield
        return
    check_netns_name(netns)
    if not netns_exists(netns):
        raise NamespaceMissing(netns)

    def enter() -> None:
        try:
            pr_netns.setns(netns, flags=0)
        except FileNotFoundError as exc:  # removed since we looked
            raise NamespaceMissing(netns) from exc
        except OSError as exc:
            if exc.errno == errno.EINVAL and netns_placeholder(netns):
                raise NamespaceMissing(netns) from exc  # an interrupted run's empty file: no namespace
            raise

    with _this_thread_in(enter):
        yield


def run_in_netns(netns: str | None, func, *args):
    """func(*args) called inside netns (for /proc/sys/net, raw sockets)."""
    with inside(netns):
        return func(*args)


def netlink_fd(netns: str | None, protocol: int = socket.NETLINK_ROUTE) -> int:
    """A netlink socket of protocol made inside netns (None: this thread's own), as a bare fd."""
    return run_in_netns(netns, lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, protocol).detach())


def _unshare() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


def create_netns(name: str) -> None:
    """Create a named namespace as `ip netns add` does, without forking.

    The calling thread unshares, pins its new namespace under /run/netns
    with pyroute2's own attach(), and goes back. A failure may leave the
    empty placeholder file behind, as pyroute2's netns.create() does.
    """
    check_netns_name(name)
    with _this_thread_in(_unshare):
        pr_netns.attach(name, threading.get_native_id())


def remove_netns(name: str) -> None:
    """Delete a named namespace as `ip netns del` does; FileNotFoundError when it is not there."""
    pr_netns.remove(name)
