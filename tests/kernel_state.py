# Copyright (c) linuxnet.tunnels contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The kernel state a run must leave as it found it, read out of band with iproute2.

The one snapshot helper of the pytest suite (tests/harness.py,
tests/integration/reliability/common.py) and of molecule (prepare and destroy
run it as a script):

    kernel_state.py save FILE    record the state in FILE
    kernel_state.py check FILE   compare with FILE, print every difference,
                                 remove FILE; exit 1 on a difference
                                 (no FILE: nothing to compare, exit 0)

A snapshot holds `netns` (the namespace names), one entry per watched
namespace (its links, addresses and routes) and, with current=True, the
namespace this runs in as `current`, its forwarding sysctls and the roles'
saved-value directory. Left out on purpose: counters and address lifetimes
(they move on their own) and the fallback tunnel devices (tunl0, gre0, sit0,
...) that loading a tunnel module adds to every namespace.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

FALLBACK = frozenset({'tunl0', 'gre0', 'gretap0', 'erspan0', 'sit0', 'ip_vti0', 'ip6tnl0', 'ip6gre0', 'ip6_vti0'})
FORWARDING = (
    'net/ipv4/ip_forward',
    'net/ipv4/conf/all/forwarding',
    'net/ipv4/conf/default/forwarding',
    'net/ipv6/conf/all/forwarding',
    'net/ipv6/conf/default/forwarding',
)
STATE_DIR = '/run/linuxnet-tunnels'
TEST_SUITE_PREFIX = 'lt'  # tests/harness.py unique()


def list_netns() -> list[str]:
    out = subprocess.run(['ip', '-j', 'netns', 'list'], capture_output=True, text=True, check=False).stdout
    return sorted(entry['name'] for entry in json.loads(out)) if out.strip() else []  # prints nothing when empty


def namespace_state(netns: str | None) -> dict:
    """Links, addresses and routes of one namespace (None: the current one; empty when it does not exist)."""
    def clean(entry: dict) -> str:
        entry = {k: v for k, v in entry.items() if k not in ('stats', 'stats64')}
        entry['addr_info'] = [{k: v for k, v in a.items() if not k.endswith('_life_time')} for a in entry.get('addr_info', [])]
        return json.dumps(entry, sort_keys=True)

    # One `ip` process per namespace (-batch): each costs 0.1-0.2 s under User-Mode Linux.
    cmd = ['ip'] + (['-n', netns] if netns else []) + ['-d', '-j', '-batch', '-']
    proc = subprocess.run(cmd, input='link show\naddr show\nroute show table all\n', capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return {'links': [], 'addrs': [], 'routes': []}
    link_list, addr_list, route_list = (json.loads(line) for line in proc.stdout.splitlines() if line.strip())
    return {
        'links': sorted(
            (link['ifname'], link.get('mtu'), tuple(link.get('flags', [])), (link.get('linkinfo') or {}).get('info_kind'),
             json.dumps((link.get('linkinfo') or {}).get('info_data'), sort_keys=True))
            for link in link_list if link['ifname'] not in FALLBACK
        ),
        'addrs': sorted(clean(a) for a in addr_list if a['ifname'] not in FALLBACK),
        'routes': sorted(clean(r) for r in route_list if r.get('dev') not in FALLBACK),
    }


def sysctl(key: str) -> str | None:
    try:
        with open(f'/proc/sys/{key}', encoding='ascii') as fh:
            return fh.read().strip()
    except OSError:
        return None


def snapshot(namespaces: list[str] | tuple | None = None, current: bool = False, skip_prefix: str = '') -> dict:
    """netns: every namespace (but those named skip_prefix...); the state of each of `namespaces`
    (None: of every listed one); with current=True the current namespace, its forwarding and STATE_DIR."""
    listed = [ns for ns in list_netns() if not (skip_prefix and ns.startswith(skip_prefix))]
    snap: dict = {'netns': listed}
    for ns in listed if namespaces is None else namespaces:
        snap[ns] = namespace_state(ns)
    if current:
        snap['current'] = namespace_state(None)
        snap['forwarding'] = {key: sysctl(key) for key in FORWARDING}
        snap['state_dir'] = sorted(os.listdir(STATE_DIR)) if os.path.isdir(STATE_DIR) else []
    return snap


def differences(before: dict, after: dict) -> list[str]:
    """What changed, one line each ([] when nothing did). A sysctl that appeared
    (its module loaded meanwhile) is no difference."""
    out = []
    for key in sorted(set(before) | set(after)):
        b, a = before.get(key), after.get(key)
        if key == 'forwarding':
            out += [f'sysctl {k}: {v} before, {a.get(k)} after' for k, v in b.items() if v is not None and a.get(k) != v]
        elif isinstance(b, dict) and isinstance(a, dict):
            for sub in sorted(set(b) | set(a)):
                old, new = b.get(sub) or [], a.get(sub) or []
                old, new = [json.dumps(x) for x in old], [json.dumps(x) for x in new]
                out += [f'{key} {sub}: left behind: {x}' for x in new if x not in old]
                out += [f'{key} {sub}: gone: {x}' for x in old if x not in new]
        elif isinstance(b, list) and isinstance(a, list):
            out += [f'{key}: left behind: {x}' for x in a if x not in b]
            out += [f'{key}: gone: {x}' for x in b if x not in a]
        elif b != a:
            out.append(f'{key}: {b!r} -> {a!r}')
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[1] not in ('save', 'check'):
        sys.stderr.write(__doc__ or '')
        return 2
    action, path = argv[1], argv[2]
    # Everything but the pytest suite's namespaces, which come and go when it runs beside molecule.
    now = json.loads(json.dumps(snapshot(current=True, skip_prefix=TEST_SUITE_PREFIX)))  # tuples as in the file
    if action == 'save':
        with open(path, 'w', encoding='utf-8') as fh:
            json.dump(now, fh, indent=1)
        print(f'baseline saved in {path}')
        return 0
    if not os.path.exists(path):
        print('no baseline: nothing to compare')
        return 0
    with open(path, encoding='utf-8') as fh:
        before = json.load(fh)
    os.remove(path)
    diff = differences(before, now)
    print('\n'.join(diff) or 'the kernel is as it was: no namespace, link, address, route or sysctl changed')
    return 1 if diff else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
