#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) linuxnet.tunnels contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: link
short_description: Set the admin state and MTU of an existing network link
version_added: 0.1.0
description:
  - Brings an existing link up or down and sets its MTU, like C(ip link set NAME up mtu N), through netlink and pyroute2.
  - For links that already exist, such as C(lo) in a new namespace or a physical NIC. It never creates or deletes a link;
    use M(linuxnet.tunnels.veth) or M(linuxnet.tunnels.tunnel) for that.
  - A link that does not exist is an error, in check mode too.
author:
  - linuxnet.tunnels maintainers (@linuxnet)
options:
  name:
    description:
      - Name of the link, as C(ip link) shows it.
    type: str
    required: true
  state:
    description:
      - Administrative state of the link (the C(UP) flag). V(up) does not guarantee carrier; see RV(link.operstate).
      - Bringing a link down flushes its IPv6 addresses and the routes through it.
      - Omitted leaves the administrative state as it is.
    type: str
    choices: [up, down]
  mtu:
    description:
      - MTU of the link in bytes. Must lie within the limits the link reports (veth 68-65535).
      - Omitted leaves the MTU as it is.
    type: int
extends_documentation_fragment:
  - linuxnet.tunnels.common
  - linuxnet.tunnels.common.attributes
seealso:
  - module: linuxnet.tunnels.veth
  - module: linuxnet.tunnels.address
'''

EXAMPLES = r'''
- name: Bring up the loopback of namespace ns1
  linuxnet.tunnels.link:
    name: lo
    netns: ns1
    state: up

- name: Set a smaller MTU on the veth end in ns1
  linuxnet.tunnels.link:
    name: veth1
    netns: ns1
    mtu: 1400
'''

RETURN = r'''
link:
  description: The link after the task (as predicted, in check mode).
  returned: success
  type: dict
  contains:
    name:
      description: Name of the link.
      type: str
      sample: lo
    netns:
      description: Namespace of the link; null for the namespace Ansible runs in.
      type: str
      sample: ns1
    index:
      description: Interface index inside its namespace.
      type: int
      sample: 1
    kind:
      description: Link kind (V(veth), V(ipip), ...); null for loopback and physical NICs.
      type: str
      sample: veth
    up:
      description: Whether the link is administratively up.
      type: bool
      sample: true
    mtu:
      description: MTU in bytes.
      type: int
      sample: 1500
    operstate:
      description: Operational state as the kernel reports it (V(UP), V(DOWN), V(LOWERLAYERDOWN), V(UNKNOWN)); information only.
      type: str
      sample: UNKNOWN
action:
  description: What the task did (or would do in check mode), V(update) or V(none).
  returned: always
  type: str
  sample: update
attributes:
  description: The attributes that differed (V(up), V(mtu)).
  returned: changed
  type: list
  elements: str
  sample: [up]
'''

from ansible_collections.linuxnet.tunnels.plugins.module_utils._link import LinkResource
from ansible_collections.linuxnet.tunnels.plugins.module_utils._module import run_resource_module


def main() -> None:
    run_resource_module(LinkResource)


if __name__ == '__main__':
    main()
