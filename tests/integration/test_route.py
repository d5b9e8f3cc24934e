"""linuxnet.tunnels.route against the real kernel, in namespaces made here."""

from __future__ import annotations

import os
import time

import pytest

from harness import assert_failed, assert_rhythm, ip, ip_json, kernel_snapshot, links, rhythm, run_module, unique


IPV6 = os.path.exists('/proc/sys/net/ipv6')  # User-Mode Linux has no IPv6 loaded
needs_ipv6 = pytest.mark.skipif(not IPV6, reason='no IPv6 in this kernel')


@pytest.fixture
def ns(make_netns):
    """A namespace with two up links: va (10.0.0.1/24, fd00::1/64) and vb (10.1.0.1/24, fd01::1/64)."""
    name = make_netns()
    ip('link', 'add', 'va', 'type', 'veth', 'peer', 'name', 'vb', netns=name)
    for dev, v4, v6 in (('va', '10.0.0.1/24', 'fd00::1/64'), ('vb', '10.1.0.1/24', 'fd01::1/64')):
        ip('link', 'set', dev, 'up', netns=name)
        ip('addr', 'add', v4, 'dev', dev, netns=name)
        if IPV6:
            ip('addr', 'add', v6, 'dev', dev, 'nodad', netns=name)
    wait_for_carrier(name, 'va', 'vb')
    return name


def wait_for_carrier(ns: str, *devs: str) -> None:
    """Carrier comes a moment after link-up; kernel snapshots taken before it would differ."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        state = links(ns)
        if all('LOWER_UP' in state[dev]['flags'] and 'NO-CARRIER' not in state[dev]['flags'] for dev in devs):
            if not any('linkdown' in r.get('flags', []) for r in ip_json('route', 'show', 'table', 'all', netns=ns)):
                return
        time.sleep(0.05)
    raise AssertionError(f'no carrier on {devs} in {ns}')


def table(ns: str, dest: str, family: str = '-4', number: int = 254) -> list[tuple]:
    """(gateway, dev, metric) of the routes to exactly dest in a table, out of band."""
    selector = ['exact', dest] if dest != 'default' else ['exact', '0.0.0.0/0' if family == '-4' else '::/0']
    entries = ip_json(family, 'route', 'show', 'table', str(number), *selector, netns=ns)
    return sorted((r.get('gateway'), r.get('dev'), r.get('metric', 0)) for r in entries)


def test_ipv4_gateway_create_change_delete(ns):
    params = {'netns': ns, 'dest': '10.20.0.0/16', 'gateway': '10.0.0.2'}
    results = rhythm('route', params)
    assert_rhythm(results)
    assert results[0]['action'] == 'create'
    assert table(ns, '10.20.0.0/16') == [('10.0.0.2', 'va', 0)]
    assert results[3]['route'] == {'dest': '10.20.0.0/16', 'family': 'ipv4', 'gateway': '10.0.0.2', 'dev': 'va',
                                   'metric': 0, 'table': 254, 'netns': ns}

    results = rhythm('route', dict(params, gateway='10.1.0.2'))
    assert_rhythm(results)
    assert results[1]['action'] == 'update' and results[1]['attributes'] == ['gateway']
    assert results[1]['diff']['before']['gateway'] == '10.0.0.2' and results[1]['diff']['after']['gateway'] == '10.1.0.2'
    assert table(ns, '10.20.0.0/16') == [('10.1.0.2', 'vb', 0)]  # replaced in place, not added

    # absent only deletes what matches the options given: not via the old gateway.
    result = run_module('route', dict(params, state='absent'))
    assert not result['changed'] and table(ns, '10.20.0.0/16') == [('10.1.0.2', 'vb', 0)]

    results = rhythm('route', dict(params, gateway='10.1.0.2', state='absent'))
    assert_rhythm(results)
    assert results[1]['action'] == 'delete' and results[1]['route'] is None
    assert table(ns, '10.20.0.0/16') == []


def test_ipv4_metric_change_replaces_and_dev_only_route(ns):
    params = {'netns': ns, 'dest': '10.20.0.0/16', 'gateway': '10.0.0.2'}
    assert_rhythm(rhythm('route', params))
    results = rhythm('route', dict(params, metric=10))
    assert_rhythm(results)
    assert results[1]['action'] == 'replace' and results[1]['attributes'] == ['metric'] and 'metric' in results[1]['note']
    assert table(ns, '10.20.0.0/16') == [('10.0.0.2', 'va', 10)]  # one route, not two

    results = rhythm('route', {'netns': ns, 'dest': '10.20.0.0/16', 'dev': 'vb', 'metric': 10})
    assert_rhythm(results)
    assert sorted(results[1]['attributes']) == ['dev', 'gateway']
    assert table(ns, '10.20.0.0/16') == [(None, 'vb', 10)]
    (entry,) = ip_json('route', 'show', 'exact', '10.20.0.0/16', netns=ns)
    assert entry['scope'] == 'link'  # as iproute2 makes a route without gateway

    results = rhythm('route', {'netns': ns, 'dest': '10.20.0.0/16', 'state': 'absent'})
    assert_rhythm(results)
    assert table(ns, '10.20.0.0/16') == []


@needs_ipv6
def test_default_routes_both_families(ns):
    results = rhythm('route', {'netns': ns, 'dest': 'default', 'gateway': '10.0.0.2'})
    assert_rhythm(results)
    assert results[3]['route']['dest'] == 'default' and results[3]['route']['family'] == 'ipv4'
    assert table(ns, 'default') == [('10.0.0.2', 'va', 0)]

    results = rhythm('route', {'netns': ns, 'dest': '::/0', 'gateway': 'fd00::2'})
    assert_rhythm(results)
    assert table(ns, 'default', '-6') == [('fd00::2', 'va', 1024)]

    results = rhythm('route', {'netns': ns, 'dest': 'default', 'gateway': 'fd01::2'})
    assert_rhythm(results)
    assert results[1]['action'] == 'update'
    assert table(ns, 'default', '-6') == [('fd01::2', 'vb', 1024)]

    assert_rhythm(rhythm('route', {'netns': ns, 'dest': '0.0.0.0/0', 'state': 'absent'}))
    assert table(ns, 'default') == [] and table(ns, 'default', '-6') == [('fd01::2', 'vb', 1024)]


@needs_ipv6
def test_ipv6_metric_is_part_of_the_identity(ns):
    params = {'netns': ns, 'dest': 'fd20::/64', 'gateway': 'fd00::2'}
    assert_rhythm(rhythm('route', params))
    assert table(ns, 'fd20::/64', '-6') == [('fd00::2', 'va', 1024)]

    results = rhythm('route', dict(params, gateway='fd01::2'))
    assert_rhythm(results)
    assert results[1]['action'] == 'update'
    assert table(ns, 'fd20::/64', '-6') == [('fd01::2', 'vb', 1024)]

    # Another metric is another IPv6 route: added beside the first.
    results = rhythm('route', dict(params, metric=256))
    assert_rhythm(results)
    assert results[1]['action'] == 'create'
    assert table(ns, 'fd20::/64', '-6') == [('fd00::2', 'va', 256), ('fd01::2', 'vb', 1024)]

    # Without a metric, two routes are ambiguous unless one already matches.
    assert not run_module('route', params)['changed']
    assert_failed(run_module('route', dict(params, gateway='fd00::3')), 'set metric', '256, 1024')

    results = rhythm('route', {'netns': ns, 'dest': 'fd20::/64', 'metric': 1024, 'state': 'absent'})
    assert_rhythm(results)
    assert table(ns, 'fd20::/64', '-6') == [('fd00::2', 'va', 256)]
    assert_rhythm(rhythm('route', {'netns': ns, 'dest': 'fd20::/64', 'state': 'absent'}))
    assert table(ns, 'fd20::/64', '-6') == []


def test_other_table(ns):
    params = {'netns': ns, 'dest': '10.40.0.0/16', 'gateway': '10.0.0.2', 'table': 1000}
    assert_rhythm(rhythm('route', params))
    assert table(ns, '10.40.0.0/16', number=1000) == [('10.0.0.2', 'va', 0)] and table(ns, '10.40.0.0/16') == []
    results = rhythm('route', dict(params, gateway='10.1.0.2'))
    assert_rhythm(results)
    assert table(ns, '10.40.0.0/16', number=1000) == [('10.1.0.2', 'vb', 0)]
    # The same destination in main is another route.
    assert run_module('route', dict(params, table=254), check=True)['action'] == 'create'
    assert_rhythm(rhythm('route', {'netns': ns, 'dest': '10.40.0.0/16', 'table': 1000, 'state': 'absent'}))
    assert table(ns, '10.40.0.0/16', number=1000) == []


@needs_ipv6
def test_adopts_routes_made_by_ip(ns):
    ip('route', 'add', '10.20.0.0/16', 'via', '10.0.0.2', netns=ns)  # proto boot: not compared
    ip('route', 'add', '10.30.0.0/16', 'dev', 'vb', 'metric', '5', netns=ns)
    ip('-6', 'route', 'add', 'fd20::/64', 'via', 'fd00::2', netns=ns)
    ip('route', 'add', 'default', 'via', '10.1.0.2', 'table', '100', netns=ns)
    for params in ({'dest': '10.20.0.0/16', 'gateway': '10.0.0.2'},
                   {'dest': '10.20.0.0/16', 'gateway': '10.0.0.2', 'dev': 'va', 'metric': 0},
                   {'dest': '10.30.0.0/16', 'dev': 'vb'},
                   {'dest': '10.30.0.0/16', 'dev': 'vb', 'metric': 5},
                   {'dest': 'fd20:0::/64', 'gateway': 'fd00:0::2'},
                   {'dest': 'default', 'gateway': '10.1.0.2', 'table': 100}):
        result = run_module('route', dict(params, netns=ns))
        assert not result['changed'] and result['action'] == 'none', (params, result)


def test_unreachable_gateway_is_a_readable_error(ns):
    before = kernel_snapshot([ns])
    result = run_module('route', {'netns': ns, 'dest': '10.50.0.0/16', 'gateway': '192.0.2.1'})
    assert_failed(result, '10.50.0.0/16', 'Nexthop has invalid gateway', 'ENETUNREACH', 'connected subnet')
    # A gateway on a link that is down is unreachable as well.
    ip('link', 'set', 'vb', 'down', netns=ns)
    before = kernel_snapshot([ns])
    result = run_module('route', {'netns': ns, 'dest': '10.50.0.0/16', 'gateway': '10.1.0.2'})
    assert_failed(result, 'ENETUNREACH')
    assert kernel_snapshot([ns]) == before


def test_absent_when_missing_is_a_no_op(ns):
    for params in ({'netns': ns}, {'netns': unique('gone')}):
        result = run_module('route', dict(params, dest='10.99.0.0/16', state='absent'))
        assert not result['changed'] and result['route'] is None, result


@pytest.mark.parametrize('check', [True, False])
@pytest.mark.parametrize('params, words', [
    ({'dest': 'default', 'gateway': None, 'dev': 'va'}, ("'default' does not say whether", '0.0.0.0/0')),
    ({'dest': '10.60.0.1/16'}, ('dest', 'host bits set')),
    ({'dest': '10.60.0.0/33'}, ('dest', 'not a valid destination')),
    ({'dest': 'nowhere'}, ('dest', 'not a valid destination')),
    ({'gateway': 'fd00::2'}, ('gateway', 'ipv6', 'ipv4')),
    ({'gateway': '10.0.0.2/24'}, ('gateway', 'not a valid')),
    ({'gateway': None}, ('gateway', 'dev')),
    ({'dev': 'nope'}, ("dev: link 'nope' does not exist",)),
    ({'dev': 'y' * 16}, ('dev', '16 bytes long')),
    ({'table': 0}, ('table', 'out of range')),
    ({'metric': -1}, ('metric', 'out of range')),
    ({'netns': 'lt-missing-ns'}, ("network namespace 'lt-missing-ns' does not exist",)),
])
def test_bad_input_changes_nothing(ns, params, words, check):
    before = kernel_snapshot([ns])
    args = dict({'netns': ns, 'dest': '10.60.0.0/16', 'gateway': '10.0.0.2'}, **params)
    result = run_module('route', args, check=check)
    assert_failed(result, *words)
    assert kernel_snapshot([ns]) == before
