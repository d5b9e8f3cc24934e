# -*- coding: utf-8 -*-
# Copyright (c) linuxnet.tunnels contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Filters of the tunnel_mesh role: the plan of a mesh, and its reachability matrix.

Their documentation is in tunnel_mesh_plan.yml and tunnel_mesh_matrix.yml beside this file.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.linuxnet.tunnels.plugins.module_utils._mesh import MeshError, matrix, plan


def tunnel_mesh_plan(hostvars, host, hosts, shape='full', hub=None, mode='gre', pool='', prefix='mesh-', existing=None):
    try:
        return plan(hostvars, str(host), list(hosts), shape=shape, hub=hub or None, mode=mode, pool=pool, prefix=prefix,
                    existing=list(existing or []))
    except MeshError as exc:
        raise AnsibleFilterError(str(exc)) from None


def tunnel_mesh_matrix(hostvars, hosts, result='tunnel_mesh_ping'):
    """Reads each host's registered ping task (`result`, run with the plan's probes) from hostvars."""
    hosts = [str(h) for h in hosts]
    pings = {}
    for host in hosts:
        registered = hostvars[host].get(result)
        if registered and 'probes' in registered:
            # reached: every request answered (the role pings with max_loss 100 and decides on loss)
            pings[host] = [{'host': probe['label'], 'reached': probe.get('loss') == 0} for probe in registered['probes']]
    return matrix(pings, hosts)


class FilterModule:
    def filters(self):
        return {'tunnel_mesh_plan': tunnel_mesh_plan, 'tunnel_mesh_matrix': tunnel_mesh_matrix}
