"""Route message parsing, identity and selection, without a kernel."""

from __future__ import annotations

import pytest

from ansible_collections.linuxnet.tunnels.plugins.module_utils._errors import ResourceError
from ansible_collections.linuxnet.tunnels.plugins.module_utils._netlink import Netlink
from ansible_collections.linuxnet.tunnels.plugins.module_utils._route import RouteResource, route_destination, route_from_msg

from netlink_fixture import link_names, recorded


def parsed() -> dict:
    return {(r['dest'], r['table']): r for r in map(route_from_msg, recorded('routes')) if r is not None}


def test_gateway_route_from_recorded_message():
    found = parsed()[('10.2.0.0/16', 254)]
    assert (found['gateway'], found['metric'], found['proto'], found['type'], found['multipath']) == ('10.1.0.254', 7, 'boot', 1, False)
    assert link_names()[found['oif']] == 'va'  # the kernel picked the device that reaches the gateway


def test_device_route_in_another_table():
    found = parsed()[('10.3.0.0/24', 100)]
    assert (found['gateway'], found['metric'], link_names()[found['oif']]) == (None, 0, 'va')


def test_connected_route_is_the_kernels():
    assert parsed()[('10.1.0.0/24', 254)]['proto'] == 'kernel'


def test_local_table_routes_are_parsed_with_their_table():
    assert parsed()[('10.1.0.1/32', 255)]['type'] != 1  # RTN_LOCAL, not unicast


def test_route_destination():
    assert route_destination({'dest': '0.0.0.0/0'}) == (4, '0.0.0.0', 0)
    assert route_destination({'dest': 'fd00:0::/64'}) == (6, 'fd00::', 64)


def route(**options) -> RouteResource:
    params = {'gateway': None, 'dev': None, 'metric': None, 'table': 254, 'netns': 'ns1', 'state': 'present', **options}
    resource = RouteResource(Netlink(), params)
    resource.validate()
    return resource


def test_identity():
    # IPv4: the metric is an attribute; IPv6 keeps routes that differ only in metric apart.
    assert route(dest='10.0.0.0/8', gateway='10.1.1.1').key() == route(dest='10.0.0.0/8', dev='x', metric=5).key()
    assert route(dest='fd00::/8', dev='x').key() == route(dest='fd00::/8', dev='x', metric=1024).key()
    assert route(dest='fd00::/8', dev='x').key() != route(dest='fd00::/8', dev='x', metric=5).key()
    assert route(dest='default', gateway='10.1.1.1').key() == route(dest='0.0.0.0/0', dev='x').key()
    assert route(dest='10.0.0.0/8', dev='x', table=100).key() != route(dest='10.0.0.0/8', dev='x').key()


@pytest.mark.parametrize('options, words', [
    ({'dest': 'default', 'dev': 'x'}, 'does not say whether'),
    ({'dest': '10.0.0.1/8', 'dev': 'x'}, 'not a valid destination'),
    ({'dest': '10.0.0.0/8', 'gateway': 'fd00::1'}, 'one family'),
    ({'dest': '10.0.0.0/8', 'dev': 'x', 'table': 0}, 'out of range'),
    ({'dest': '10.0.0.0/8'}, 'gateway or dev is required'),
])
def test_validation(options, words):
    with pytest.raises(ResourceError, match=words):
        route(**options)


def candidate(metric: int, gateway: str | None = '10.1.1.1', dev: str | None = 'v1') -> dict:
    return {'gateway': gateway, 'dev': dev, 'oif': 2, 'metric': metric, 'multipath': False, 'scope': 0}


def test_select_by_metric():
    ipv4 = route(dest='10.0.0.0/8', gateway='10.1.1.1', metric=5)
    assert ipv4._select([candidate(1), candidate(5)])['metric'] == 5
    assert ipv4._select([candidate(1)])['metric'] == 1  # IPv4: the same route, to get a new metric
    assert ipv4._select([]) is None
    with pytest.raises(ResourceError, match='set metric'):
        ipv4._select([candidate(1), candidate(2)])
    assert route(dest='fd00::/8', dev='v1', metric=5)._select([candidate(1)]) is None  # IPv6: another route


def test_select_without_metric_prefers_the_matching_route():
    task = route(dest='10.0.0.0/8', gateway='10.1.1.2')
    assert task._select([candidate(1), candidate(2, gateway='10.1.1.2')])['metric'] == 2
    with pytest.raises(ResourceError, match='2 routes'):
        task._select([candidate(1), candidate(2)])


def test_differs():
    task = route(dest='10.0.0.0/8', gateway='10.1.1.1', dev='v1', metric=3)
    assert task._differs(candidate(3)) == []
    assert task._differs(candidate(4, gateway='10.1.1.9', dev='v2')) == ['gateway', 'dev', 'metric']
    assert task._differs(dict(candidate(3), multipath=True)) == ['gateway']


def test_wanted_is_the_read_shape():
    assert route(dest='fd00::/8', dev='v1').wanted() == {
        'dest': 'fd00::/8', 'family': 'ipv6', 'gateway': None, 'dev': 'v1', 'metric': 1024, 'table': 254, 'netns': 'ns1'}
