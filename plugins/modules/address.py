#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) linuxnet.tunnels contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: address
short_description: Add or remove an IPv4 or IPv6 address on a link, point-to-point ones included
version_added: 0.1.0
description:
  - Adds or removes one address on a link through netlink and pyroute2, like C(ip addr add 10.10.10.1/24 dev veth1)
    or C(ip addr add 10.10.100.10 peer 10.10.200.10 dev tun1).
  - An address is identified by its local address on O(dev). When the address already exists with another prefix length
    or another peer, it is replaced (deleted and added again, RV(action=replace)), because the kernel would otherwise keep
    both side by side. Other addresses on the link are left alone.
  - IPv6 addresses are added with C(nodad) (no duplicate address detection), so they are usable at once, even on a link
    without carrier; a lab has no duplicates to detect.
  - IPv6 addresses disappear when their link goes administratively down (unless C(net.ipv6.conf.DEV.keep_addr_on_down) is set);
    bring links up first.
author:
  - linuxnet.tunnels maintainers (@linuxnet)
options:
  dev:
    description:
      - Name of the link the address belongs to. It must exist when O(state=present).
    type: str
    required: true
  address:
    description:
      - The local address, IPv4 or IPv6, with an optional prefix length, for example V(10.10.10.1/24) or V(fd00:10::1/64).
      - A bare address means V(/32) for IPv4 and V(/128) for IPv6.
      - Written in any valid form; IPv6 is compared in its compressed form.
    type: str
    required: true
  peer:
    description:
      - The address of the other end of a point-to-point link, like C(ip addr add ADDRESS peer PEER).
      - The prefix length then defaults to V(/32) or V(/128) and applies to the peer; it can be written on either O(address)
        or O(peer), not differently on both.
      - Must be of the same family as O(address).
      - Omitted means an ordinary address without a peer; an existing point-to-point address with the same local address is replaced.
    type: str
  state:
    description:
      - Whether the address should exist.
      - V(absent) removes every address with the local address of O(address) on O(dev), whatever its prefix length or peer.
        A missing O(dev) or O(netns) counts as absent.
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - linuxnet.tunnels.common
  - linuxnet.tunnels.common.attributes
seealso:
  - module: linuxnet.tunnels.link
  - module: linuxnet.tunnels.route
'''

EXAMPLES = r'''
- name: Address the veth end in ns1
  linuxnet.tunnels.address:
    dev: veth1
    netns: ns1
    address: 10.10.10.1/24

- name: IPv6 address on the same link
  linuxnet.tunnels.address:
    dev: veth1
    netns: ns1
    address: fd00:10::1/64

- name: Point-to-point address on a tunnel (ip addr add 10.10.100.10 peer 10.10.200.10 dev tun1)
  linuxnet.tunnels.address:
    dev: tun1
    netns: ns1
    address: 10.10.100.10
    peer: 10.10.200.10

- name: Remove it
  linuxnet.tunnels.address:
    dev: veth1
    netns: ns1
    address: 10.10.10.1/24
    state: absent
'''

RETURN = r'''
address:
  description: The address after the task (as predicted, in check mode); null when it does not exist.
  returned: success
  type: dict
  contains:
    dev:
      description: The link.
      type: str
      sample: veth1
    netns:
      description: Namespace of the link; null for the namespace Ansible runs in.
      type: str
      sample: ns1
    address:
      description: Local address and prefix length, canonical form.
      type: str
      sample: 10.10.10.1/24
    local:
      description: The local address alone.
      type: str
      sample: 10.10.10.1
    prefixlen:
      description: Prefix length.
      type: int
      sample: 24
    peer:
      description: The peer of a point-to-point address; null otherwise.
      type: str
      sample: 10.10.200.10
    family:
      description: V(ipv4) or V(ipv6).
      type: str
      sample: ipv4
action:
  description: What the task did (or would do in check mode), V(create), V(replace), V(delete) or V(none).
  returned: always
  type: str
  sample: create
attributes:
  description: For V(replace), what differed (V(prefixlen), V(peer)).
  returned: when an address is replaced
  type: list
  elements: str
  sample: [prefixlen]
note:
  description: Why an address is replaced, or that several addresses are deleted.
  returned: when there is something to explain
  type: str
  sample: >-
    10.10.10.1/24 on veth1 has the same local address; the kernel cannot change the prefix length or peer of an address in place
    (it would keep both), so it is deleted and the new one added
'''

from ansible_collections.linuxnet.tunnels.plugins.module_utils._address import AddressResource
from ansible_collections.linuxnet.tunnels.plugins.module_utils._module import run_resource_module


def main() -> None:
    run_resource_module(AddressResource)


if __name__ == '__main__':
    main()
