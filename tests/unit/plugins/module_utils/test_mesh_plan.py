"""The plan of a tunnel mesh (plugins/module_utils/_mesh.py): pure, no hosts, no kernel."""

from __future__ import annotations

import ipaddress
import itertools
import re

import pytest

from ansible_collections.linuxnet.tunnels.plugins.module_utils._mesh import (
    MeshError,
    allocate,
    host_id,
    id_length,
    matrix,
    pairs,
    plan,
    stale,
)


def sites(n: int, **extra) -> dict:
    """hostvars of n sites: underlay 192.0.2.i, network 10.i.0.0/16."""
    return {f'site{i}': dict({'tunnel_mesh_underlay': f'192.0.2.{i}', 'tunnel_mesh_networks': [f'10.{i}.0.0/16']}, **extra)
            for i in range(1, n + 1)}


def mesh(hostvars: dict, host: str, **options) -> dict:
    options.setdefault('pool', '172.31.0.0/16')
    return plan(hostvars, host, list(hostvars), **options)


def test_full_mesh_pairs_every_host_once():
    hosts = [f'h{i}' for i in range(5)]
    got = pairs(hosts, 'full', None)
    assert len(got) == 10 and len(set(got)) == 10
    assert all(a < b for a, b in got)


def test_hub_pairs_every_spoke_with_the_hub():
    assert pairs(['a', 'hub', 'z'], 'hub', 'hub') == [('a', 'hub'), ('hub', 'z')]


def test_full_mesh_both_ends_mirror_each_other():
    hostvars = sites(5)
    plans = {host: mesh(hostvars, host) for host in hostvars}
    for host, mine in plans.items():
        assert len(mine['tunnels']) == 4
        for peer in mine['peers']:
            theirs = next(p for p in plans[peer['host']]['peers'] if p['host'] == host)
            assert (peer['address'], peer['peer']) == (theirs['peer'], theirs['address'])
            assert peer['remote'] == hostvars[peer['host']]['tunnel_mesh_underlay']
            assert peer['local'] == hostvars[host]['tunnel_mesh_underlay']
            assert peer['routes'] == hostvars[peer['host']]['tunnel_mesh_networks']
            tunnel = next(t for t in mine['tunnels'] if t['name'] == peer['name'])
            assert tunnel == {'name': peer['name'], 'mode': 'gre', 'local': peer['local'], 'remote': peer['remote']}
            assert {'dev': peer['name'], 'address': f"{peer['address']}/31"} in mine['addresses']
            assert {'label': peer['host'], 'dest': peer['peer']} in mine['probes']
            # the peer's network goes through the tunnel to the peer, and nothing else does
            assert [r['dest'] for r in mine['routes'] if r['dev'] == peer['name']] == hostvars[peer['host']]['tunnel_mesh_networks']


def test_every_pair_gets_its_own_block_of_the_pool():
    hostvars = sites(20)
    blocks = set()
    for host in hostvars:
        for peer in mesh(hostvars, host)['peers']:
            low = min(ipaddress.ip_address(peer['address']), ipaddress.ip_address(peer['peer']))
            assert int(low) % 2 == 0 and ipaddress.ip_address(peer['peer']) in ipaddress.ip_network('172.31.0.0/16')
            blocks.add(low)
    assert len(blocks) == 190


def test_the_first_host_of_a_pair_takes_the_even_address():
    peer = mesh(sites(2), 'site1')['peers'][0]
    assert int(ipaddress.ip_address(peer['address'])) % 2 == 0
    assert int(ipaddress.ip_address(peer['peer'])) == int(ipaddress.ip_address(peer['address'])) + 1


def test_hub_shape_routes_other_spokes_through_the_hub():
    hostvars = sites(4)
    hub = mesh(hostvars, 'site1', shape='hub', hub='site1')
    spoke = mesh(hostvars, 'site2', shape='hub', hub='site1')
    assert len(hub['tunnels']) == 3 and len(spoke['tunnels']) == 1
    assert sorted(r['dest'] for r in hub['routes']) == ['10.2.0.0/16', '10.3.0.0/16', '10.4.0.0/16']
    assert [r['dest'] for r in spoke['routes']] == ['10.1.0.0/16', '10.3.0.0/16', '10.4.0.0/16']
    assert {r['dev'] for r in spoke['routes']} == {spoke['tunnels'][0]['name']}


def test_names_are_the_prefix_and_the_peers_id():
    hostvars = sites(3)
    got = mesh(hostvars, 'site1', prefix='mesh-')
    assert sorted(t['name'] for t in got['tunnels']) == sorted(['mesh-' + host_id('site2', 8), 'mesh-' + host_id('site3', 8)])
    assert all(re.fullmatch(r'mesh-[a-z2-7]{8}', t['name']) for t in got['tunnels'])
    longest = mesh(hostvars, 'site1', prefix='backbone-gr')  # 11 + 4 = 15 characters
    assert {len(t['name']) for t in longest['tunnels']} == {15}


@pytest.mark.parametrize('prefix, length', [('m', 8), ('mesh-', 8), ('mesh-tun-', 6), ('0123456789a', 4)])
def test_id_length_fills_the_name(prefix, length):
    assert id_length(prefix) == length


def test_ids_and_names_do_not_depend_on_the_other_hosts():
    hostvars = sites(6)
    everyone = {p['host']: p['name'] for p in mesh(hostvars, 'site1')['peers']}
    fewer = {p['host']: p['name'] for p in mesh({h: hostvars[h] for h in ('site1', 'site3', 'site6')}, 'site1')['peers']}
    assert fewer == {h: everyone[h] for h in ('site3', 'site6')}


def test_addresses_stay_when_hosts_come_and_go():
    """A pair alone on its first-choice block keeps it in every subset of the mesh."""
    pool = ipaddress.ip_network('172.31.0.0/16')
    hosts = [f'site{i}' for i in range(1, 21)]
    whole = allocate(pairs(hosts, 'full', None), pool)
    first = {pair: allocate([pair], pool)[pair] for pair in whole}
    unmoved = {pair for pair in whole if whole[pair] == first[pair]}
    assert len(unmoved) >= 185  # of 190 in a /16: contests are rare
    for leaving in (['site3'], ['site1', 'site20'], hosts[10:]):
        rest = [h for h in hosts if h not in leaving]
        smaller = allocate(pairs(rest, 'full', None), pool)
        for pair, block in smaller.items():
            if pair in unmoved:
                assert block == whole[pair]


def test_a_contested_block_goes_to_the_smaller_hash_and_the_other_pair_moves_on():
    pool = ipaddress.ip_network('172.31.0.0/29')  # 4 blocks: contests are certain among 4 pairs or more
    all_pairs = list(itertools.combinations([f'h{i}' for i in range(8)], 2))
    contested = next((p, q) for p, q in itertools.combinations(all_pairs, 2)
                     if allocate([p], pool)[p] == allocate([q], pool)[q])
    both = allocate(list(contested), pool)
    assert both[contested[0]] != both[contested[1]]
    winner = next(pair for pair in contested if both[pair] == allocate([pair], pool)[pair])
    loser = contested[1] if winner == contested[0] else contested[0]
    assert allocate(list(reversed(contested)), pool) == both  # the order of the input does not matter
    assert allocate([loser], pool)[loser] == both[winner]  # alone, the loser gets its first choice back


def test_a_full_pool_is_used_to_the_last_block():
    pool = ipaddress.ip_network('172.31.0.0/28')  # 8 blocks
    got = allocate(pairs(['a', 'b', 'c', 'd'], 'full', None) + [('e', 'f'), ('g', 'h')], pool)
    assert len(set(got.values())) == 8


def test_ipv6_pool_gives_127s():
    hostvars = sites(3)
    hostvars6 = {h: dict(v, tunnel_mesh_networks=[f'fd{i}::/48']) for i, (h, v) in enumerate(hostvars.items(), start=1)}
    peer = mesh(hostvars6, 'site1', mode='sit', pool='fd00:ffff::/64')['peers'][0]
    assert ipaddress.ip_address(peer['address']).version == 6
    assert abs(int(ipaddress.ip_address(peer['address'])) - int(ipaddress.ip_address(peer['peer']))) == 1
    assert mesh(hostvars6, 'site1', mode='sit', pool='fd00:ffff::/64')['addresses'][0]['address'].endswith('/127')
    gre6 = mesh(hostvars6, 'site1', mode='gre', pool='fd00:ffff::/64')
    assert gre6['peers'] and gre6['tunnels'][0]['mode'] == 'gre'


def test_a_host_outside_the_mesh_plans_nothing_and_removes_its_mesh_tunnels():
    hostvars = sites(3)
    links = [{'name': 'mesh-' + host_id('site2', 8), 'tunnel': {'mode': 'gre'}}]
    got = plan(hostvars, 'gone', ['site1', 'site2', 'site3'], pool='172.31.0.0/16', existing=links)
    assert got['stale'] == [links[0]['name']]
    assert got['tunnels'] == [{'name': links[0]['name'], 'state': 'absent'}] and got['addresses'] == got['routes'] == []


def test_stale_takes_only_the_mesh_s_tunnels():
    old = 'mesh-' + host_id('gone', 8)
    links = [
        {'name': old, 'tunnel': {'mode': 'gre'}},
        {'name': 'mesh-' + host_id('site2', 8), 'tunnel': {'mode': 'gre'}},  # still planned
        {'name': 'mesh-uplink1', 'tunnel': {'mode': 'gre'}},  # the prefix, but not an id (1 is not base32)
        {'name': 'mesh-abcdefg', 'tunnel': {'mode': 'gre'}},  # 7 characters, not 8
        {'name': 'mesh-abcdefgh', 'kind': 'veth'},  # not a tunnel
        {'name': 'other-abcdefgh', 'tunnel': {'mode': 'gre'}},
        {'name': 'lo'},
    ]
    assert stale(links, 'mesh-', {'mesh-' + host_id('site2', 8)}) == [old]


def test_removing_a_host_makes_its_tunnels_stale_on_the_others():
    hostvars = sites(5)
    before = mesh(hostvars, 'site1')
    links = [{'name': t['name'], 'tunnel': t} for t in before['tunnels']]
    del hostvars['site5']
    after = mesh(hostvars, 'site1', existing=links)
    gone = 'mesh-' + host_id('site5', 8)
    assert after['stale'] == [gone]
    assert after['tunnels'] == [t for t in before['tunnels'] if t['name'] != gone] + [{'name': gone, 'state': 'absent'}]


BAD = [
    ('two hosts with one underlay address', {'hostvars': {'a': {'tunnel_mesh_underlay': '192.0.2.1'}, 'b': {'tunnel_mesh_underlay': '192.0.2.1'}}},
     'tunnel_mesh_underlay: hosts a and b have the same underlay address 192.0.2.1'),
    ('a pool too small for the pairs', {'pool': '172.31.0.0/29'},
     'tunnel_mesh_pool: 172.31.0.0/29 holds 4 /31 blocks but the mesh has 10 tunnels; use a pool of at least /27'),
    ('a pool with no block', {'pool': '172.31.0.1/32'}, 'tunnel_mesh_pool: 172.31.0.1/32 holds 0 /31 blocks'),
    ('a prefix that leaves no room for the id', {'prefix': 'backbone-mesh'},
     "tunnel_mesh_prefix: 'backbone-mesh' is 13 bytes long and leaves 2 of the 15 characters"),
    ('a prefix longer than a name', {'prefix': 'a-very-long-prefix'},
     "tunnel_mesh_prefix: 'a-very-long-prefix' is 18 bytes long and leaves 0 of the 15 characters"),
    ('an empty prefix', {'prefix': ''}, "tunnel_mesh_prefix: '' is not a valid start"),
    ('a prefix with a slash', {'prefix': 'me/sh'}, "tunnel_mesh_prefix: 'me/sh' is not a valid start"),
    ('a hub not in the play', {'shape': 'hub', 'hub': 'elsewhere'}, "tunnel_mesh_hub: 'elsewhere' is not one of the mesh's hosts (site1, site2"),
    ('a hub shape without a hub', {'shape': 'hub'}, 'tunnel_mesh_hub: required when tunnel_mesh_shape is hub'),
    ('an unknown shape', {'shape': 'ring'}, "tunnel_mesh_shape: 'ring' is not one of full, hub"),
    ('an unknown mode', {'mode': 'vti'}, "tunnel_mesh_mode: 'vti' is not one of gre, ipip, sit"),
    ('ipip with an IPv6 pool', {'mode': 'ipip', 'pool': 'fd00::/64'}, 'tunnel_mesh_pool: fd00::/64 is IPv6; ipip tunnels need an IPv4 pool'),
    ('sit with an IPv4 pool', {'mode': 'sit'}, 'tunnel_mesh_pool: 172.31.0.0/16 is IPv4; sit tunnels need an IPv6 pool'),
    ('a pool that is no prefix', {'pool': '172.31.0.1/16'}, "tunnel_mesh_pool: '172.31.0.1/16' is not a prefix (172.31.0.1/16 has host bits set)"),
    ('a host without underlay', {'hostvars': {'a': {'tunnel_mesh_underlay': '192.0.2.1'}, 'b': {}}},
     'tunnel_mesh_underlay: host b has none'),
    ('an underlay that is no address', {'hostvars': {'a': {'tunnel_mesh_underlay': 'site-b.example'}}},
     "tunnel_mesh_underlay: 'site-b.example' of host a is not an IP address"),
    ('an IPv6 underlay', {'hostvars': {'a': {'tunnel_mesh_underlay': '2001:db8::1'}}}, 'tunnel_mesh_underlay: 2001:db8::1 of host a is IPv6'),
    ('a network of the wrong family', {'mode': 'ipip', 'hostvars': {'a': {'tunnel_mesh_underlay': '192.0.2.1', 'tunnel_mesh_networks': ['fd00::/64']}}},
     'tunnel_mesh_networks: fd00::/64 of host a is IPv6; ipip carries IPv4 only'),
    ('networks as a string', {'hostvars': {'a': {'tunnel_mesh_underlay': '192.0.2.1', 'tunnel_mesh_networks': '10.0.0.0/8'}}},
     "tunnel_mesh_networks: host a has '10.0.0.0/8', not a list of prefixes"),
    ('one network routed to two hosts', {'hostvars': {'a': {'tunnel_mesh_underlay': '192.0.2.1', 'tunnel_mesh_networks': ['10.0.0.0/8']},
                                                      'b': {'tunnel_mesh_underlay': '192.0.2.2', 'tunnel_mesh_networks': ['10.0.0.0/8']}}},
     'tunnel_mesh_networks: 10.0.0.0/8 is routed to both a and b'),
]


def test_a_host_outside_the_inventory_is_refused():
    with pytest.raises(MeshError, match='^tunnel_mesh_hosts: zz is not a host of the inventory$'):
        plan(sites(2), 'site1', ['site1', 'site2', 'zz'], pool='172.31.0.0/16')


@pytest.mark.parametrize('case, options, message', BAD, ids=[row[0] for row in BAD])
def test_bad_inputs_are_refused_with_a_clear_message(case, options, message):
    options = dict(options)
    hostvars = options.pop('hostvars', sites(5))
    with pytest.raises(MeshError) as err:
        mesh(hostvars, next(iter(hostvars)), **options)
    assert str(err.value).startswith(message), case


def test_matrix():
    pings = {'a': [{'host': 'b', 'reached': True}], 'b': [{'host': 'a', 'reached': False}]}
    assert matrix(pings, ['a', 'b', 'c']) == [
        '        a    b    c',
        'a       -   ok    -',
        'b    LOST    -    -',
        'c       ?    ?    ?',
    ]
