# Copyright (c) linuxnet.tunnels contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Drift repair: the lab is up, someone changes it by hand, the next converge repairs it.

For each kind of hand-made change: converge reports changed, the converge after
it reports nothing changed, the change is undone as seen out of band, and the
pings (through the tunnel both ways, TTL 64; routed, TTL 63) pass.

The repair loop drives the topology module in-process with exactly the
topology the ipip_lab role builds (rendered from the role's own variables);
one round goes through ansible-playbook playbooks/lab.yml to prove the role path.
Namespace names are unique, so this also runs on a host kernel with tunnels.

    scripts/uml-run --timeout 1200 -- .venv/bin/pytest -q -p no:cacheprovider -m tunnel tests/integration/test_reliability_drift.py
"""

from __future__ import annotations

import pytest

from harness import addresses, ip, links, list_netns, routes, run_module, unique
from reliability.common import REPO, lab_pings, lab_topology, playbook, recap_changed, wait_link_gone

pytestmark = pytest.mark.tunnel


@pytest.fixture(scope='module')
def lab():
    """The role's lab with unique namespace names: its variables and topology."""
    overrides = {'ipip_lab_ns1': unique('d1'), 'ipip_lab_ns2': unique('d2'), 'ipip_lab_router_netns': unique('dr')}
    topology = lab_topology(overrides)
    lab = {'vars': overrides, 'topology': topology, 'pings': lab_pings(overrides),
           'ns1': overrides['ipip_lab_ns1'], 'ns2': overrides['ipip_lab_ns2'], 'router': overrides['ipip_lab_router_netns']}
    result = run_module('topology', topology)
    assert not result.get('failed'), result.get('msg')
    assert result['changed']
    yield lab
    down = {'namespaces': topology['namespaces'], 'veths': topology['veths'], 'state': 'absent'}
    result = run_module('topology', down)
    for name in overrides.values():
        if name in list_netns():
            ip('netns', 'del', name, check=False)
    assert not result.get('failed'), result.get('msg')


def converge(lab) -> dict:
    result = run_module('topology', lab['topology'])
    assert not result.get('failed'), result.get('msg')
    return result


def assert_pings(lab) -> None:
    for probe in lab['pings']:
        result = run_module('ping', {'dest': probe['dest'], 'netns': probe['netns'], 'count': 2, 'interval': 0.05, 'timeout': 2})
        assert not result.get('failed'), f"{probe['label']}: {result.get('msg')}"
        assert result['received'] == 2, (probe['label'], result)
        assert result['ttl'] == probe['ttl'], (probe['label'], result['ttl'])


def tunnel_info(lab, ns_key: str, name: str) -> dict:
    return links(lab[ns_key])[name]['linkinfo']['info_data']


# Each kind: (hand-made change, out-of-band check that it was repaired).

def drift_address_removed(lab):
    ip('addr', 'del', '10.10.10.2/24', 'dev', 'v1', netns=lab['ns1'])
    assert not [a for a in addresses('v1', lab['ns1']) if a.get('local') == '10.10.10.2']


def fixed_address_removed(lab):
    assert [a for a in addresses('v1', lab['ns1']) if a.get('local') == '10.10.10.2' and a.get('prefixlen') == 24]


def drift_link_down(lab):
    ip('link', 'set', 'v1', 'down', netns=lab['ns1'])


def fixed_link_down(lab):
    assert 'UP' in links(lab['ns1'])['v1']['flags']


def drift_tunnel_down(lab):
    ip('link', 'set', 'tunr', 'down', netns=lab['ns2'])


def fixed_tunnel_down(lab):
    assert 'UP' in links(lab['ns2'])['tunr']['flags']


def drift_tunnel_remote(lab):
    ip('tunnel', 'change', 'tunl', 'mode', 'ipip', 'local', '10.10.10.2', 'remote', '10.10.20.99', netns=lab['ns1'])
    assert tunnel_info(lab, 'ns1', 'tunl')['remote'] == '10.10.20.99'


def fixed_tunnel_remote(lab):
    data = tunnel_info(lab, 'ns1', 'tunl')
    assert (data['local'], data['remote']) == ('10.10.10.2', '10.10.20.2')


def drift_route_deleted(lab):
    ip('route', 'del', '10.10.20.0/24', netns=lab['ns1'])


def fixed_route_deleted(lab):
    found = routes(lab['ns1'], '10.10.20.0/24')
    assert [r for r in found if r.get('gateway') == '10.10.10.1'], found


def drift_namespace_deleted(lab):
    ip('netns', 'del', lab['ns2'])
    wait_link_gone('v2-P', lab['router'])  # the router's end goes a little later


def fixed_namespace_deleted(lab):
    assert lab['ns2'] in list_netns()
    assert {'v2', 'tunr'} <= set(links(lab['ns2']))
    assert 'v2-P' in links(lab['router'])


def drift_veth_deleted(lab):
    ip('link', 'del', 'v1-P', netns=lab['router'])
    wait_link_gone('v1', lab['ns1'])


def fixed_veth_deleted(lab):
    assert 'v1-P' in links(lab['router'])
    assert [a for a in addresses('v1', lab['ns1']) if a.get('local') == '10.10.10.2']


def drift_forwarding_off(lab):
    ip('netns', 'exec', lab['router'], 'sysctl', '-qw', 'net.ipv4.ip_forward=0')


def fixed_forwarding_off(lab):
    out = ip('netns', 'exec', lab['router'], 'sysctl', '-n', 'net.ipv4.ip_forward').stdout.strip()
    assert out == '1'


KINDS = ['address_removed', 'link_down', 'tunnel_remote', 'route_deleted', 'namespace_deleted', 'veth_deleted',
         'tunnel_down', 'forwarding_off']


@pytest.mark.parametrize('kind', KINDS)
def test_drift_is_repaired(lab, kind):
    assert not converge(lab)['changed'], 'the lab was not converged before the drift'
    globals()[f'drift_{kind}'](lab)
    first = converge(lab)
    assert first['changed'], f'{kind}: the converge after the drift changed nothing'
    second = converge(lab)
    assert not second['changed'], f"{kind}: the second converge still changed {second['changes']}"
    globals()[f'fixed_{kind}'](lab)
    assert_pings(lab)


def test_drift_repaired_by_the_role(lab, tmp_path):
    """One round through ansible-playbook playbooks/lab.yml.

    The role's own pings are off (ipip_lab_verify: false): a playbook costs
    40-90 s under User-Mode Linux on a busy host, and the pings run in-process.
    """
    assert not converge(lab)['changed']
    drift_route_deleted(lab)
    drift_tunnel_remote(lab)
    proc = playbook(tmp_path, f'{REPO}/playbooks/lab.yml', dict(lab['vars'], ipip_lab_verify=False))
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert recap_changed(proc.stdout) >= 1, proc.stdout[-4000:]
    assert 'failed=0' in proc.stdout
    fixed_route_deleted(lab)
    fixed_tunnel_remote(lab)
    assert not converge(lab)['changed']
    assert_pings(lab)
