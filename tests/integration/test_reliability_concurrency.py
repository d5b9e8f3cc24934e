# Copyright (c) linuxnet.tunnels contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Concurrent runs: they end correctly (or one fails cleanly), and what they built works.

- Two converges of the whole lab (the ipip_lab role's topology) started at the
  same moment, in forked processes (tunnel: under scripts/uml-run); two
  different labs (ipip and gre) at once; the same lab twice at once, one run
  with purge and one without.
- Eight creators of one namespace through the netns module at once (native).
- A play with forks over 20 hosts, each a namespace reached through the
  linuxnet.tunnels.netns connection plugin, each building its own veth and
  addresses (native: only namespaces the test made are touched).

    .venv/bin/pytest -q -p no:cacheprovider tests/integration/test_reliability_concurrency.py
    scripts/uml-run --timeout 1200 -- .venv/bin/pytest -q -p no:cacheprovider -m tunnel tests/integration/test_reliability_concurrency.py
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import traceback

import pytest
import yaml

from harness import addresses, ip, links, list_netns, run_module, unique
from reliability.common import lab_pings, lab_topology, playbook, wait_link_gone

FORK = multiprocessing.get_context('fork')


def _child(barrier, queue, module: str, params: dict) -> None:
    """Run one module when every sibling is ready; send back (result or None, traceback)."""
    try:
        barrier.wait(timeout=60)
        queue.put((os.getpid(), run_module(module, params), ''))
    except BaseException:  # a traceback is a finding: hand it to the parent
        queue.put((os.getpid(), None, traceback.format_exc()))


def run_at_once(module: str, params_list: list[dict], timeout: float = 300) -> list[dict]:
    """Every params in its own forked process, released together by a barrier."""
    barrier = FORK.Barrier(len(params_list))
    queue = FORK.Queue()
    procs = [FORK.Process(target=_child, args=(barrier, queue, module, params)) for params in params_list]
    for proc in procs:
        proc.start()
    results = []
    try:
        for _proc in procs:
            _pid, result, tb = queue.get(timeout=timeout)
            assert result is not None, f'{module} raised in a concurrent run:\n{tb}'
            results.append(result)
    finally:
        for proc in procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.kill()
    return results


def assert_clean(result: dict) -> None:
    """Succeeded, or failed with a readable message and no traceback."""
    if result.get('failed'):
        msg = result.get('msg') or ''
        assert msg and 'Traceback' not in msg and 'exception' not in result, result


# ---------------------------------------------------------------------------

@pytest.mark.parametrize('creators', [8])
def test_concurrent_namespace_creators(creators):
    name = unique('cc')
    try:
        results = run_at_once('netns', [{'name': name}] * creators)
        for result in results:
            assert_clean(result)
        ok = [r for r in results if not r.get('failed')]
        assert ok, [r.get('msg') for r in results]
        assert [r['changed'] for r in ok].count(True) <= 1, 'more than one run says it created the namespace'
        assert list_netns().count(name) == 1
        # A real namespace, not an empty placeholder file: it can be entered.
        assert ip('link', 'show', 'lo', netns=name, check=False).returncode == 0
        assert not run_module('netns', {'name': name})['changed']
    finally:
        ip('netns', 'del', name, check=False)
    assert name not in list_netns()


def test_concurrent_namespace_creators_and_deleters():
    """Creators and deleters racing: each run ends cleanly; the namespace is whole or gone."""
    name = unique('cd')
    try:
        params = [{'name': name, 'state': 'present' if i % 2 == 0 else 'absent'} for i in range(8)]
        for result in run_at_once('netns', params):
            assert_clean(result)
        if name in list_netns():
            assert ip('link', 'show', 'lo', netns=name, check=False).returncode == 0, 'a namespace file that cannot be entered'
        assert not os.path.exists(f'/run/netns/{name}') or name in list_netns()
    finally:
        ip('netns', 'del', name, check=False)


@pytest.mark.tunnel
@pytest.mark.parametrize('round_', [1, 2, 3])
def test_two_lab_converges_at_once(round_):
    overrides = {'ipip_lab_ns1': unique('c1'), 'ipip_lab_ns2': unique('c2'), 'ipip_lab_router_netns': unique('cr')}
    topology = lab_topology(overrides)
    try:
        results = run_at_once('topology', [topology, topology])
        for result in results:
            assert_clean(result)
        succeeded = [r for r in results if not r.get('failed')]
        assert succeeded, '\n\n'.join(r.get('msg') for r in results)
        # A run that says it succeeded must leave the whole lab: nothing left to do.
        again = run_module('topology', topology)
        assert not again.get('failed'), again.get('msg')
        failures = [r.get('msg') for r in results if r.get('failed')]
        assert not again['changed'], f"a concurrent run reported success but the lab was incomplete: {again['changes']}; failures: {failures}"
        for probe in lab_pings(overrides):
            result = run_module('ping', {'dest': probe['dest'], 'netns': probe['netns'], 'count': 1, 'timeout': 2})
            assert not result.get('failed'), f"{probe['label']}: {result.get('msg')}"
            assert result['ttl'] == probe['ttl']
    finally:
        down = {'namespaces': topology['namespaces'], 'veths': topology['veths'], 'state': 'absent'}
        run_module('topology', down)
        for name in overrides.values():
            ip('netns', 'del', name, check=False)


def lab_overrides(stem: str, **more) -> dict:
    return dict({'ipip_lab_ns1': unique(f'{stem}1'), 'ipip_lab_ns2': unique(f'{stem}2'), 'ipip_lab_router_netns': unique(f'{stem}r')}, **more)


def assert_lab_works(overrides: dict, topology: dict) -> None:
    """Nothing left to do, and every ping of the lab passes."""
    again = run_module('topology', topology)
    assert not again.get('failed'), again.get('msg')
    assert not again['changed'], again['changes']
    for probe in lab_pings(overrides):
        result = run_module('ping', {'dest': probe['dest'], 'netns': probe['netns'], 'count': 1, 'timeout': 2})
        assert not result.get('failed'), f"{probe['label']}: {result.get('msg')}"
        assert result['ttl'] == probe['ttl']


def remove_lab(overrides: dict, topology: dict) -> None:
    run_module('topology', {'namespaces': topology['namespaces'], 'veths': topology['veths'], 'state': 'absent'})
    for name in overrides.values():
        if name in list_netns():
            ip('netns', 'del', name, check=False)


@pytest.mark.tunnel
def test_two_different_labs_at_once():
    """An ipip lab and a gre lab, same link names and addresses, in their own namespaces, converged together."""
    labs = [lab_overrides('da'), lab_overrides('db', ipip_lab_mode='gre')]
    topologies = [lab_topology(overrides) for overrides in labs]
    try:
        results = run_at_once('topology', topologies)
        for result in results:
            assert not result.get('failed'), result.get('msg')
            assert result['changed']
        for overrides, topology in zip(labs, topologies):
            assert_lab_works(overrides, topology)
    finally:
        for overrides, topology in zip(labs, topologies):
            remove_lab(overrides, topology)


@pytest.mark.tunnel
def test_same_lab_twice_at_once_with_and_without_purge():
    """One run purges what the lab does not declare (a stray link in a lab namespace), the other does not."""
    overrides = lab_overrides('dp')
    topology = lab_topology(overrides)
    ns1 = overrides['ipip_lab_ns1']
    try:
        ip('netns', 'add', ns1)
        ip('link', 'add', 'stray0', 'type', 'dummy', netns=ns1)
        results = run_at_once('topology', [dict(topology, purge=False), dict(topology, purge=True)])
        for result in results:
            assert_clean(result)
        assert not results[1].get('failed'), results[1].get('msg')
        assert 'stray0' not in links(ns1)
        assert_lab_works(overrides, dict(topology, purge=True))
    finally:
        remove_lab(overrides, topology)


def test_rollback_spares_what_another_run_made(monkeypatch):
    """The deterministic form of a race seen in test_two_lab_converges_at_once.

    Run B creates a namespace, run A (concurrently) puts its veth in it, then
    B fails on a later item and rolls back. B may remove what B created, but
    not A's veth; removing the namespace "with everything in it" also deletes
    A's veth end in A's other namespace, and A's run then fails or leaves an
    incomplete lab behind while reporting success.
    """
    from ansible_collections.linuxnet.tunnels.plugins.module_utils._veth import VethResource

    new, other = unique('rb'), unique('ro')
    taken, theirs, theirs_peer = unique('t')[:12], unique('a')[:12], unique('p')[:12]
    ip('netns', 'add', other)
    try:
        ip('link', 'add', taken, 'type', 'veth', 'peer', 'name', 'z' + taken, netns=other)
        original = VethResource._check_peer_name_free
        done = []

        def another_run_meanwhile(self, current):
            # Between B's namespace step and B's failing veth step: A's veth lands in it.
            if not done and new in list_netns():
                ip('link', 'add', theirs, 'type', 'veth', 'peer', 'name', theirs_peer, 'netns', other, netns=new)
                done.append(True)
            return original(self, current)

        monkeypatch.setattr(VethResource, '_check_peer_name_free', another_run_meanwhile)
        result = run_module('topology', {
            'namespaces': [{'name': new}],
            'veths': [{'name': 'x0', 'peer': taken, 'netns': new, 'peer_netns': other}],
        })
        monkeypatch.undo()
        assert done, 'the other run never got its turn'
        assert result.get('failed') and taken in result['msg'], result
        wait_link_gone(theirs_peer, other, timeout=2)  # a veth end goes a little after its namespace
        assert theirs_peer in links(other), (
            f"the rollback of a failed run deleted another run's veth ({theirs} in {new} <-> {theirs_peer} in {other}): "
            f"{result['msg']}")
    finally:
        for name in (new, other):
            ip('netns', 'del', name, check=False)


# ---------------------------------------------------------------------------

HOSTS_PLAY = '''
- name: Twenty namespaces, each its own host
  hosts: all
  gather_facts: false
  tasks:
    - name: A veth pair with an address on each end, lo up
      linuxnet.tunnels.topology:
        veths: [{name: a0, peer: b0}]
        links: [{name: lo, state: up}]
        addresses:
          - {dev: a0, address: "10.{{ host_index }}.0.1/24"}
          - {dev: b0, address: "10.{{ host_index }}.0.2/24"}
    - name: Ping across the pair
      linuxnet.tunnels.ping:
        dest: "10.{{ host_index }}.0.2"
        count: 1
    - name: Converge again
      linuxnet.tunnels.topology:
        veths: [{name: a0, peer: b0}]
        links: [{name: lo, state: up}]
        addresses:
          - {dev: a0, address: "10.{{ host_index }}.0.1/24"}
          - {dev: b0, address: "10.{{ host_index }}.0.2/24"}
      register: again
    - name: Nothing changed the second time
      ansible.builtin.assert:
        that: not again.changed
'''


def test_forks_over_twenty_namespace_hosts(tmp_path):
    connection = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                              'plugins', 'connection', 'netns.py')
    if not os.path.exists(connection):
        pytest.skip('the linuxnet.tunnels.netns connection plugin is not there yet')
    hosts = [unique('fh') for _host in range(20)]
    host_links = set(links(None))
    try:
        for name in hosts:
            ip('netns', 'add', name)
        inventory = {'all': {
            'vars': {'ansible_connection': 'linuxnet.tunnels.netns', 'ansible_python_interpreter': sys.executable},
            'hosts': {name: {'host_index': index + 1} for index, name in enumerate(hosts)},
        }}
        inv = tmp_path / 'inventory.yml'
        inv.write_text(yaml.safe_dump(inventory))
        play = tmp_path / 'play.yml'
        play.write_text(HOSTS_PLAY)
        proc = playbook(tmp_path, str(play), inventory=str(inv), args=('--forks', '20'))
        out = proc.stdout
        assert proc.returncode == 0, out[-5000:]
        recap = [line for line in out.splitlines() if ' : ok=' in line]
        assert len(recap) == 20, out[-3000:]
        assert all('failed=0' in line and 'unreachable=0' in line for line in recap), '\n'.join(recap)
        for index, name in enumerate(hosts, start=1):
            found = links(name)
            assert {'a0', 'b0'} <= set(found), (name, list(found))
            assert [a for a in addresses('a0', name) if a.get('local') == f'10.{index}.0.1'], name
        # Nothing landed in the namespace the play ran from.
        assert not {'a0', 'b0'} & (set(links(None)) - host_links), set(links(None)) - host_links
    finally:
        for name in hosts:
            ip('netns', 'del', name, check=False)
    assert not set(hosts) & set(list_netns())
