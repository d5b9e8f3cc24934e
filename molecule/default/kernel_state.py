# Copyright (c) linuxnet.tunnels contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Snapshot what the lab may touch, and prove that teardown left nothing.

    kernel_state.py save FILE    record the state in FILE (molecule prepare)
    kernel_state.py check FILE   compare with FILE, print every difference,
                                 remove FILE; exit 1 on a difference
                                 (molecule destroy; no FILE: nothing to compare)

The state, read out of band with iproute2: the network namespaces, and in
the namespace this runs in the links, IPv4 addresses and routes, the
forwarding sysctls and the role's saved-value directory. Left out on purpose:
what loading a kernel module (not the lab) changes, the fallback tunnel
devices (tunl0, gre0, sit0, ...) and IPv6 addresses and routes, which appear
when ipv6.ko is loaded inside User-Mode Linux; and namespaces named `lt...`,
which the pytest suite (tests/harness.py) makes and removes while molecule
runs beside it on a kernel with tunnels.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

FALLBACK = {'tunl0', 'gre0', 'gretap0', 'erspan0', 'sit0', 'ip_vti0', 'ip6tnl0', 'ip6gre0', 'ip6_vti0'}
SYSCTLS = ('net/ipv4/ip_forward', 'net/ipv4/conf/all/forwarding', 'net/ipv6/conf/all/forwarding')
STATE_DIR = '/run/linuxnet-tunnels'
TEST_SUITE_PREFIX = 'lt'  # tests/harness.py unique()


def ip_json(*args: str) -> list:
    out = subprocess.run(['ip', '-j', *args], check=True, capture_output=True, text=True).stdout
    return json.loads(out) if out.strip() else []  # `ip -j netns list` prints nothing when empty


def sysctl(path: str) -> str | None:
    try:
        with open(os.path.join('/proc/sys', path)) as fh:
            return fh.read().strip()
    except FileNotFoundError:
        return None


def snapshot() -> dict:
    links = [link for link in ip_json('-d', 'link', 'show') if link['ifname'] not in FALLBACK]
    return {
        'namespaces': sorted(ns['name'] for ns in ip_json('netns', 'list') if not ns['name'].startswith(TEST_SUITE_PREFIX)),
        'links': sorted(f"{link['ifname']} {link.get('linkinfo', {}).get('info_kind', '')}".strip() for link in links),
        'addresses': sorted(
            f"{link['ifname']} {a['local']}/{a['prefixlen']}" for link in ip_json('-4', 'addr', 'show') for a in link['addr_info']
        ),
        'routes': sorted(json.dumps(route, sort_keys=True) for route in ip_json('-4', 'route', 'show', 'table', 'all')),
        'sysctls': {path: sysctl(path) for path in SYSCTLS},
        'state_dir': sorted(os.listdir(STATE_DIR)) if os.path.isdir(STATE_DIR) else [],
    }


def differences(before: dict, after: dict) -> list[str]:
    out = []
    for key in ('namespaces', 'links', 'addresses', 'routes', 'state_dir'):
        gone = sorted(set(before[key]) - set(after[key]))
        left = sorted(set(after[key]) - set(before[key]))
        out += [f'{key}: left behind: {item}' for item in left]
        out += [f'{key}: gone: {item}' for item in gone]
    for path, value in before['sysctls'].items():
        now = after['sysctls'].get(path)
        if value is not None and now != value:  # None: the key appeared with a module
            out.append(f'sysctl {path}: {value} before, {now} after')
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[1] not in ('save', 'check'):
        sys.stderr.write(__doc__ or '')
        return 2
    action, path = argv[1], argv[2]
    now = snapshot()
    if action == 'save':
        with open(path, 'w') as fh:
            json.dump(now, fh, indent=1)
        print(f'baseline saved in {path}')
        return 0
    if not os.path.exists(path):
        print('no baseline: nothing to compare')
        return 0
    with open(path) as fh:
        before = json.load(fh)
    os.remove(path)
    diff = differences(before, now)
    for line in diff:
        print(line)
    if not diff:
        print('the kernel is as it was before the lab: no namespace, link, address, route or sysctl left changed')
    return 1 if diff else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
