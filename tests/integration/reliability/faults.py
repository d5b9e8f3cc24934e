# Copyright (c) linuxnet.tunnels contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Runs killed on purpose, and what the kernel holds compared with a declaration.

- run_killed(): a module run in a forked child that SIGKILLs itself right
  after its Nth kernel request (netlink request or namespace creation or
  removal): deterministic kill points, and the kernel has done what the
  request asked while the run never learns of it. Counting is monkeypatched
  into the child only; the product code carries no hook.
- hub_and_spoke(): the benchmark's topology (benchmarks/bench.py), one source.
- declared_state() / kernel_state(): the same normalised shape from a
  topology declaration and from linuxnet.tunnels.net_info, for equality.
"""

from __future__ import annotations

import ipaddress
import os
import signal
import sys
import traceback

from harness import run_module
from reliability.common import REPO

sys.path.insert(0, os.path.join(REPO, 'benchmarks'))
from bench import HUB, hub_and_spoke  # noqa: E402  (needs the path above)

__all__ = ['HUB', 'hub_and_spoke', 'run_killed', 'declared_state', 'kernel_state', 'state_diff']

# The calls that ask the kernel for something: (module, class or None, attribute).
_NETLINK = 'ansible_collections.linuxnet.tunnels.plugins.module_utils._netlink'
_NETNS = 'ansible_collections.linuxnet.tunnels.plugins.module_utils._netns'
KERNEL_CALLS = (
    (_NETLINK, 'Session', '_request'),  # every lean read and write
    (_NETLINK, 'Session', 'link'),      # writes built by pyroute2
    (_NETLINK, 'Session', 'route'),
    (_NETNS, None, 'create_netns'),
    ('pyroute2.netns', None, 'remove'),
)


def _count_kernel_calls(kill_after: int | None, counter: list) -> None:
    """Wrap every KERNEL_CALLS entry: count it, and SIGKILL this process after call number kill_after."""
    import importlib

    def wrap(original):
        def counted(*args, **kwargs):
            result = original(*args, **kwargs)
            counter[0] += 1
            if counter[0] == kill_after:
                os.kill(os.getpid(), signal.SIGKILL)
            return result
        return counted

    for module_name, class_name, attribute in KERNEL_CALLS:
        owner = importlib.import_module(module_name)
        if class_name is not None:
            owner = getattr(owner, class_name)
        setattr(owner, attribute, wrap(getattr(owner, attribute)))


def run_killed(module: str, params: dict, kill_after: int | None) -> tuple[bool, int]:
    """(killed, kernel calls made) of one run in a forked child; kill_after None: let it finish."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        status = 1
        try:
            os.close(read_end)
            counter = [0]
            _count_kernel_calls(kill_after, counter)
            result = run_module(module, params)
            os.write(write_end, f"{counter[0]} {int(bool(result.get('failed')))}".encode())
            status = 0
        except BaseException:  # the parent's assertion shows it
            traceback.print_exc()
        finally:
            os._exit(status)  # pylint: disable=protected-access
    os.close(write_end)
    with os.fdopen(read_end, 'rb') as pipe:
        told = pipe.read().decode().split()
    _pid, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        assert os.WTERMSIG(status) == signal.SIGKILL, status
        return True, kill_after
    assert os.WEXITSTATUS(status) == 0 and told and told[1] == '0', f'the run failed on its own: {status} {told}'
    return False, int(told[0])


# ---------------------------------------------------------------------------
# declaration against kernel

def _interface(address: str) -> str:
    return ipaddress.ip_interface(address).with_prefixlen


def declared_state(topology: dict) -> dict:
    """What a present topology declares, in the shape kernel_state() returns."""
    return {
        'namespaces': sorted(n['name'] for n in topology['namespaces']),
        'veths': sorted(sorted([(v.get('netns'), v['name']), (v.get('peer_netns'), v['peer'])]) for v in topology['veths']),
        'tunnels': sorted((t.get('netns'), t['name'], t['mode'], t['local'], t['remote'], t.get('dev'), True)
                          for t in topology['tunnels']),
        'addresses': sorted((a.get('netns'), a['dev'], _interface(a['address']), a.get('peer') and _interface(a['peer']))
                            for a in topology['addresses']),
        'routes': sorted((r.get('netns'), r['dest'], r.get('gateway') or r['dev']) for r in topology['routes']),
        'down': [],
    }


def kernel_state(namespaces: list[str]) -> dict:
    """The namespaces as linuxnet.tunnels.net_info reads them, in declared_state()'s shape.

    Every veth, tunnel, address and route it would declare is listed (leftovers
    included), and 'down' lists every veth or tunnel that is not up.
    """
    info = run_module('net_info', {'namespaces': namespaces})
    assert not info.get('failed'), info.get('msg')
    topo = info['topology']
    down = [(v.get('netns'), v['name']) for v in topo.get('veths', []) if not v.get('up')]
    down += [(t.get('netns'), t['name']) for t in topo.get('tunnels', []) if not t.get('up')]
    return {
        'namespaces': sorted(n['name'] for n in topo.get('namespaces', [])),
        'veths': sorted(sorted([(v.get('netns'), v['name']), (v.get('peer_netns'), v['peer'])]) for v in topo.get('veths', [])),
        'tunnels': sorted((t.get('netns'), t['name'], t['mode'], t.get('local'), t.get('remote'), t.get('dev'), bool(t.get('up')))
                          for t in topo.get('tunnels', [])),
        'addresses': sorted((a.get('netns'), a['dev'], _interface(a['address']), a.get('peer') and _interface(a['peer']))
                            for a in topo.get('addresses', [])),
        'routes': sorted((r.get('netns'), r['dest'], r.get('gateway') or r.get('dev')) for r in topo.get('routes', [])),
        'down': sorted(down),
    }


def state_diff(declared: dict, found: dict) -> str:
    """What differs, kind by kind ('' when nothing)."""
    lines = []
    for key in declared:
        want, have = set(map(repr, declared[key])), set(map(repr, found.get(key, [])))
        if want - have:
            lines.append(f'{key} missing: {sorted(want - have)[:5]}')
        if have - want:
            lines.append(f'{key} not declared: {sorted(have - want)[:5]}')
    return '\n'.join(lines)
