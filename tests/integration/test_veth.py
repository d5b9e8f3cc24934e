"""linuxnet.tunnels.veth against the real kernel, in namespaces made here."""

from __future__ import annotations

import pytest

from harness import (
    assert_failed,
    assert_rhythm,
    ip,
    kernel_snapshot,
    links,
    list_netns,
    rhythm,
    run_module,
    unique,
)


def pair_of(ns_a: str | None, name: str, ns_b: str, peer: str) -> tuple[dict, dict]:
    """Both ends read with `ip -d -j`, asserting that they point at each other."""
    a, b = links(ns_a)[name], links(ns_b)[peer]
    assert a['linkinfo']['info_kind'] == 'veth' and b['linkinfo']['info_kind'] == 'veth'
    if ns_a == ns_b:
        # Same namespace: ip names the peer.
        assert a['link'] == peer and b['link'] == name
    else:
        # Across namespaces: ip shows the peer's index and the namespace id.
        assert a['link_index'] == b['ifindex'] and b['link_index'] == a['ifindex']
        assert 'link_netnsid' in a and 'link_netnsid' in b
    return a, b


def test_create_modify_delete_across_namespaces(make_netns):
    ns1, ns2 = make_netns(), make_netns()
    params = {'name': 'veth1', 'netns': ns1, 'peer': 'veth2', 'peer_netns': ns2, 'mtu': 1400}

    results = rhythm('veth', params)
    assert_rhythm(results)
    assert results[0]['action'] == 'create' and results[0]['veth']['index'] is None
    a, b = pair_of(ns1, 'veth1', ns2, 'veth2')
    assert a['mtu'] == b['mtu'] == 1400
    assert 'UP' in a['flags'] and 'UP' in b['flags']
    state = results[3]['veth']
    assert state == {
        'name': 'veth1', 'netns': ns1, 'index': a['ifindex'], 'mtu': 1400, 'up': True,
        'peer': {'name': 'veth2', 'netns': ns2, 'index': b['ifindex'], 'mtu': 1400, 'up': True},
    }

    results = rhythm('veth', dict(params, mtu=9000, up=False))
    assert_rhythm(results)
    assert results[1]['action'] == 'update'
    assert sorted(results[1]['attributes']) == ['mtu', 'peer_mtu', 'peer_up', 'up']
    a, b = pair_of(ns1, 'veth1', ns2, 'veth2')
    assert a['mtu'] == b['mtu'] == 9000 and 'UP' not in a['flags'] and 'UP' not in b['flags']

    results = rhythm('veth', dict(params, state='absent'))
    assert_rhythm(results)
    assert results[1]['action'] == 'delete' and results[1]['veth'] is None
    assert 'veth1' not in links(ns1) and 'veth2' not in links(ns2)


def test_same_namespace_and_same_name_in_two_namespaces(make_netns):
    ns1, ns2 = make_netns(), make_netns()
    results = rhythm('veth', {'name': 'va', 'peer': 'vb', 'netns': ns1})
    assert_rhythm(results)
    a, b = pair_of(ns1, 'va', ns1, 'vb')
    assert a['mtu'] == 1500 and 'UP' in b['flags']
    assert results[3]['veth']['peer']['netns'] == ns1

    results = rhythm('veth', {'name': 'eth0', 'peer': 'eth0', 'netns': ns1, 'peer_netns': ns2})
    assert_rhythm(results)
    pair_of(ns1, 'eth0', ns2, 'eth0')


def test_adopts_pairs_made_by_ip(make_netns):
    ns1, ns2 = make_netns(), make_netns()
    ip('link', 'add', 'veth1', 'mtu', '1400', 'type', 'veth', 'peer', 'name', 'veth2', 'mtu', '1400', 'netns', ns2, netns=ns1)
    ip('link', 'set', 'veth1', 'up', netns=ns1)
    ip('link', 'set', 'veth2', 'up', netns=ns2)
    result = run_module('veth', {'name': 'veth1', 'netns': ns1, 'peer': 'veth2', 'peer_netns': ns2, 'mtu': 1400})
    assert not result['changed'] and result['action'] == 'none'
    assert result['veth']['peer']['name'] == 'veth2' and result['veth']['peer']['netns'] == ns2
    # Seen from the other side it is the same pair.
    result = run_module('veth', {'name': 'veth2', 'netns': ns2, 'peer': 'veth1', 'peer_netns': ns1})
    assert not result['changed']

    ip('link', 'add', 'xa', 'type', 'veth', 'peer', 'name', 'xb', netns=ns1)
    result = run_module('veth', {'name': 'xa', 'netns': ns1, 'peer': 'xb', 'up': False})
    assert not result['changed'] and result['veth']['mtu'] == 1500


def test_wrong_peer_fails_without_recreate_then_replaces(make_netns):
    ns1, ns2 = make_netns(), make_netns()
    ip('link', 'add', 'veth1', 'type', 'veth', 'peer', 'name', 'other', 'netns', ns2, netns=ns1)
    before = kernel_snapshot([ns1, ns2])
    wanted = {'name': 'veth1', 'netns': ns1, 'peer': 'veth2', 'peer_netns': ns2}
    for check in (True, False):
        result = run_module('veth', wanted, check=check)
        assert_failed(result, "paired with 'other'", 'recreate')
    assert kernel_snapshot([ns1, ns2]) == before

    results = rhythm('veth', dict(wanted, recreate=True))
    assert_rhythm(results)
    assert results[1]['action'] == 'replace' and 'recreate' in results[1]['note']
    pair_of(ns1, 'veth1', ns2, 'veth2')
    assert 'other' not in links(ns2)


def test_peer_in_other_namespace_is_not_the_same_pair(make_netns):
    ns1, ns2, ns3 = make_netns(), make_netns(), make_netns()
    ip('link', 'add', 'veth1', 'type', 'veth', 'peer', 'name', 'veth2', 'netns', ns3, netns=ns1)
    result = run_module('veth', {'name': 'veth1', 'netns': ns1, 'peer': 'veth2', 'peer_netns': ns2}, check=True)
    assert_failed(result, f"in namespace '{ns3}'", f"not with 'veth2' in namespace '{ns2}'")
    result = run_module('veth', {'name': 'veth1', 'netns': ns1, 'peer': 'veth2', 'peer_netns': ns2, 'recreate': True})
    assert result['changed'] and result['action'] == 'replace'
    pair_of(ns1, 'veth1', ns2, 'veth2')
    assert 'veth2' not in links(ns3)


def test_other_kind_of_link_with_that_name(make_netns):
    ns = make_netns()
    before = kernel_snapshot([ns])
    result = run_module('veth', {'name': 'lo', 'netns': ns, 'peer': 'vb'})
    assert_failed(result, "'lo'", 'not a veth', 'recreate')
    result = run_module('veth', {'name': 'lo', 'netns': ns, 'peer': 'vb', 'state': 'absent'})
    assert_failed(result, 'not a veth', 'refusing to delete')
    result = run_module('veth', {'name': 'lo', 'netns': ns, 'peer': 'vb', 'recreate': True})
    assert_failed(result, "could not delete veth 'lo'")
    assert kernel_snapshot([ns]) == before


def test_peer_name_taken_leaves_nothing_behind(make_netns):
    ns1, ns2 = make_netns(), make_netns()
    ip('link', 'add', 'taken', 'type', 'veth', 'peer', 'name', 'x', netns=ns2)
    before = kernel_snapshot([ns1, ns2])
    params = {'name': 'veth1', 'netns': ns1, 'peer': 'taken', 'peer_netns': ns2}
    for check in (True, False):
        assert_failed(run_module('veth', params, check=check), "'taken' already exists", ns2)
    # With recreate too: a link that is not part of the pair is never deleted.
    assert_failed(run_module('veth', dict(params, recreate=True)), "'taken' already exists")
    assert kernel_snapshot([ns1, ns2]) == before


def test_absent_when_missing_is_a_no_op(make_netns):
    ns = make_netns()
    for params in ({'netns': ns}, {'netns': unique('gone')}):
        result = run_module('veth', dict(params, name='va', peer='vb', state='absent'))
        assert not result['changed'] and result['veth'] is None


def test_absent_deletes_veth_even_with_another_peer(make_netns):
    ns = make_netns()
    ip('link', 'add', 'va', 'type', 'veth', 'peer', 'name', 'vz', netns=ns)
    result = run_module('veth', {'name': 'va', 'netns': ns, 'peer': 'vb', 'state': 'absent'})
    assert result['changed'] and "paired with 'vz'" in result['note']
    assert 'va' not in links(ns) and 'vz' not in links(ns)


@pytest.mark.parametrize('check', [True, False])
@pytest.mark.parametrize('params, words', [
    ({'name': 'a' * 16}, ('name', '16 bytes long')),
    ({'peer': 'b' * 16}, ('peer', '16 bytes long')),
    ({'peer': 'a:b'}, ('peer', 'not a valid interface name')),
    ({'peer': 'va', 'peer_netns': None}, ('same name',)),
    ({'mtu': 67}, ('mtu', '68-65535')),
    ({'mtu': 65536}, ('mtu', '68-65535')),
    ({'netns': 'lt-missing-ns'}, ("netns: network namespace 'lt-missing-ns' does not exist",)),
    ({'peer_netns': 'lt-missing-ns'}, ("peer_netns: network namespace 'lt-missing-ns' does not exist",)),
    ({'peer_netns': 'a/b'}, ('peer_netns', 'not a valid network namespace name')),
])
def test_bad_input_changes_nothing(make_netns, params, words, check):
    ns1, ns2 = make_netns(), make_netns()
    args = dict({'name': 'va', 'netns': ns1, 'peer': 'vb', 'peer_netns': ns2}, **params)
    before = kernel_snapshot([ns1, ns2])
    result = run_module('veth', args, check=check)
    assert_failed(result, *words)
    assert kernel_snapshot([ns1, ns2]) == before
    assert 'lt-missing-ns' not in list_netns()


@pytest.mark.rootns
def test_pair_with_the_current_namespace(make_netns):
    """Local end in the namespace the test runs in (UML only), peer inside a namespace."""
    ns = make_netns()
    name = unique('h')
    params = {'name': name, 'peer': 'eth0', 'peer_netns': ns}
    try:
        results = rhythm('veth', params)
        assert_rhythm(results)
        pair_of(None, name, ns, 'eth0')
        assert results[3]['veth']['netns'] is None and results[3]['veth']['peer']['netns'] == ns
        # Seen from inside the namespace, the peer is in the current namespace (netns omitted).
        result = run_module('veth', {'name': 'eth0', 'netns': ns, 'peer': name, 'peer_netns': None}, check=True)
        assert_failed(result, 'is paired with')  # peer_netns defaults to netns, not to the current namespace
        results = rhythm('veth', dict(params, state='absent'))
        assert_rhythm(results)
        assert name not in links()
    finally:
        ip('link', 'del', name, check=False)
