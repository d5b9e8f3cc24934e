"""linuxnet.tunnels.netns against the real kernel."""

from __future__ import annotations

import pytest

from harness import assert_failed, assert_rhythm, ip, kernel_snapshot, list_netns, rhythm, run_module


def test_create_then_delete(netns_name):
    results = rhythm('netns', {'name': netns_name})
    assert_rhythm(results)
    assert results[0]['action'] == 'create' and results[0]['netns']['name'] == netns_name
    assert results[3]['netns'] == {'name': netns_name, 'path': f'/run/netns/{netns_name}'}
    assert netns_name in list_netns()

    results = rhythm('netns', {'name': netns_name, 'state': 'absent'})
    assert_rhythm(results)
    assert results[1]['netns'] is None
    assert netns_name not in list_netns()


def test_check_mode_creates_nothing(netns_name):
    result = run_module('netns', {'name': netns_name}, check=True)
    assert result['changed'] and result['diff']['after']['name'] == netns_name
    assert netns_name not in list_netns()


def test_adopts_namespace_made_by_ip(make_netns):
    name = make_netns()
    result = run_module('netns', {'name': name})
    assert not result['changed'] and result['netns']['name'] == name


def test_prefix_of_existing_name_is_not_mistaken_for_it(make_netns):
    """community.general.ip_netns matches substrings: 'mario' looks present when 'mario2' is."""
    longer = make_netns()
    shorter = longer[:-1]
    result = run_module('netns', {'name': shorter}, check=True)
    assert result['changed'] and result['action'] == 'create'


@pytest.mark.parametrize('name', ['', '.', '..', 'a/b', '../evil'])
def test_invalid_names_are_refused_without_touching_anything(name):
    before = kernel_snapshot([])
    result = run_module('netns', {'name': name})
    assert_failed(result, 'not a valid network namespace name')
    assert kernel_snapshot([]) == before


def test_delete_removes_links_inside(make_netns):
    name = make_netns()
    ip('link', 'add', 'va', 'type', 'veth', 'peer', 'name', 'vb', netns=name)
    result = run_module('netns', {'name': name, 'state': 'absent'})
    assert result['changed'] and name not in list_netns()
