"""The tunnel_mesh_plan and tunnel_mesh_matrix filters: what the role passes in, what comes out."""

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.linuxnet.tunnels.plugins.filter.tunnel_mesh import FilterModule

FILTERS = FilterModule().filters()
HOSTVARS = {'a': {'tunnel_mesh_underlay': '192.0.2.1'}, 'b': {'tunnel_mesh_underlay': '192.0.2.2'},
            'c': {'tunnel_mesh_underlay': '192.0.2.3'}}


def test_plan_as_the_role_calls_it():
    got = FILTERS['tunnel_mesh_plan'](HOSTVARS, 'a', ['a', 'b', 'c'], shape='hub', hub='b', mode='ipip',
                                      pool='10.255.0.0/24', prefix='m-', existing=None)
    assert [p['host'] for p in got['peers']] == ['b'] and got['tunnels'][0]['mode'] == 'ipip'


def test_an_empty_hub_counts_as_none():
    with pytest.raises(AnsibleFilterError, match='^tunnel_mesh_hub: required when tunnel_mesh_shape is hub$'):
        FILTERS['tunnel_mesh_plan'](HOSTVARS, 'a', ['a', 'b'], shape='hub', hub='', pool='10.255.0.0/24')


def test_a_bad_input_is_a_filter_error_with_the_message():
    with pytest.raises(AnsibleFilterError, match='^tunnel_mesh_pool: 10.255.0.0/31 holds 1 /31 blocks but the mesh has 3 tunnels'):
        FILTERS['tunnel_mesh_plan'](HOSTVARS, 'a', ['a', 'b', 'c'], pool='10.255.0.0/31')


def test_matrix_from_the_registered_ping_probes():
    def probe(host, transmitted, received):
        return {'label': host, 'transmitted': transmitted, 'received': received, 'loss': 100.0 * (1 - received / transmitted)}

    hostvars = {
        'a': {'tunnel_mesh_ping': {'probes': [probe('b', 1, 1), probe('c', 1, 0)]}},
        'b': {'tunnel_mesh_ping': {'probes': [probe('a', 2, 1)]}},
        'c': {'tunnel_mesh_ping': {'skipped': True}},  # check mode: nothing pinged
    }
    assert FILTERS['tunnel_mesh_matrix'](hostvars, iter(['a', 'b', 'c'])) == [  # as select() hands it over
        '        a    b    c',
        'a       -   ok LOST',
        'b    LOST    -    -',
        'c       ?    ?    ?',
    ]
