#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) linuxnet.tunnels contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: route
short_description: Add, change or remove an IPv4 or IPv6 route
version_added: 0.1.0
description:
  - Manages one unicast route through netlink and pyroute2, like C(ip route add 10.20.0.0/16 via 10.10.10.2 dev veth1 metric 10 table 100).
  - A route is identified by O(dest) and O(table), and for IPv6 also by its metric (the kernel keeps IPv6 routes that differ
    only in metric side by side). A route with that identity but another gateway or device is changed in place (RV(action=update)).
  - An IPv4 route whose O(metric) changes is added anew and the old one deleted (RV(action=replace)), because the kernel
    would otherwise keep both.
  - Only unicast routes are considered; the routing protocol (C(proto)) is not compared, so routes made by C(ip route add)
    are adopted.
author:
  - linuxnet.tunnels maintainers (@linuxnet)
options:
  dest:
    description:
      - Destination network in CIDR notation, such as V(10.20.0.0/16) or V(fd00:20::/64); a bare address means a host route.
      - V(default) is the default route; its family then comes from O(gateway). V(0.0.0.0/0) and V(::/0) are the same as V(default).
      - Host bits must be zero (V(10.20.0.1/16) is refused).
    type: str
    required: true
  gateway:
    description:
      - Next hop (C(via)). Must be on a connected subnet of a link that is up, or the kernel refuses the route; check mode
        cannot predict that refusal.
      - Omitted means a directly connected route through O(dev) (C(scope link)); an existing route with a gateway is then changed.
    type: str
  dev:
    description:
      - Output device. Required when there is no O(gateway).
      - Omitted, the kernel picks the device that reaches O(gateway), and the route's device is not compared.
    type: str
  metric:
    description:
      - Route metric (C(metric), also called priority).
      - Omitted, the metric is not compared; a new route gets the kernel's default (V(0) for IPv4, V(1024) for IPv6).
        When there are several routes to O(dest) in O(table), set it to say which one the task is about.
    type: int
  table:
    description:
      - Routing table number. V(254) is C(main).
    type: int
    default: 254
  state:
    description:
      - Whether the route should exist.
      - V(absent) deletes every route to O(dest) in O(table) that matches the O(gateway), O(dev) and O(metric) given.
        A missing O(netns) counts as absent.
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - linuxnet.tunnels.common
  - linuxnet.tunnels.common.attributes
notes:
  - Bringing a link down flushes the routes through it; bring links up and address them before adding routes.
seealso:
  - module: linuxnet.tunnels.address
  - module: linuxnet.tunnels.sysctl
'''

EXAMPLES = r'''
- name: Reach ns3's network through the router namespace
  linuxnet.tunnels.route:
    netns: ns1
    dest: 10.20.0.0/16
    gateway: 10.10.10.2

- name: Default route of ns2
  linuxnet.tunnels.route:
    netns: ns2
    dest: default
    gateway: 10.10.20.1

- name: IPv6 route through a device only
  linuxnet.tunnels.route:
    netns: ns1
    dest: fd00:20::/64
    dev: veth1

- name: A route in another table, with a metric
  linuxnet.tunnels.route:
    netns: ns1
    dest: 10.40.0.0/16
    gateway: 10.10.10.2
    metric: 10
    table: 100

- name: Remove the route
  linuxnet.tunnels.route:
    netns: ns1
    dest: 10.20.0.0/16
    state: absent
'''

RETURN = r'''
route:
  description:
    - The route after the task (as predicted, in check mode); null when there is none.
  returned: success
  type: dict
  contains:
    dest:
      description: Destination network, or V(default).
      type: str
      sample: 10.20.0.0/16
    family:
      description: V(ipv4) or V(ipv6).
      type: str
      sample: ipv4
    gateway:
      description: Next hop; null for a directly connected route.
      type: str
      sample: 10.10.10.2
    dev:
      description: Output device; in check mode null when the kernel will choose it.
      type: str
      sample: veth1
    metric:
      description: Metric (priority).
      type: int
      sample: 0
    table:
      description: Routing table number.
      type: int
      sample: 254
    netns:
      description: The namespace; null for the namespace Ansible runs in.
      type: str
      sample: ns1
action:
  description: What the task did (or would do in check mode), V(create), V(update), V(replace), V(delete) or V(none).
  returned: always
  type: str
  sample: update
attributes:
  description: For V(update) and V(replace), what differed (V(gateway), V(dev), V(metric)).
  returned: changed
  type: list
  elements: str
  sample: [gateway]
note:
  description: Why a route is replaced, or that several routes are deleted.
  returned: when there is something to explain
  type: str
  sample: metric changes from 0 to 10; the kernel keeps IPv4 routes with different metrics side by side, so the new route is added and the old one deleted
'''

from ansible_collections.linuxnet.tunnels.plugins.module_utils._module import run_resource_module
from ansible_collections.linuxnet.tunnels.plugins.module_utils._route import RouteResource


def main() -> None:
    run_resource_module(RouteResource)


if __name__ == '__main__':
    main()
