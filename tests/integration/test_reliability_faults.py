# Copyright (c) linuxnet.tunnels contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Runs killed halfway: the next run finds what was left, finishes the job, and teardown leaves nothing.

- A 50-site hub-and-spoke converge (the benchmark's topology, 101 links a
  side) SIGKILLed right after its Nth kernel request, at 20 points spread
  evenly over the run; and its teardown killed halfway. After each kill a
  re-run converges (net_info reads exactly the declaration), a second one
  changes nothing, and teardown leaves the kernel as its snapshot from before.
- Direct reproductions of what a kill can leave that the kill points cannot
  reach deterministically: a namespace file in /run/netns with nothing
  mounted on it, a tunnel left under its temporary name by a replace, a veth
  whose other end is not where it is declared.

They compare the whole kernel, so they run only inside User-Mode Linux:

    scripts/uml-run --timeout 1500 -- .venv/bin/pytest -q -p no:cacheprovider tests/integration/test_reliability_faults.py
"""

from __future__ import annotations

import os
import subprocess

import pytest

from harness import ip, links, list_netns, run_module
from reliability.common import IN_UML, diff_snapshots, snapshot
from reliability.faults import HUB, declared_state, hub_and_spoke, kernel_state, run_killed, state_diff

pytestmark = [pytest.mark.tunnel, pytest.mark.rootns]

SITES = 50
KILL_POINTS = 20
UP, DOWN = hub_and_spoke(SITES, 'present'), hub_and_spoke(SITES, 'absent')
DECLARED = declared_state(UP)


@pytest.fixture(scope='module')
def kernel():
    """The kernel before any lab, and how many kernel requests one whole converge and teardown make."""
    if not IN_UML:
        pytest.skip('compares the whole kernel, root namespace included: run under scripts/uml-run')
    # ipip's fallback device tunl0 appears in every namespace for good once the module is loaded.
    subprocess.run(['modprobe', 'ipip'], check=True)
    before = snapshot()
    killed, up_calls = run_killed('topology', UP, None)
    assert not killed
    killed, down_calls = run_killed('topology', DOWN, None)
    assert not killed
    assert not diff_snapshots(before, snapshot())
    return {'before': before, 'up_calls': up_calls, 'down_calls': down_calls}


def our_namespaces(kernel) -> list[str]:
    return sorted(set(list_netns()) - set(kernel['before']['netns']))


def converged(kernel) -> dict:
    """Converge, check the kernel against the declaration, converge again: nothing to do."""
    result = run_module('topology', UP)
    assert not result.get('failed'), result.get('msg')
    found = kernel_state(our_namespaces(kernel))
    assert not state_diff(DECLARED, found), state_diff(DECLARED, found)
    again = run_module('topology', UP)
    assert not again.get('failed'), again.get('msg')
    assert not again['changed'], again['changes'][:5]
    return result


def torn_down(kernel) -> None:
    result = run_module('topology', DOWN)
    assert not result.get('failed'), result.get('msg')
    after = snapshot()
    assert not diff_snapshots(kernel['before'], after), f'teardown left this behind:\n{diff_snapshots(kernel["before"], after)}'


def report(label: str, **facts) -> None:
    """One line per case for the run's log (pytest -rP shows it)."""
    print(f'{label}: ' + ', '.join(f'{key}={value}' for key, value in facts.items()))


@pytest.mark.parametrize('point', range(KILL_POINTS))
def test_converge_killed(kernel, point):
    # Spread evenly: the middle of each twentieth of the run.
    kill_after = kernel['up_calls'] * (2 * point + 1) // (2 * KILL_POINTS)
    killed, _calls = run_killed('topology', UP, kill_after)
    assert killed, f'the converge finished before request {kill_after}'
    left = {'namespaces': len(our_namespaces(kernel)), 'hub links': len(links(HUB)) if HUB in list_netns() else 0}
    try:
        result = converged(kernel)
    finally:
        torn_down(kernel)
    report(f'converge killed after request {kill_after}/{kernel["up_calls"]}', left=left, rerun=result['counts'])


def test_teardown_killed_halfway(kernel):
    converged(kernel)
    kill_after = kernel['down_calls'] // 2
    killed, _calls = run_killed('topology', DOWN, kill_after)
    assert killed
    left = len(our_namespaces(kernel))
    assert 0 < left < SITES + 1, left
    result = run_module('topology', DOWN)
    assert not result.get('failed'), result.get('msg')
    assert result['changed']
    again = run_module('topology', DOWN)
    assert not again.get('failed') and not again['changed'], again
    after = snapshot()
    assert not diff_snapshots(kernel['before'], after), diff_snapshots(kernel['before'], after)
    report(f'teardown killed after request {kill_after}/{kernel["down_calls"]}', left=left, rerun=result['counts'])


# ---------------------------------------------------------------------------
# what a kill can leave, made by hand

def test_namespace_file_without_namespace(kernel):
    """A run killed between making /run/netns/NAME and mounting the namespace on it (or between unmount and unlink)."""
    os.makedirs('/run/netns', exist_ok=True)
    for name in ('ghost1', 'ghost2'):
        open(f'/run/netns/{name}', 'x', encoding='ascii').close()
    topology = {'namespaces': [{'name': 'ghost1'}, {'name': 'other1'}],
                'veths': [{'name': 'v0', 'netns': 'ghost1', 'peer': 'v1', 'peer_netns': 'other1'}],
                'addresses': [{'dev': 'v0', 'netns': 'ghost1', 'address': '10.9.0.1/24'}]}
    try:
        # net_info over every namespace skips the file that holds none.
        info = run_module('net_info', {})
        assert not info.get('failed'), info.get('msg')
        assert 'ghost1' not in info['namespaces']
        predicted = run_module('topology', topology, check=True)
        assert not predicted.get('failed'), predicted.get('msg')
        made = run_module('topology', topology)
        assert not made.get('failed'), made.get('msg')
        assert [c for c in made['changes'] if c['kind'] == 'netns' and c['name'] == 'ghost1' and c['action'] == 'create'], made['changes']
        assert [c['name'] for c in predicted['changes']] == [c['name'] for c in made['changes']]
        assert 'v0' in links('ghost1'), 'not a namespace that can be entered'
        assert not run_module('topology', topology)['changed']
        # Teardown removes the empty file too.
        gone = run_module('netns', {'name': 'ghost2', 'state': 'absent'})
        assert not gone.get('failed') and gone['changed'], gone
        assert not os.path.exists('/run/netns/ghost2')
        down = run_module('topology', dict(topology, state='absent'))
        assert not down.get('failed'), down.get('msg')
    finally:
        for name in ('ghost1', 'ghost2', 'other1'):
            ip('netns', 'del', name, check=False)
            if os.path.exists(f'/run/netns/{name}'):
                os.unlink(f'/run/netns/{name}')
    assert not diff_snapshots(kernel['before'], snapshot()), diff_snapshots(kernel['before'], snapshot())


@pytest.mark.parametrize('old_left', [True, False], ids=['old-tunnel-still-there', 'old-tunnel-deleted'])
def test_tunnel_left_under_temporary_name(kernel, old_left):
    """A replace to another kind makes the new tunnel as lnt<hex>, deletes the old one, renames: killed in between."""
    ns = 'tmpname'
    ip('netns', 'add', ns)
    try:
        if old_left:
            ip('link', 'add', 'tun0', 'type', 'ipip', 'local', '10.7.0.1', 'remote', '10.7.0.2', netns=ns)
        ip('link', 'add', 'lnt0123abcd', 'type', 'gre', 'local', '10.7.0.1', 'remote', '10.7.0.2', netns=ns)
        topology = {'tunnels': [{'name': 'tun0', 'netns': ns, 'mode': 'gre', 'local': '10.7.0.1', 'remote': '10.7.0.2'}]}
        result = run_module('topology', topology)
        assert not result.get('failed'), result.get('msg')
        found = {name: link['linkinfo']['info_kind'] for name, link in links(ns).items() if name == 'tun0' or name.startswith('lnt')}
        assert found == {'tun0': 'gre'}, found
        assert not run_module('topology', topology)['changed']
    finally:
        ip('netns', 'del', ns)


def test_veth_end_not_where_declared(kernel):
    """Both ends in one namespace, as if the peer's move to its namespace never happened."""
    for ns in ('vhub', 'vsite'):
        ip('netns', 'add', ns)
    try:
        ip('link', 'add', 'hv0', 'type', 'veth', 'peer', 'name', 'uplink', netns='vhub')
        veth = {'name': 'hv0', 'netns': 'vhub', 'peer': 'uplink', 'peer_netns': 'vsite'}
        refused = run_module('topology', {'veths': [veth]})
        assert refused.get('failed') and 'recreate' in refused['msg'] and 'vhub' in refused['msg'], refused
        assert 'Traceback' not in refused['msg'] and 'exception' not in refused
        repaired = run_module('topology', {'veths': [dict(veth, recreate=True)]})
        assert not repaired.get('failed'), repaired.get('msg')
        assert 'uplink' in links('vsite') and 'uplink' not in links('vhub')
        assert not run_module('topology', {'veths': [dict(veth, recreate=True)]})['changed']
    finally:
        for ns in ('vhub', 'vsite'):
            ip('netns', 'del', ns, check=False)
