# -*- coding: utf-8 -*-
# Copyright (c) linuxnet.tunnels contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Names of namespaces and links: what the kernel and iproute2 accept, and which namespaces exist.

Pure Python: the connection plugin uses it on the controller, where pyroute2 need not be installed.
"""

from __future__ import annotations

import os
import time

from ansible_collections.linuxnet.tunnels.plugins.module_utils._errors import ResourceError

NETNS_RUN_DIR = '/run/netns'
IFNAMSIZ = 16
# Devices the kernel creates in every namespace once a tunnel module is loaded.
FALLBACK_DEVICES = frozenset(('tunl0', 'gre0', 'gretap0', 'erspan0', 'sit0', 'ip_vti0', 'ip6tnl0', 'ip6gre0', 'ip6_vti0'))


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
    return True


def list_netns() -> list[str]:
    try:
        return sorted(os.listdir(NETNS_RUN_DIR))
    except FileNotFoundError:
        return []
