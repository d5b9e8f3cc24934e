"""Link message parsing and link predictions, without a kernel."""

from __future__ import annotations

from ansible_collections.linuxnet.tunnels.plugins.module_utils._link import LinkResource, link_state
from ansible_collections.linuxnet.tunnels.plugins.module_utils._netlink import Netlink
from ansible_collections.linuxnet.tunnels.plugins.module_utils._resource import UPDATE, Forecast

from netlink_fixture import recorded


def states() -> dict:
    return {state['ifname']: state for state in map(link_state, recorded('links'))}


def test_link_states_from_recorded_messages():
    found = states()
    assert (found['lo']['kind'], found['lo']['up'], found['lo']['mtu'], found['lo']['index']) == (None, True, 65536, 1)
    assert (found['va']['kind'], found['va']['up'], found['va']['mtu']) == ('veth', True, 1400)
    assert (found['tip']['kind'], found['tip']['up']) == ('ipip', False)  # created down, as ip link add leaves it
    assert (found['tgre']['kind'], found['tgre']['up']) == ('gre', True)


def link(**options) -> LinkResource:
    resource = LinkResource(Netlink(), {'name': 'v1', 'netns': 'ut-nowhere', 'state': None, 'mtu': None, **options})
    resource.validate()
    return resource


def test_a_link_made_earlier_is_predicted_from_what_made_it():
    forecast = Forecast(Netlink())
    forecast.links[('ut-nowhere', 'v1')] = {'kind': 'veth', 'up': True, 'mtu': 1500, 'new': True}
    change = link(mtu=9000).predict(forecast)
    assert (change.action, change.attributes, change.before['mtu'], change.after['mtu']) == (UPDATE, ['mtu'], 1500, 9000)
    link(mtu=9000).remember(change, forecast)
    assert forecast.links[('ut-nowhere', 'v1')]['mtu'] == 9000
    assert link(mtu=9000).predict(forecast) is None  # the second item sees the first one's change


def test_a_link_is_a_setting_that_uses_its_link():
    assert LinkResource.is_setting and link().uses() == [('ut-nowhere', 'v1')] and link().makes() == []
