#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) linuxnet.tunnels contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: netns
short_description: Create or remove a named network namespace
version_added: 0.1.0
description:
  - Creates or removes a named network namespace, the kind C(ip netns add) makes, through netlink and pyroute2.
  - Namespaces made by C(ip netns add) and by this module are interchangeable.
  - Removing a namespace destroys the virtual links inside it, and with them the far ends of their veth pairs.
author:
  - linuxnet.tunnels maintainers (@linuxnet)
options:
  name:
    description:
      - Name of the namespace, as C(ip netns list) shows it.
      - Validated as iproute2 does; it cannot be empty, V(.) or V(..), or contain C(/).
    type: str
    required: true
  state:
    description:
      - Whether the namespace should exist.
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - linuxnet.tunnels.common.attributes
notes:
  - Requires pyroute2 >= 0.9.7 on the managed node and root privileges.
seealso:
  - module: linuxnet.tunnels.veth
  - module: linuxnet.tunnels.topology
'''

EXAMPLES = r'''
- name: Create the namespace ns1
  linuxnet.tunnels.netns:
    name: ns1

- name: Remove it again, with everything inside
  linuxnet.tunnels.netns:
    name: ns1
    state: absent
'''

RETURN = r'''
netns:
  description: The namespace after the task; null when it does not exist.
  returned: always
  type: dict
  contains:
    name:
      description: Name of the namespace.
      type: str
      sample: ns1
    path:
      description: The file that pins the namespace.
      type: str
      sample: /run/netns/ns1
action:
  description: What the task did (or would do in check mode).
  returned: always
  type: str
  sample: create
'''

from ansible_collections.linuxnet.tunnels.plugins.module_utils._module import run_resource_module
from ansible_collections.linuxnet.tunnels.plugins.module_utils._netns import NetnsResource


def main() -> None:
    run_resource_module(NetnsResource)


if __name__ == '__main__':
    main()
