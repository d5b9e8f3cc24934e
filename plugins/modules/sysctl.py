#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) linuxnet.tunnels contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: sysctl
short_description: Set a per-namespace sysctl (net.*) at runtime
version_added: 0.1.0
description:
  - Sets one kernel parameter under C(net.) inside a network namespace, like C(ip netns exec NS sysctl -w net.ipv4.ip_forward=1),
    by writing C(/proc/sys/net) from a thread that has entered the namespace.
  - Runtime only; nothing is persisted, and a new namespace starts with the kernel defaults (for example C(ip_forward=0)).
  - Only keys under C(net.) can be per namespace. Other keys (C(kernel.), C(vm.), C(fs.), ...) are refused, and so is a
    C(net.) key that does not exist inside the target namespace (some, such as C(net.core.rmem_max), are global to
    the host and exist only in the initial namespace).
  - Returns the value the key had before the task as RV(sysctl.previous).
  - With O(original_file), the first change also keeps the value it replaces in that file, and O(state=absent) puts
    that value back and deletes the file, so that borrowing a switch such as C(net.ipv4.ip_forward) of a real host
    leaves the host as it was found.
author:
  - linuxnet.tunnels maintainers (@linuxnet)
options:
  name:
    description:
      - The key, dot-separated as C(sysctl) writes it, starting with C(net.), for example V(net.ipv4.ip_forward).
      - A C(/) inside a part stands for a literal dot, as with C(sysctl(8)) (V(net.ipv4.conf.eth0/100.forwarding) for the
        interface C(eth0.100)).
      - Read-only and write-only keys are refused.
    type: str
    required: true
  value:
    description:
      - The value to set. Compared with the current one word by word, so whitespace does not matter for multi-value keys
        (V(4096 131072 6291456)).
      - Quote numbers that YAML could read otherwise, and write V('1') or V('0'), not V(true) or V(false).
      - Required with O(state=present); ignored with O(state=absent).
    type: str
  original_file:
    description:
      - A file, on the managed host, that keeps the value the key had before this module first changed it.
      - Written (mode 0644, its directory created 0755) just before the first change, and never overwritten while it
        exists, so that running the task again never records its own value. Nothing is written when the key already
        has the value.
      - Under C(/run), a tmpfs, the file vanishes at reboot together with the runtime value it belongs to.
    type: path
  state:
    description:
      - V(present) sets O(value).
      - V(absent) writes back the value kept in O(original_file) and deletes the file. When there is no such file (the
        key was never changed, or was already put back), or no O(original_file), nothing is changed. When the namespace
        is gone, only the file is deleted.
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - linuxnet.tunnels.common
  - linuxnet.tunnels.common.attributes
notes:
  - Without O(netns) the key is set in the namespace Ansible runs in, which on a real host is the host's own network configuration.
seealso:
  - module: ansible.posix.sysctl
    description: Persistent sysctls of the host.
  - module: linuxnet.tunnels.route
'''

EXAMPLES = r'''
- name: Make ns2 a router
  linuxnet.tunnels.sysctl:
    netns: ns2
    name: net.ipv4.ip_forward
    value: '1'

- name: IPv6 forwarding as well
  linuxnet.tunnels.sysctl:
    netns: ns2
    name: net.ipv6.conf.all.forwarding
    value: '1'

- name: Forward in the namespace Ansible runs in, keeping the value found
  linuxnet.tunnels.sysctl:
    name: net.ipv4.ip_forward
    value: '1'
    original_file: /run/lab/ip_forward

- name: Later, put that value back and forget it
  linuxnet.tunnels.sysctl:
    name: net.ipv4.ip_forward
    original_file: /run/lab/ip_forward
    state: absent

- name: No reverse-path filter on the VLAN interface eth0.100 of ns2
  linuxnet.tunnels.sysctl:
    netns: ns2
    name: net.ipv4.conf.eth0/100.rp_filter
    value: '0'
'''

RETURN = r'''
sysctl:
  description: The key after the task (as predicted, in check mode).
  returned: success
  type: dict
  contains:
    name:
      description: The key, as given.
      type: str
      sample: net.ipv4.ip_forward
    netns:
      description: The namespace; null for the namespace Ansible runs in.
      type: str
      sample: ns2
    value:
      description: The current value, as the kernel prints it (in check mode, the value that would be set).
      type: str
      sample: '1'
    previous:
      description: The value before the task; the same as RV(sysctl.value) when nothing changed.
      type: str
      sample: '0'
    original:
      description: The value kept in O(original_file) after the task; null when no file keeps one.
      returned: when O(original_file) is given
      type: str
      sample: '0'
action:
  description: What the task did (or would do in check mode), V(update) or V(none).
  returned: always
  type: str
  sample: update
attributes:
  description: What differed, V(value) and V(original) (a value kept or put back).
  returned: changed
  type: list
  elements: str
  sample: [value]
note:
  description: What happens to O(original_file), when something does.
  returned: when the value found is kept, put back or forgotten
  type: str
  sample: "keeps the value found, '0', in /run/lab/ip_forward"
'''

from ansible_collections.linuxnet.tunnels.plugins.module_utils._module import run_resource_module
from ansible_collections.linuxnet.tunnels.plugins.module_utils._sysctl import SysctlResource


def main() -> None:
    run_resource_module(SysctlResource)


if __name__ == '__main__':
    main()
