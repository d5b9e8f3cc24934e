"""The tunnel mesh plan applied to a real kernel: four sites, each a namespace
with an uplink to a forwarding router, each given its part of the plan of
linuxnet.tunnels.tunnel_mesh_plan in one topology call (what the
tunnel_mesh role's topology task does on each host). Needs gre:

    scripts/uml-run --timeout 1500 -- .venv/bin/pytest -q -p no:cacheprovider tests/integration/test_mesh_kernel.py
"""

from __future__ import annotations

import pytest

from harness import addresses, assert_rhythm, links, nm_keyfile, rhythm, run_module, unique

from ansible_collections.linuxnet.tunnels.plugins.filter.tunnel_mesh import tunnel_mesh_plan

PREFIX = 'mesh-'


def in_netns(items: list[dict], netns: str) -> list[dict]:
    """Plan items for the host running in `netns` (the role's host runs inside it and needs no netns)."""
    return [dict(item, netns=netns) for item in items]


def apply(plan: dict, netns: str) -> list[dict]:
    return rhythm('topology', {'tunnels': in_netns(plan['tunnels'], netns), 'addresses': in_netns(plan['addresses'], netns),
                               'routes': in_netns(plan['routes'], netns)})


def mesh_links(netns: str) -> dict:
    return {name: link for name, link in links(netns).items()
            if name.startswith(PREFIX) and link.get('linkinfo', {}).get('info_kind') == 'gre'}


@pytest.fixture
def sites():
    """Four site namespaces with uplinks to a router: underlay 10.0.i.2, LAN 192.168.i.1/24 on lo."""
    router = unique('r')
    names = {f'site{i}': unique(f's{i}') for i in range(1, 5)}
    topo = {'namespaces': [{'name': router}] + [{'name': ns} for ns in names.values()], 'veths': [], 'links': [],
            'addresses': [], 'routes': [], 'sysctls': [{'name': 'net.ipv4.ip_forward', 'value': '1', 'netns': router}]}
    for i, ns in enumerate(names.values(), start=1):
        topo['veths'].append({'name': 'uplink', 'netns': ns, 'peer': f'up{i}', 'peer_netns': router})
        topo['links'].append({'name': 'lo', 'netns': ns, 'state': 'up'})
        topo['addresses'] += [{'dev': 'uplink', 'netns': ns, 'address': f'10.0.{i}.2/24'},
                              {'dev': f'up{i}', 'netns': router, 'address': f'10.0.{i}.1/24'},
                              {'dev': 'lo', 'netns': ns, 'address': f'192.168.{i}.1/24'}]
        topo['routes'].append({'dest': '10.0.0.0/16', 'gateway': f'10.0.{i}.1', 'netns': ns})
    result = run_module('topology', topo)
    assert not result.get('failed'), result.get('msg')
    hostvars = {host: {'tunnel_mesh_underlay': f'10.0.{i}.2', 'tunnel_mesh_networks': [f'192.168.{i}.0/24']}
                for i, host in enumerate(names, start=1)}
    try:
        yield names, hostvars
    finally:
        run_module('topology', {'namespaces': topo['namespaces'], 'state': 'absent'})


def plan_for(hostvars: dict, host: str, hosts: list[str], netns: str) -> dict:
    info = run_module('net_info', {'netns': netns})
    return tunnel_mesh_plan(hostvars, host, hosts, mode='gre', pool='10.255.0.0/24', prefix=PREFIX,
                            existing=info['namespaces'][netns]['links'])


@pytest.mark.tunnel
def test_a_full_mesh_connects_every_pair_and_a_leaving_host_takes_only_its_tunnels(sites):
    names, hostvars = sites
    hosts = list(names)
    plans = {host: plan_for(hostvars, host, hosts, names[host]) for host in hosts}
    for host, plan in plans.items():
        assert_rhythm(apply(plan, names[host]))

    # out of band: three gre tunnels per site, to the three others' underlays
    for i, host in enumerate(hosts, start=1):
        got = mesh_links(names[host])
        assert sorted(link['linkinfo']['info_data']['remote'] for link in got.values()) == sorted(
            f'10.0.{j}.2' for j in range(1, 5) if j != i)
        assert {link['linkinfo']['info_data']['local'] for link in got.values()} == {f'10.0.{i}.2'}
        for peer in plans[host]['peers']:
            inner = [(a['local'], a['prefixlen']) for a in addresses(peer['name'], names[host]) if a['family'] == 'inet']
            assert inner == [(peer['address'], 31)]
    # every inner address (the plan's probes, as the role pings them) and every LAN answers through its tunnel
    for host, plan in plans.items():
        lans = [{'label': f"{p['host']} LAN", 'dest': hostvars[p['host']]['tunnel_mesh_networks'][0].replace('.0/24', '.1')}
                for p in plan['peers']]
        result = run_module('ping', {'probes': plan['probes'] + lans, 'netns': names[host], 'count': 1})
        assert not result.get('failed'), (host, result.get('msg'))
        assert [(p['label'], p['received']) for p in result['probes']] == [(p['label'], 1) for p in plan['probes'] + lans]

    # site4 leaves; a decoy on site1 carries the prefix but is no mesh tunnel
    run_module('tunnel', {'name': 'mesh-uplink1', 'netns': names['site1'], 'mode': 'gre', 'local': '10.0.1.2', 'remote': '10.0.9.9'})
    rest = hosts[:3]
    for host in rest:
        plan = plan_for(hostvars, host, rest, names[host])
        assert plan['stale'] == [p['name'] for p in plans[host]['peers'] if p['host'] == 'site4']
        assert_rhythm(apply(plan, names[host]))
        assert sorted(mesh_links(names[host])) == sorted(p['name'] for p in plans[host]['peers'] if p['host'] != 'site4') + (
            ['mesh-uplink1'] if host == 'site1' else [])
    assert len(mesh_links(names['site4'])) == 3  # the host that left is not touched by the others


@pytest.mark.parametrize('backend', ['networkd', 'networkmanager'])
def test_the_plan_items_are_what_persist_takes_with_either_backend(tmp_path, backend):
    """The role's persist task: the plan's lists as they are, stale tunnels included (their files removed)."""
    hostvars = {f'site{i}': {'tunnel_mesh_underlay': f'10.0.{i}.2', 'tunnel_mesh_networks': [f'192.168.{i}.0/24']}
                for i in range(1, 4)}
    links_now = [{'name': PREFIX + 'abcdefgh', 'tunnel': {'mode': 'gre'}}]
    plan = tunnel_mesh_plan(hostvars, 'site1', list(hostvars), pool='10.255.0.0/24', prefix=PREFIX, existing=links_now)
    params = {'backend': backend, 'dir': str(tmp_path), 'tunnels': plan['tunnels'], 'addresses': plan['addresses'],
              'routes': plan['routes']}
    assert_rhythm(rhythm('persist', params))
    peer = plan['peers'][0]
    if backend == 'networkd':
        network = (tmp_path / f"10-linuxnet-{peer['name']}.network").read_text()
        assert f"Address={peer['address']}/31" in network and 'Destination=192.168.' in network
    else:
        keyfile = nm_keyfile(tmp_path / f"linuxnet-{peer['name']}.nmconnection")
        assert keyfile['ipv4']['address1'].startswith(f"{peer['address']}/31")
    assert len(list(tmp_path.iterdir())) == (4 if backend == 'networkd' else 2)
    assert_rhythm(rhythm('persist', dict(params, state='absent')))
    assert not list(tmp_path.iterdir())
