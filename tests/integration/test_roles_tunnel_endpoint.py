# Copyright (c) linuxnet.tunnels contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The tunnel_endpoint role on two "hosts" (namespaces) with mirrored variables.

Each site is a namespace wired to the other by a veth pair (the underlay).
One ansible-playbook run applies the role to both ends, as an inventory of
two servers would, twice: an ipip tunnel with the module's defaults and a gre
tunnel with a key, a fixed TTL and TOS inherit. Verified out of band
(`ip -d -j link`, addresses, routes, a ping through each tunnel); the same run
again changes nothing; state=absent takes the tunnels, their addresses and
their routes away and leaves the underlay alone. Every ansible-playbook run
costs tens of seconds under User-Mode Linux, hence one test.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from harness import addresses, ip, links, nm_keyfile, routes

GRE = {'tunnel_endpoint_key': '42', 'tunnel_endpoint_ttl': '64', 'tunnel_endpoint_tos': 'inherit'}


def sites(a: str, b: str) -> list[dict]:
    """Role variables of each end, mirrored: ipip (inner 10.255.0.0/30) and gre (10.255.1.0/30)."""
    out = []
    for mode, n, extra in (('ipip', 0, {}), ('gre', 1, GRE)):
        for netns, name, local, remote, me, peer, route in (
            (a, f'{mode}-b', '192.0.2.1', '192.0.2.2', 1, 2, f'198.51.{100 + n}.0/24'),
            (b, f'{mode}-a', '192.0.2.2', '192.0.2.1', 2, 1, f'203.0.{113 + n}.0/24'),
        ):
            out.append(dict(extra, tunnel_endpoint_name=name, tunnel_endpoint_mode=mode, tunnel_endpoint_netns=netns,
                            tunnel_endpoint_local=local, tunnel_endpoint_remote=remote,
                            tunnel_endpoint_address=f'10.255.{n}.{me}', tunnel_endpoint_peer=f'10.255.{n}.{peer}',
                            tunnel_endpoint_routes=[route]))
    return out


def play(tmp_path, endpoints: list[dict], state: str = 'present') -> int:
    """Apply the role once per endpoint in one playbook run; return the play's changed count."""
    proc = run_play(tmp_path, endpoints, state)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    recap = [line for line in proc.stdout.splitlines() if line.startswith('localhost') and 'changed=' in line][-1]
    return int(recap.split('changed=')[1].split()[0])


def run_play(tmp_path, endpoints: list[dict], state: str) -> subprocess.CompletedProcess:
    tasks = [
        {'name': f"Endpoint {vars_['tunnel_endpoint_name']}",
         'ansible.builtin.include_role': {'name': 'linuxnet.tunnels.tunnel_endpoint'},
         'vars': dict(vars_, tunnel_endpoint_state=state)}
        for vars_ in endpoints
    ]
    playbook = tmp_path / 'sites.yml'
    playbook.write_text(json.dumps([{'name': 'Tunnel endpoints', 'hosts': 'localhost', 'gather_facts': False, 'tasks': tasks}]))
    return subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), str(playbook)],
        capture_output=True, text=True, check=False,
        env=dict(os.environ, ANSIBLE_LOCALHOST_WARNING='false', ANSIBLE_NOCOLOR='1'),
    )


@pytest.fixture
def underlay(make_netns):
    """Two namespaces joined by a veth pair, 192.0.2.1/24 <-> 192.0.2.2/24."""
    a, b = make_netns('sa'), make_netns('sb')
    ip('link', 'add', 'ua', 'type', 'veth', 'peer', 'name', 'ub', 'netns', b, netns=a)
    ip('addr', 'add', '192.0.2.1/24', 'dev', 'ua', netns=a)
    ip('addr', 'add', '192.0.2.2/24', 'dev', 'ub', netns=b)
    ip('link', 'set', 'ua', 'up', netns=a)
    ip('link', 'set', 'ub', 'up', netns=b)
    return a, b


@pytest.mark.tunnel
def test_mirrored_sites(tmp_path, underlay):
    a, b = underlay
    endpoints = sites(a, b)
    assert play(tmp_path, endpoints) == 4

    for n, mode in enumerate(('ipip', 'gre')):
        link = links(a)[f'{mode}-b']
        assert link['linkinfo']['info_kind'] == mode, link
        data = link['linkinfo']['info_data']
        assert (data['local'], data['remote']) == ('192.0.2.1', '192.0.2.2'), data
        if mode == 'gre':
            assert data['ttl'] == 64 and data.get('ikey') == data.get('okey') == '0.0.0.42', data
        else:
            assert data.get('ttl', 0) == 0 and data.get('pmtudisc'), data  # the module's defaults: inherit, on
        inet = [(x['local'], x.get('address')) for x in addresses(f'{mode}-b', a) if x['family'] == 'inet']
        assert inet == [(f'10.255.{n}.1', f'10.255.{n}.2')]  # the kernel adds an IPv6 link-local one itself
        assert [(r['dst'], r['dev']) for r in routes(a, f'198.51.{100 + n}.0/24')] == [(f'198.51.{100 + n}.0/24', f'{mode}-b')]
        assert [(r['dst'], r['dev']) for r in routes(b, f'203.0.{113 + n}.0/24')] == [(f'203.0.{113 + n}.0/24', f'{mode}-a')]
        ping = subprocess.run(['ip', 'netns', 'exec', a, 'ping', '-n', '-c', '2', '-i', '0.2', '-W', '2', f'10.255.{n}.2'],
                              capture_output=True, text=True, check=False)
        assert ping.returncode == 0 and 'ttl=64' in ping.stdout, ping.stdout + ping.stderr

    assert play(tmp_path, endpoints) == 0

    assert play(tmp_path, endpoints, state='absent') == 4
    for mode in ('ipip', 'gre'):
        assert f'{mode}-b' not in links(a) and f'{mode}-a' not in links(b)
    assert routes(a, '198.51.100.0/24') == [] and routes(b, '203.0.114.0/24') == []
    assert 'ua' in links(a) and 'ub' in links(b)  # the underlay is not the role's


def test_persist_refuses_a_namespace(tmp_path):
    """Boot-time files configure the namespace the service runs in: refused before anything is touched."""
    files = tmp_path / 'network'
    files.mkdir()
    endpoint = dict(sites('lt-no-such-ns', 'lt-no-such-ns2')[0], tunnel_endpoint_persist='networkd',
                    tunnel_endpoint_persist_dir=str(files))
    proc = run_play(tmp_path, [endpoint], 'present')
    assert proc.returncode != 0 and 'leave tunnel_endpoint_netns empty' in proc.stdout, proc.stdout + proc.stderr
    assert os.listdir(files) == []


@pytest.mark.rootns
@pytest.mark.skipif(shutil.which('nmcli') is None, reason='nmcli is not installed (Debian package network-manager)')
def test_persist_networkmanager(tmp_path):
    """One set of variables: the gre tunnel now (in this kernel's own namespace) and its NetworkManager keyfile."""
    files = tmp_path / 'system-connections'
    files.mkdir()
    endpoint = {'tunnel_endpoint_name': 'nm-gre', 'tunnel_endpoint_mode': 'gre', 'tunnel_endpoint_key': '42',
                'tunnel_endpoint_ttl': '64', 'tunnel_endpoint_local': '192.0.2.1', 'tunnel_endpoint_remote': '192.0.2.2',
                'tunnel_endpoint_address': '10.255.9.1/30', 'tunnel_endpoint_routes': ['198.51.109.0/24'],
                'tunnel_endpoint_persist': 'networkmanager', 'tunnel_endpoint_persist_dir': str(files)}
    try:
        assert play(tmp_path, [endpoint]) == 2
        data = links()['nm-gre']['linkinfo']['info_data']
        assert (data['local'], data['remote'], data['ttl'], data.get('ikey')) == ('192.0.2.1', '192.0.2.2', 64, '0.0.0.42')
        assert [(a['local'], a['prefixlen']) for a in addresses('nm-gre') if a['family'] == 'inet'] == [('10.255.9.1', 30)]
        keyfile = files / 'linuxnet-nm-gre.nmconnection'
        assert oct(os.stat(keyfile).st_mode & 0o777) == '0o600'
        parsed = nm_keyfile(keyfile)
        assert dict(parsed['ip-tunnel']) == {'mode': '2', 'local': '192.0.2.1', 'remote': '192.0.2.2', 'ttl': '64',
                                             'input-key': '42', 'output-key': '42'}
        assert dict(parsed['ipv4']) == {'method': 'manual', 'address1': '10.255.9.1/30', 'route1': '198.51.109.0/24,0.0.0.0,0'}
        assert play(tmp_path, [endpoint]) == 0
        assert play(tmp_path, [endpoint], state='absent') == 2
        assert os.listdir(files) == [] and 'nm-gre' not in links()
    finally:
        ip('link', 'del', 'nm-gre', check=False)
