"""linuxnet.tunnels.link against the real kernel, in namespaces made here."""

from __future__ import annotations

import pytest

from harness import assert_failed, assert_rhythm, ip, kernel_snapshot, links, rhythm, run_module


def is_up(netns: str, name: str) -> bool:
    return 'UP' in links(netns)[name]['flags']


def test_lo_up_mtu_down(make_netns):
    ns = make_netns()
    assert not is_up(ns, 'lo')

    results = rhythm('link', {'name': 'lo', 'netns': ns, 'state': 'up'})
    assert_rhythm(results)
    assert results[0]['action'] == 'update' and results[0]['attributes'] == ['up']
    assert results[0]['diff']['before']['up'] is False and results[0]['diff']['after']['up'] is True
    assert is_up(ns, 'lo')
    assert results[3]['link']['up'] is True and results[3]['link']['name'] == 'lo' and results[3]['link']['netns'] == ns

    results = rhythm('link', {'name': 'lo', 'netns': ns, 'mtu': 1400})
    assert_rhythm(results)
    assert results[1]['attributes'] == ['mtu']
    assert links(ns)['lo']['mtu'] == 1400 and is_up(ns, 'lo')

    results = rhythm('link', {'name': 'lo', 'netns': ns, 'state': 'down', 'mtu': 65536})
    assert_rhythm(results)
    assert sorted(results[1]['attributes']) == ['mtu', 'up']
    assert not is_up(ns, 'lo') and links(ns)['lo']['mtu'] == 65536


def test_check_mode_changes_nothing(make_netns):
    ns = make_netns()
    before = kernel_snapshot([ns])
    result = run_module('link', {'name': 'lo', 'netns': ns, 'state': 'up', 'mtu': 9000}, check=True)
    assert result['changed'] and result['link'] == dict(result['diff']['after'])
    assert result['link']['up'] is True and result['link']['mtu'] == 9000
    assert kernel_snapshot([ns]) == before


def test_veth_end_mtu_and_state(make_netns):
    ns = make_netns()
    ip('link', 'add', 'va', 'type', 'veth', 'peer', 'name', 'vb', netns=ns)
    results = rhythm('link', {'name': 'va', 'netns': ns, 'state': 'up', 'mtu': 9000})
    assert_rhythm(results)
    assert links(ns)['va']['mtu'] == 9000 and is_up(ns, 'va')
    # Admin state, not carrier: the peer is down, so va is LOWERLAYERDOWN, yet up.
    assert results[3]['link']['kind'] == 'veth' and results[3]['link']['operstate'] != 'UP'
    assert links(ns)['vb']['mtu'] == 1500  # the module touched only the named end


def test_adopts_state_set_by_ip(make_netns):
    ns = make_netns()
    ip('link', 'set', 'lo', 'up', 'mtu', '1500', netns=ns)
    result = run_module('link', {'name': 'lo', 'netns': ns, 'state': 'up', 'mtu': 1500})
    assert not result['changed'] and result['action'] == 'none'
    assert result['link']['up'] is True and result['link']['mtu'] == 1500


def test_no_options_only_reports(make_netns):
    ns = make_netns()
    result = run_module('link', {'name': 'lo', 'netns': ns})
    assert not result['changed'] and result['link']['up'] is False and result['link']['index'] == 1


@pytest.mark.parametrize('check', [True, False])
@pytest.mark.parametrize('params, words', [
    ({'name': 'nope'}, ("link 'nope' does not exist", 'only changes existing links')),
    ({'name': 'a' * 16}, ('16 bytes long',)),
    ({'name': 'a/b'}, ('not a valid interface name',)),
    ({'name': 'va', 'mtu': 67}, ('mtu', 'outside the range 68-65535')),
    ({'name': 'va', 'mtu': 65536}, ('mtu', 'outside the range 68-65535')),
    ({'name': 'va', 'mtu': 0}, ('mtu', 'not a valid MTU')),
    ({'name': 'lo', 'netns': 'lt-missing-ns'}, ("network namespace 'lt-missing-ns' does not exist",)),
    ({'name': 'lo', 'netns': '../evil'}, ('not a valid network namespace name',)),
])
def test_bad_input_changes_nothing(make_netns, params, words, check):
    ns = make_netns()
    ip('link', 'add', 'va', 'type', 'veth', 'peer', 'name', 'vb', netns=ns)
    before = kernel_snapshot([ns])
    result = run_module('link', dict({'netns': ns, 'state': 'up'}, **params), check=check)
    assert_failed(result, *words)
    assert kernel_snapshot([ns]) == before
