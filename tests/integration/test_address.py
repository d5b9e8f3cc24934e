"""linuxnet.tunnels.address against the real kernel, in namespaces made here."""

from __future__ import annotations

import os

import pytest

from harness import addresses, assert_failed, assert_rhythm, ip, kernel_snapshot, rhythm, run_module, settled, unique


needs_ipv6 = pytest.mark.skipif(not os.path.exists('/proc/sys/net/ipv6'), reason='no IPv6 in this kernel')


@pytest.fixture
def link(make_netns):
    """(namespace, dev): an up veth end in a fresh namespace (its peer up too, so it has carrier)."""
    ns = make_netns()
    ip('link', 'add', 'va', 'type', 'veth', 'peer', 'name', 'vb', netns=ns)
    ip('link', 'set', 'va', 'up', netns=ns)
    ip('link', 'set', 'vb', 'up', netns=ns)
    settled(ns, 'va', 'vb')  # carrier and link-local addresses come later: snapshots taken before would differ
    return ns, 'va'


def ours(ns: str, dev: str) -> list[tuple]:
    """(local, prefixlen, peer or None) of every non-link-local address, out of band."""
    return sorted((a['local'], a['prefixlen'], a.get('address')) for a in addresses(dev, ns) if a.get('scope') != 'link')


def test_ipv4_create_change_prefix_delete(link):
    ns, dev = link
    params = {'dev': dev, 'netns': ns, 'address': '10.10.10.1/24'}
    results = rhythm('address', params)
    assert_rhythm(results)
    assert results[0]['action'] == 'create'
    assert ours(ns, dev) == [('10.10.10.1', 24, None)]
    assert results[3]['address'] == {'dev': dev, 'netns': ns, 'address': '10.10.10.1/24', 'local': '10.10.10.1',
                                     'prefixlen': 24, 'peer': None, 'family': 'ipv4'}

    results = rhythm('address', dict(params, address='10.10.10.1/16'))
    assert_rhythm(results)
    assert results[1]['action'] == 'replace' and results[1]['attributes'] == ['prefixlen']
    assert 'cannot change the prefix length' in results[1]['note']
    assert results[1]['diff']['before']['prefixlen'] == 24 and results[1]['diff']['after']['prefixlen'] == 16
    assert ours(ns, dev) == [('10.10.10.1', 16, None)]  # replaced, not a second address

    results = rhythm('address', dict(params, state='absent'))
    assert_rhythm(results)
    assert results[1]['action'] == 'delete' and results[1]['address'] is None
    assert ours(ns, dev) == []


@needs_ipv6
def test_bare_address_is_a_host_address(link):
    ns, dev = link
    assert_rhythm(rhythm('address', {'dev': dev, 'netns': ns, 'address': '10.10.10.5'}))
    assert ours(ns, dev) == [('10.10.10.5', 32, None)]
    assert_rhythm(rhythm('address', {'dev': dev, 'netns': ns, 'address': 'fd00:10::5'}))
    assert ('fd00:10::5', 128, None) in ours(ns, dev)


@needs_ipv6
def test_ipv6_is_usable_at_once_and_canonical(link):
    ns, dev = link
    params = {'dev': dev, 'netns': ns, 'address': 'FD00:10:0:0::1/64'}
    results = rhythm('address', params)
    assert_rhythm(results)
    assert results[3]['address']['address'] == 'fd00:10::1/64' and results[3]['address']['family'] == 'ipv6'
    (entry,) = [a for a in addresses(dev, ns) if a['local'] == 'fd00:10::1']
    assert entry['prefixlen'] == 64 and not entry.get('tentative') and entry.get('nodad')

    results = rhythm('address', dict(params, address='fd00:10::1/80'))
    assert_rhythm(results)
    assert results[1]['action'] == 'replace'
    assert ('fd00:10::1', 80, None) in ours(ns, dev) and ('fd00:10::1', 64, None) not in ours(ns, dev)

    assert_rhythm(rhythm('address', dict(params, state='absent')))
    assert not [a for a in addresses(dev, ns) if a['local'] == 'fd00:10::1']


def test_point_to_point_ipv4(link):
    ns, dev = link
    params = {'dev': dev, 'netns': ns, 'address': '10.10.100.10', 'peer': '10.10.200.10'}
    results = rhythm('address', params)
    assert_rhythm(results)
    assert ours(ns, dev) == [('10.10.100.10', 32, '10.10.200.10')]
    assert results[3]['address']['peer'] == '10.10.200.10' and results[3]['address']['prefixlen'] == 32

    results = rhythm('address', dict(params, peer='10.10.200.11'))
    assert_rhythm(results)
    assert results[1]['action'] == 'replace' and results[1]['attributes'] == ['peer']
    assert ours(ns, dev) == [('10.10.100.10', 32, '10.10.200.11')]  # the old peer is gone

    # Dropping the peer is a change of peer too.
    results = rhythm('address', {'dev': dev, 'netns': ns, 'address': '10.10.100.10/32'})
    assert_rhythm(results)
    assert ours(ns, dev) == [('10.10.100.10', 32, None)]

    results = rhythm('address', dict(params, peer='10.10.200.0/24'))
    assert_rhythm(results)
    assert ours(ns, dev) == [('10.10.100.10', 24, '10.10.200.0')]

    assert_rhythm(rhythm('address', dict(params, state='absent')))
    assert ours(ns, dev) == []


@needs_ipv6
def test_point_to_point_ipv6(link):
    ns, dev = link
    params = {'dev': dev, 'netns': ns, 'address': 'fd01::1', 'peer': 'fd01::2'}
    assert_rhythm(rhythm('address', params))
    assert ('fd01::1', 128, 'fd01::2') in ours(ns, dev)
    assert_rhythm(rhythm('address', dict(params, state='absent')))
    assert not [a for a in ours(ns, dev) if a[0] == 'fd01::1']


@needs_ipv6
def test_adopts_addresses_made_by_ip(link):
    ns, dev = link
    ip('addr', 'add', '10.10.10.1/24', 'dev', dev, netns=ns)
    ip('addr', 'add', '10.10.100.10', 'peer', '10.10.200.10', 'dev', dev, netns=ns)
    ip('addr', 'add', 'fd00:10:0::1/64', 'dev', dev, netns=ns)
    for address, peer in (('10.10.10.1/24', None), ('10.10.100.10', '10.10.200.10'), ('fd00:10::1/64', None)):
        result = run_module('address', {'dev': dev, 'netns': ns, 'address': address, 'peer': peer})
        assert not result['changed'] and result['action'] == 'none', result
        assert result['address']['address'].startswith(address.split('/', maxsplit=1)[0])


def test_other_addresses_are_left_alone(link):
    ns, dev = link
    ip('addr', 'add', '10.10.10.1/24', 'dev', dev, netns=ns)
    ip('addr', 'add', '10.10.20.1/24', 'dev', dev, netns=ns)
    assert_rhythm(rhythm('address', {'dev': dev, 'netns': ns, 'address': '10.10.10.1/25'}))
    assert ours(ns, dev) == [('10.10.10.1', 25, None), ('10.10.20.1', 24, None)]
    assert_rhythm(rhythm('address', {'dev': dev, 'netns': ns, 'address': '10.10.10.1', 'state': 'absent'}))
    assert ours(ns, dev) == [('10.10.20.1', 24, None)]


def test_duplicates_with_the_same_local_address_are_collapsed(link):
    ns, dev = link
    ip('addr', 'add', '10.0.0.1/24', 'dev', dev, netns=ns)
    ip('addr', 'add', '10.0.0.1/16', 'dev', dev, netns=ns)
    results = rhythm('address', {'dev': dev, 'netns': ns, 'address': '10.0.0.1/24'})
    assert_rhythm(results)
    assert results[1]['action'] == 'replace' and '10.0.0.1/16' in results[1]['note']
    assert ours(ns, dev) == [('10.0.0.1', 24, None)]


def test_absent_without_dev_or_namespace_is_a_no_op(link):
    ns, _dev = link
    for params in ({'netns': ns, 'dev': 'nope'}, {'netns': unique('gone'), 'dev': 'va'}):
        result = run_module('address', dict(params, address='10.0.0.1/24', state='absent'))
        assert not result['changed'] and result['address'] is None, result


@pytest.mark.parametrize('check', [True, False])
@pytest.mark.parametrize('params, words', [
    ({'address': '10.0.0.256/24'}, ('address', "'10.0.0.256/24' is not a valid")),
    ({'address': '10.0.0.1/33'}, ('address', 'not a valid')),
    ({'address': 'fd00::1/129'}, ('address', 'not a valid')),
    ({'address': 'not-an-ip'}, ('address', 'not a valid')),
    ({'address': 'fe80::1%va'}, ('address', 'not a valid')),
    ({'address': '10.0.0.1', 'peer': 'fd00::2'}, ('peer', 'ipv6', 'ipv4', 'one family')),
    ({'address': '10.0.0.1', 'peer': '10.0.0.x'}, ('peer', 'not a valid')),
    ({'address': '10.0.0.1/24', 'peer': '10.0.0.2/30'}, ('different prefix lengths',)),
    ({'dev': 'nope'}, ("dev: link 'nope' does not exist",)),
    ({'dev': 'x' * 16}, ('dev', '16 bytes long')),
    ({'netns': 'lt-missing-ns'}, ("network namespace 'lt-missing-ns' does not exist",)),
])
def test_bad_input_changes_nothing(link, params, words, check):
    ns, dev = link
    before = kernel_snapshot([ns])
    result = run_module('address', dict({'dev': dev, 'netns': ns, 'address': '10.0.0.1/24'}, **params), check=check)
    assert_failed(result, *words)
    assert kernel_snapshot([ns]) == before
