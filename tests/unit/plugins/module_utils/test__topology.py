"""Topology logic that needs no kernel: items, cross-checks, order and check-mode predictions.

The namespaces named here do not exist, so nothing is read: a namespace the
topology makes is empty, and every prediction comes from the resources.
"""

from __future__ import annotations

import uuid

import pytest

from ansible_collections.linuxnet.tunnels.plugins.module_utils._errors import ResourceError
from ansible_collections.linuxnet.tunnels.plugins.module_utils._netlink import Netlink
from ansible_collections.linuxnet.tunnels.plugins.module_utils._resource import CREATE, UPDATE
from ansible_collections.linuxnet.tunnels.plugins.module_utils._topology import ARGUMENT_SPEC, Topology


def name(stem: str) -> str:
    return f'ut{stem}{uuid.uuid4().hex[:6]}'


NS1, NS2, HUB = name('a'), name('b'), name('h')


def topology(check_mode: bool = True, state: str = 'present', **lists) -> Topology:
    params = {key: [] for key in ARGUMENT_SPEC if ARGUMENT_SPEC[key]['type'] == 'list'}
    params.update(state=state, purge=False, **lists)
    return Topology(Netlink(), params, check_mode)


def lab(**extra) -> dict:
    lists = {
        'namespaces': [NS1, {'name': NS2}, {'name': HUB}],
        'veths': [{'name': 'v1', 'netns': NS1, 'peer': 'v1-P', 'peer_netns': HUB},
                  {'name': 'v2', 'netns': NS2, 'peer': 'v2-P', 'peer_netns': HUB}],
        'links': [{'name': 'lo', 'netns': NS1, 'state': 'up'}, {'name': 'v1', 'netns': NS1, 'mtu': 1400}],
        'addresses': [{'dev': 'v1', 'netns': NS1, 'address': '10.1.0.1/24'}, {'dev': 'v1-P', 'netns': HUB, 'address': '10.1.0.2/24'}],
        'routes': [{'dest': '10.2.0.0/24', 'gateway': '10.1.0.2', 'netns': NS1}],
        'sysctls': [{'name': 'net.ipv4.ip_forward', 'value': '1', 'netns': HUB},
                    {'name': 'net.ipv4.conf.v1-P.forwarding', 'value': '1', 'netns': HUB}],
        'tunnels': [{'name': 'tun', 'netns': NS1, 'local': '10.1.0.1', 'remote': '10.1.0.9', 'dev': 'v1'}],
    }
    lists.update(extra)
    return lists


def labels(items) -> list[str]:
    return [item.label for item in items]


# ---- items and cross-checks -----------------------------------------------

def test_a_plain_string_is_a_namespace_name():
    topo = topology(namespaces=['x1', {'name': 'x2'}])
    assert [i.params['name'] for i in topo.items] == ['x1', 'x2']
    assert ARGUMENT_SPEC['namespaces']['elements'] == 'raw' and ARGUMENT_SPEC['veths']['elements'] == 'dict'


@pytest.mark.parametrize('change, words', [
    ({'veths': ['v9']}, ['veths[0]: an item must be a dictionary']),
    ({'namespaces': [NS1, NS1]}, ['namespaces[1]', 'declared twice (also namespaces[0])']),
    ({'addresses': [{'dev': 'v1', 'netns': NS1, 'address': '10.1.0.1/24'}, {'dev': 'v1', 'netns': NS1, 'address': '10.1.0.1/16'}]},
     ['addresses[1]', 'declared twice']),
    ({'tunnels': [{'name': 'v1', 'netns': NS1}]}, ["link 'v1'", 'also made by veths[0]']),
    ({'routes': [{'dest': '10.2.0.0/24', 'gateway': '10.1.0.2', 'netns': 'ut-nowhere'}]},
     ["netns: network namespace 'ut-nowhere' does not exist and is not declared"]),
    ({'veths': [{'name': 'v1', 'netns': NS1, 'peer': 'p', 'peer_netns': 'ut-nowhere'}]}, ['peer_netns: network namespace']),
    ({'links': [{'name': 'lo', 'netns': NS1, 'colour': 'red'}]}, ['links[0]', 'unsupported option(s) colour']),
])
def test_bad_topologies_are_refused_whole(change, words):
    with pytest.raises(ResourceError) as caught:
        topology(**lab(**change))
    message = str(caught.value)
    assert message.startswith('invalid topology (nothing was changed): ')
    for word in words:
        assert word in message


def test_an_absent_topology_needs_no_namespaces():
    topo = topology(state='absent', veths=[{'name': 'v1', 'netns': 'ut-nowhere', 'peer': 'p'}])
    assert topo.items[0].params['state'] == 'absent'


# ---- order -----------------------------------------------------------------

def test_order_builds_what_each_item_needs_first():
    spaces, steps = topology(**lab())._ordered()
    assert labels(spaces) == ['namespaces[0]', 'namespaces[1]', 'namespaces[2]']
    # Spokes first (one veth each), the hub last; in a namespace: veths, tunnels, links, addresses, routes, sysctls.
    assert labels(steps) == ['veths[0]', 'tunnels[0]', 'links[0]', 'links[1]', 'addresses[0]', 'routes[0]',
                             'veths[1]', 'addresses[1]', 'sysctls[0]', 'sysctls[1]']


def test_absent_order_is_backwards_without_settings():
    topo = topology(state='absent', **lab())
    topo.removed_netns = {NS1}
    # What lives only in NS1 goes with it; the veth to the hub does not.
    assert labels(topo._absent_steps()) == ['addresses[1]', 'veths[1]', 'veths[0]',
                                            'namespaces[2]', 'namespaces[1]', 'namespaces[0]']


# ---- check mode: predictions -----------------------------------------------

def predicted(**lists) -> dict:
    topo = topology(**lists)
    topo.run()
    return {item.label: change for item, change in topo.done}


def test_a_new_lab_is_predicted_from_the_resources_own_views():
    done = predicted(**lab())
    veth = done['veths[0]']
    assert veth.action == CREATE and veth.after['peer'] == {'name': 'v1-P', 'netns': HUB, 'index': None, 'mtu': None, 'up': True}
    address = done['addresses[0]']
    assert address.after == {'dev': 'v1', 'netns': NS1, 'address': '10.1.0.1/24', 'local': '10.1.0.1', 'prefixlen': 24,
                             'peer': None, 'family': 'ipv4'}
    route = done['routes[0]']
    assert route.after == {'dest': '10.2.0.0/24', 'family': 'ipv4', 'gateway': '10.1.0.2', 'dev': None, 'metric': 0,
                           'table': 254, 'netns': NS1}
    tunnel = done['tunnels[0]']
    assert (tunnel.after['mode'], tunnel.after['dev'], tunnel.after['ttl'], tunnel.after['ifindex']) == ('ipip', 'v1', 'inherit', None)


def test_links_made_by_the_call_are_predicted_from_what_made_them():
    done = predicted(**lab())
    lo = done['links[0]']
    assert (lo.action, lo.attributes) == (UPDATE, ['up'])
    assert lo.before == {'name': 'lo', 'netns': NS1, 'index': 1, 'kind': None, 'up': False, 'mtu': 65536, 'operstate': None}
    v1 = done['links[1]']
    assert (v1.before['kind'], v1.before['mtu'], v1.after['mtu'], v1.attributes) == ('veth', 1500, 1400, ['mtu'])


def test_a_link_already_as_wanted_is_no_change():
    done = predicted(**lab(links=[{'name': 'v1', 'netns': NS1, 'state': 'up', 'mtu': 1500}]))
    assert 'links[0]' not in done


def test_forwarding_switched_for_the_namespace_reaches_its_links():
    done = predicted(**lab())
    assert done['sysctls[0]'].after['value'] == '1'
    assert 'sysctls[1]' not in done  # ip_forward=1 has set every link's forwarding to 1


def test_a_link_the_new_namespace_will_not_have_is_refused():
    topo = topology(**lab(addresses=[{'dev': 'eth9', 'netns': NS1, 'address': '10.1.0.1/24'}]))
    with pytest.raises(ResourceError, match=r"addresses\[0\].*dev: link 'eth9' does not exist"):
        topo.run()
