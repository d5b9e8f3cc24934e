"""The to_mermaid and to_dot filters: the lab in each mode, a hub and its spokes, and graphviz reading the DOT."""

from __future__ import annotations

import re
import subprocess

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.linuxnet.tunnels.plugins.filter.topology_graph import FilterModule, to_dot, to_mermaid
from integration.reliability.common import render_role

LAB_MERMAID = '''flowchart LR
  n0["ns1<br/>v1 10.10.10.2/24<br/>tunl 10.10.100.10 peer 10.10.200.10"]
  n1["ns2<br/>v2 10.10.20.2/24<br/>tunr 10.10.200.10 peer 10.10.100.10"]
  n2{{"ipip-router (forwards IPv4)<br/>v1-P 10.10.10.1/24<br/>v2-P 10.10.20.1/24"}}
  n2 ---|"v1-P - v1"| n0
  n2 ---|"v2-P - v2"| n1
  n0 -.-|"ipip 10.10.10.2 \u2194 10.10.20.2<br/>tunl - tunr"| n1
'''


def lab(**overrides) -> dict:
    """The topology the ipip_lab role builds, rendered from its own variables."""
    return render_role('__ipip_lab_topology', overrides)


def hub_and_spoke(sites: int) -> dict:
    topology: dict = {'namespaces': [{'name': 'hub'}], 'veths': [], 'tunnels': [], 'addresses': [],
                      'sysctls': [{'name': 'net.ipv4.ip_forward', 'value': '1', 'netns': 'hub'}]}
    for i in range(sites):
        hub_ip, site_ip = f'10.64.{i}.1', f'10.64.{i}.2'
        topology['namespaces'].append({'name': f'site{i}'})
        topology['veths'].append({'name': f'hv{i}', 'netns': 'hub', 'peer': 'uplink', 'peer_netns': f'site{i}'})
        topology['addresses'] += [{'dev': f'hv{i}', 'netns': 'hub', 'address': f'{hub_ip}/30'},
                                  {'dev': 'uplink', 'netns': f'site{i}', 'address': f'{site_ip}/30'}]
        topology['tunnels'] += [
            {'name': f't{i}', 'netns': 'hub', 'mode': 'gre', 'local': hub_ip, 'remote': site_ip, 'key': i + 1},
            {'name': 'tun0', 'netns': f'site{i}', 'mode': 'gre', 'local': site_ip, 'remote': hub_ip, 'key': i + 1},
        ]
    return topology


def test_the_default_lab_in_mermaid():
    assert to_mermaid(lab()) == LAB_MERMAID


@pytest.mark.parametrize('mode, label', [
    ('ipip', 'ipip 10.10.10.2 \u2194 10.10.20.2'),
    ('gre', 'gre 10.10.10.2 \u2194 10.10.20.2'),
    ('sit', 'sit 10.10.10.2 \u2194 10.10.20.2'),
])
@pytest.mark.parametrize('router', ['ipip-router', ''])
def test_the_lab_in_each_mode(mode, label, router):
    topology = lab(ipip_lab_mode=mode, ipip_lab_router_netns=router)
    mermaid, dot = to_mermaid(topology), to_dot(topology)
    title = router or 'current namespace'
    inner = ('fd00:100::10', 'fd00:200::10') if mode == 'sit' else ('10.10.100.10', '10.10.200.10')
    assert f'n2{{{{"{title} (forwards IPv4)<br/>v1-P 10.10.10.1/24<br/>v2-P 10.10.20.1/24"}}}}' in mermaid
    assert f'n0["ns1<br/>v1 10.10.10.2/24<br/>tunl {inner[0]} peer {inner[1]}"]' in mermaid
    assert f'  n0 -.-|"{label}<br/>tunl - tunr"| n1' in mermaid
    assert mermaid.count('---|') == 2 and mermaid.count('-.-|') == 1
    assert f'  n2 [label="{title} (forwards IPv4)\\nv1-P 10.10.10.1/24\\nv2-P 10.10.20.1/24", peripheries=2];' in dot
    assert f'  n0 -- n1 [style=dashed, label="{label}\\ntunl - tunr"];' in dot
    assert dot.count(' -- ') == 3


def test_ten_sites_around_a_hub():
    topology = hub_and_spoke(10)
    mermaid, dot = to_mermaid(topology), to_dot(topology, 'hub')
    assert mermaid.startswith('flowchart LR\n  n0{{"hub (forwards IPv4)<br/>hv0 10.64.0.1/30<br/>hv1 10.64.1.1/30<br/>')
    assert '<br/>hv9 10.64.9.1/30<br/>t0<br/>t1<br/>' in mermaid
    for i in range(10):
        assert f'  n0 ---|"hv{i} - uplink"| n{i + 1}\n' in mermaid
        assert f'  n0 -.-|"gre key {i + 1} 10.64.{i}.1 \u2194 10.64.{i}.2<br/>t{i} - tun0"| n{i + 1}\n' in mermaid
        assert f'  n{i + 1} [label="site{i}\\nuplink 10.64.{i}.2/30\\ntun0"];' in dot
    assert mermaid.count('---|') == 10 and mermaid.count('-.-|') == 10
    assert dot.startswith('graph "hub" {') and dot.count('style=dashed') == 10


def test_a_tunnel_whose_other_end_is_elsewhere_goes_to_its_remote_address():
    topology = {'tunnels': [{'name': 'gre1', 'netns': 'edge', 'mode': 'gre', 'local': '192.0.2.1', 'remote': '198.51.100.7', 'key': 5},
                            {'name': 'isa', 'netns': 'edge', 'mode': 'isatap', 'local': '192.0.2.1'}]}
    mermaid = to_mermaid(topology)
    assert mermaid == ('flowchart LR\n  n0["edge<br/>gre1<br/>isa"]\n  r0(["198.51.100.7"])\n'
                       '  n0 -.-|"gre key 5 192.0.2.1 \u2194 198.51.100.7<br/>gre1"| r0\n')
    assert '  n0 -- r0 [style=dashed, label="gre key 5 192.0.2.1 \u2194 198.51.100.7\\ngre1"];' in to_dot(topology)


def test_tunnels_with_other_keys_are_not_paired():
    topology = {'tunnels': [{'name': 'a', 'netns': 'x', 'mode': 'gre', 'local': '10.0.0.1', 'remote': '10.0.0.2', 'key': 1},
                            {'name': 'b', 'netns': 'y', 'mode': 'gre', 'local': '10.0.0.2', 'remote': '10.0.0.1', 'key': 2}]}
    assert to_mermaid(topology).count('-.-|') == 2  # each to its remote address


def test_odd_names_and_absent_items_are_safe():
    topology = {'namespaces': [{'name': 'a"b#c<d>'}, {'name': 'gone', 'state': 'absent'}],
                'addresses': [{'dev': 'x', 'netns': 'a"b#c<d>', 'address': '10.0.0.1/24'}]}
    assert to_mermaid(topology) == 'flowchart LR\n  n0["a#quot;b#35;c#lt;d#gt;<br/>x 10.0.0.1/24"]\n'
    assert 'n0 [label="a\\"b#c<d>\\nx 10.0.0.1/24"];' in to_dot(topology)


@pytest.mark.parametrize('value, words', [
    ('text', 'expected a topology'),
    ({'veths': ['v1']}, 'veths[0]: expected a dictionary'),
])
def test_bad_input_is_a_filter_error(value, words):
    with pytest.raises(AnsibleFilterError, match=re.escape(words)):
        to_mermaid(value)


def test_both_filters_are_registered():
    assert set(FilterModule().filters()) == {'to_mermaid', 'to_dot'}


@pytest.mark.parametrize('topology, nodes, edges', [(lab(), 3, 3), (hub_and_spoke(10), 11, 20)])
def test_graphviz_draws_the_dot(topology, nodes, edges):
    svg = subprocess.run(['dot', '-Tsvg'], input=to_dot(topology), capture_output=True, text=True, check=True).stdout
    assert svg.count('class="node"') == nodes and svg.count('class="edge"') == edges
    assert 'ns1' in svg if nodes == 3 else 'site9' in svg
