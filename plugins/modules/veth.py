#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) linuxnet.tunnels contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: veth
short_description: Create or remove a veth pair, each end in its own network namespace
version_added: 0.1.0
description:
  - Creates or removes a veth pair through netlink and pyroute2, like
    C(ip -n NETNS link add NAME type veth peer name PEER netns PEER_NETNS).
  - The peer is created directly in its namespace, in the same request as the local end, so creation is atomic;
    if a name is taken, nothing is left behind.
  - An existing pair is recognised by what the kernel reports about the local end (the peer's index and namespace id),
    and confirmed by the peer's name and its pointer back to the local end. Pairs made by C(ip link add) are adopted.
  - A link named O(name) that is not this very pair (another kind of link, or a veth whose peer has another name or
    lives in another namespace) is an error, unless O(recreate=true).
author:
  - linuxnet.tunnels maintainers (@linuxnet)
options:
  name:
    description:
      - Name of the local end, in O(netns).
      - At most 15 bytes; no C(/), C(:) or whitespace.
    type: str
    required: true
  peer:
    description:
      - Name of the other end, in O(peer_netns).
      - It may equal O(name) when the two ends live in different namespaces.
    type: str
    required: true
  peer_netns:
    description:
      - Namespace of the peer end. It must exist; it is never created.
      - Omitted means the same namespace as O(netns).
      - To pair a namespace with the namespace Ansible runs in, omit O(netns) and set O(peer_netns).
    type: str
  mtu:
    description:
      - MTU of both ends, 68-65535.
      - Omitted leaves an existing pair's MTU alone; a new pair gets the kernel default (1500).
    type: int
  up:
    description:
      - Whether both ends are administratively up. V(false) brings both ends down.
    type: bool
    default: true
  recreate:
    description:
      - When a link named O(name) exists but is not the wanted pair, delete it (and with it its own peer)
        and create the pair. The result's RV(action) is then V(replace).
      - A link named O(peer) in O(peer_netns) that belongs to something else is never deleted.
    type: bool
    default: false
  state:
    description:
      - Whether the pair should exist.
      - V(absent) deletes the veth named O(name) (both ends go). A link of another kind with that name is an error.
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - linuxnet.tunnels.common
  - linuxnet.tunnels.common.attributes
seealso:
  - module: linuxnet.tunnels.netns
  - module: linuxnet.tunnels.address
  - module: linuxnet.tunnels.link
'''

EXAMPLES = r'''
- name: Link namespaces ns1 and ns2 (veth1 in ns1, veth2 in ns2)
  linuxnet.tunnels.veth:
    name: veth1
    netns: ns1
    peer: veth2
    peer_netns: ns2
    mtu: 1500

- name: Connect ns1 to the namespace Ansible runs in (host end h-ns1)
  linuxnet.tunnels.veth:
    name: h-ns1
    peer: eth0
    peer_netns: ns1

- name: Replace whatever is called veth1 in ns1 by this pair
  linuxnet.tunnels.veth:
    name: veth1
    netns: ns1
    peer: veth3
    peer_netns: ns3
    recreate: true

- name: Remove the pair (both ends)
  linuxnet.tunnels.veth:
    name: veth1
    netns: ns1
    peer: veth2
    peer_netns: ns2
    state: absent
'''

RETURN = r'''
veth:
  description:
    - The pair after the task (as predicted, in check mode); null when it does not exist.
    - Indexes are null in check mode for a pair that is yet to be created.
  returned: success
  type: dict
  contains:
    name:
      description: Name of the local end.
      type: str
      sample: veth1
    netns:
      description: Namespace of the local end; null for the namespace Ansible runs in.
      type: str
      sample: ns1
    index:
      description: Interface index of the local end inside its namespace.
      type: int
      sample: 2
    mtu:
      description: MTU of the local end.
      type: int
      sample: 1500
    up:
      description: Whether the local end is administratively up.
      type: bool
      sample: true
    peer:
      description: The other end, with the same keys (V(name), V(netns), V(index), V(mtu), V(up)).
      type: dict
      sample: {name: veth2, netns: ns2, index: 2, mtu: 1500, up: true}
action:
  description: What the task did (or would do in check mode), V(create), V(update), V(replace), V(delete) or V(none).
  returned: always
  type: str
  sample: create
attributes:
  description: For V(update), the attributes that differed (V(mtu), V(up), V(peer_mtu), V(peer_up)).
  returned: changed
  type: list
  elements: str
  sample: [mtu, peer_mtu]
note:
  description: Why a pair is replaced, or deleted although it is not the expected pair.
  returned: when there is something to explain
  type: str
  sample: "'veth1' is paired with 'veth9' in namespace 'ns2', not with 'veth2' in namespace 'ns2': deleted and created again (recreate: true)"
'''

from ansible_collections.linuxnet.tunnels.plugins.module_utils._module import run_resource_module
from ansible_collections.linuxnet.tunnels.plugins.module_utils._veth import VethResource


def main() -> None:
    run_resource_module(VethResource)


if __name__ == '__main__':
    main()
