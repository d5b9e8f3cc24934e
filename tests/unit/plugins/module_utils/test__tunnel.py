"""Tunnel message parsing, conflicts and predictions, without a kernel (option parsing: tests/unit/test_tunnel_spec.py)."""

from __future__ import annotations

import pytest

from ansible_collections.linuxnet.tunnels.plugins.module_utils._errors import ResourceError
from ansible_collections.linuxnet.tunnels.plugins.module_utils._netlink import Netlink
from ansible_collections.linuxnet.tunnels.plugins.module_utils._resource import CREATE, Forecast
from ansible_collections.linuxnet.tunnels.plugins.module_utils._tunnel import TunnelResource
from ansible_collections.linuxnet.tunnels.plugins.module_utils._tunnel_params import (
    check_conflicts,
    default_parms,
    merge,
    parms_from_msg,
    view,
)

from netlink_fixture import link_names, recorded


def tunnels() -> dict:
    names = link_names()
    found = {}
    for msg in recorded('links'):
        mode, parms = parms_from_msg(msg)
        if mode is not None:
            found[msg.get('ifname')] = view(msg.get('ifname'), mode, parms, names.get(parms['link']), msg['index'])
    return found


def test_only_tunnels_have_tunnel_parameters():
    assert sorted(tunnels()) == ['tgre', 'tip']


def test_ipip_from_recorded_message():
    tip = tunnels()['tip']
    assert (tip['mode'], tip['local'], tip['remote'], tip['ttl'], tip['pmtudisc'], tip['encap']) == (
        'ipip', '10.1.0.1', '10.1.0.2', 64, True, 'none')
    assert tip['key'] is None and tip['csum'] is None  # ipip has neither


def test_gre_from_recorded_message():
    tgre = tunnels()['tgre']
    assert (tgre['mode'], tgre['key'], tgre['ikey'], tgre['okey'], tgre['csum'], tgre['seq']) == ('gre', 42, 42, 42, True, False)


@pytest.mark.parametrize('current, options, option', [
    ({'ttl': 64}, {'pmtudisc': False}, 'ttl'),  # the tunnel's own ttl conflicts with the new option
    ({'encap_type': 2, 'encap_dport': 5555}, {'encap_dport': 0}, 'encap_dport'),
    ({}, {'encap_sport': 1}, 'encap_sport'),
])
def test_conflicts_with_what_the_tunnel_has(current, options, option):
    params = {'pmtudisc': None, **options}
    parms = merge('ipip', dict(default_parms(), **current), params, None)
    with pytest.raises(ResourceError, match=f'^{option}: '):
        check_conflicts('ipip', parms, params, "ipip tunnel 't'")


def test_no_conflict_when_the_tunnel_has_what_is_missing():
    params = {'encap': 'gue', 'encap_sport': 1}
    check_conflicts('ipip', merge('ipip', dict(default_parms(), encap_dport=5555), params, None), params, 't')


def tunnel(**options) -> TunnelResource:
    params = {'name': 'tun', 'netns': 'ut-nowhere', 'mode': 'gre', 'pmtudisc': True, 'up': True, 'state': 'present', **options}
    resource = TunnelResource(Netlink(), params)
    resource.validate()
    return resource


def test_prediction_in_a_new_namespace_is_the_created_view():
    forecast = Forecast(Netlink())
    forecast.nl.pending_netns.add('ut-nowhere')
    resource = tunnel(key='7', dev='v1', remote='10.0.0.2')
    change = resource.predict(forecast)
    assert change.action == CREATE and change.after == resource.wanted()
    assert (change.after['key'], change.after['dev'], change.after['remote'], change.after['ifindex']) == (7, 'v1', '10.0.0.2', None)
    resource.remember(change, forecast)
    assert forecast.links[('ut-nowhere', 'tun')] == {'kind': 'gre', 'up': True, 'mtu': None, 'new': True}
