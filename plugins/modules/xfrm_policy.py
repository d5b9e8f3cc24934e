#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) linuxnet.tunnels contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: xfrm_policy
short_description: Manage IPsec policies (XFRM policies)
version_added: 0.1.0
description:
  - Adds, changes or deletes one IPsec policy, the kind C(ip xfrm policy add) makes, through XFRM netlink.
  - A policy is identified as the kernel tells policies apart, by O(dir), the selector (O(src) and O(dst)) and O(mark).
    Policies made by C(ip xfrm policy add) are adopted as they are when they match.
  - O(priority) and O(template) are changed in place.
  - A template that no security association in the namespace matches is a warning, not an error (IKE daemons install
    policies before they negotiate the states); until one exists, the traffic the policy selects is dropped.
author:
  - linuxnet.tunnels maintainers (@linuxnet)
options:
  src:
    description:
      - Source network of the selector, an address or a network in CIDR notation (V(0.0.0.0/0) for any IPv4 source).
    type: str
    required: true
  dst:
    description:
      - Destination network of the selector, of the family of O(src).
    type: str
    required: true
  dir:
    description:
      - V(out) for packets sent, V(in) for packets received, V(fwd) for packets forwarded.
    type: str
    choices: [in, out, fwd]
    required: true
  template:
    description:
      - The security association the selected packets must go through (C(ip xfrm policy ... tmpl)).
      - Without it the policy lets the selected packets pass without IPsec.
    type: dict
    suboptions:
      src:
        description:
          - Tunnel source address; required for O(template.mode=tunnel).
        type: str
      dst:
        description:
          - Tunnel destination address; required for O(template.mode=tunnel).
        type: str
      proto:
        description: The IPsec protocol.
        type: str
        choices: [esp]
        default: esp
      mode:
        description: The mode of the security association.
        type: str
        choices: [transport, tunnel]
        default: tunnel
      reqid:
        description:
          - Only a security association with this request id matches; V(0) matches any.
          - Left out, the current one is kept (V(0) for a new policy).
        type: int
      spi:
        description:
          - Only the security association with this SPI matches; V(0) matches any.
          - Left out, the current one is kept (V(0) for a new policy).
        type: int
  priority:
    description:
      - Lower values are preferred when several policies match.
      - Left out, the current one is kept (V(0) for a new policy).
    type: int
  state:
    description:
      - V(present) adds or changes the policy; V(absent) deletes it.
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - linuxnet.tunnels.common
  - linuxnet.tunnels.common.attributes
  - linuxnet.tunnels.xfrm
seealso:
  - module: linuxnet.tunnels.xfrm_state
  - module: linuxnet.tunnels.tunnel
'''

EXAMPLES = r'''
- name: Everything a vti tunnel with key 42 sends goes through ESP in tunnel mode
  linuxnet.tunnels.xfrm_policy:
    netns: ns1
    src: 0.0.0.0/0
    dst: 0.0.0.0/0
    dir: out
    mark:
      value: 42
    template:
      src: 10.10.10.2
      dst: 10.10.20.2
      reqid: 1

- name: And what it receives must have come through ESP
  linuxnet.tunnels.xfrm_policy:
    netns: ns1
    src: 0.0.0.0/0
    dst: 0.0.0.0/0
    dir: in
    mark:
      value: 42
    template:
      src: 10.10.20.2
      dst: 10.10.10.2
      reqid: 2
'''

RETURN = r'''
xfrm_policy:
  description: The policy after the task (as predicted, in check mode); null when absent.
  returned: success
  type: dict
  contains:
    src:
      description: Source network of the selector.
      type: str
      sample: 0.0.0.0/0
    dst:
      description: Destination network of the selector.
      type: str
      sample: 0.0.0.0/0
    dir:
      description: The direction.
      type: str
      sample: out
    action:
      description: V(allow) (or V(block), for an adopted policy that blocks).
      type: str
      sample: allow
    priority:
      description: The priority.
      type: int
      sample: 0
    mark:
      description: The mark (C(value), C(mask)); null when the policy has none.
      type: dict
      sample: {value: 42, mask: 4294967295}
    templates:
      description: The templates (C(src), C(dst), C(proto), C(mode), C(reqid), C(spi)); one, or none.
      type: list
      elements: dict
      sample: [{src: 10.10.10.2, dst: 10.10.20.2, proto: esp, mode: tunnel, reqid: 1, spi: 0}]
    netns:
      description: The namespace; null for the namespace Ansible runs in.
      type: str
      sample: ns1
action:
  description: What the task did (or would do in check mode), V(create), V(update), V(delete) or V(none).
  returned: always
  type: str
  sample: create
attributes:
  description: What differed.
  returned: changed
  type: list
  elements: str
  sample: [templates]
'''

from ansible_collections.linuxnet.tunnels.plugins.module_utils._module import run_resource_module
from ansible_collections.linuxnet.tunnels.plugins.module_utils._xfrm_policy import XfrmPolicyResource


def main() -> None:
    run_resource_module(XfrmPolicyResource)


if __name__ == '__main__':
    main()
