# -*- coding: utf-8 -*-
# Copyright (c) linuxnet.tunnels contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Names of namespaces and links: what the kernel and iproute2 accept, and which namespaces exist.

Pure Python: the connection plugin uses it on the controller, where pyroute2 need not be installed.
"""

from __future__ import annotations

import os

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


def list_netns() -> list[str]:
    try:
        return sorted(os.listdir(NETNS_RUN_DIR))
    except FileNotFoundError:
        return []
