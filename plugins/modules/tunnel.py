#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) linuxnet.tunnels contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: tunnel
short_description: Manage ipip, gre, sit, isatap and vti tunnels
version_added: 0.1.0
description:
  - Creates, changes or deletes one L3 tunnel over IPv4, the kind C(ip tunnel add) makes, through netlink and pyroute2.
  - Modes are V(ipip) (IPv4 in IPv4, protocol 4), V(gre) (protocol 47), V(sit) (IPv6 in IPv4, protocol 41),
    V(isatap) (sit with the ISATAP flag) and V(vti) (an IPsec virtual tunnel interface).
  - Options that are left out keep the tunnel's current value (on creation, the kernel's default), as with C(ip tunnel change).
  - A tunnel is changed in place where the kernel allows it; the module always sends the complete attribute set, because
    the kernel resets whatever a change request leaves out. A change of O(mode), or of O(remote) between V(any) and an
    address, cannot be made in place, so the tunnel is deleted and created again (action V(replace)); the result's
    C(note) says why.
  - Tunnels made by C(ip tunnel add) or C(ip link add ... type ipip|gre|sit|vti) are adopted as they are.
  - The fallback devices the kernel creates in every namespace (C(tunl0), C(gre0), C(gretap0), C(erspan0), C(sit0),
    C(ip_vti0)) are never touched; naming one of them is an error.
  - Kernels without the tunnel mode (no C(ipip), C(ip_gre), C(sit) or C(ip_vti) module) make the task fail with a message
    saying so.
author:
  - linuxnet.tunnels maintainers (@linuxnet)
options:
  name:
    description:
      - Name of the tunnel interface, at most 15 bytes.
    type: str
    required: true
  mode:
    description:
      - The kind of tunnel.
      - A tunnel that exists in another mode is deleted and created again.
    type: str
    choices: [ipip, gre, sit, isatap, vti]
    default: ipip
  local:
    description:
      - Local IPv4 endpoint (the outer source address), or V(any).
      - The kernel does not check that the address is configured anywhere.
    type: str
  remote:
    description:
      - Remote IPv4 endpoint (the outer destination address), or V(any) for a tunnel that is not point-to-point
        (an V(isatap) tunnel usually has V(any)).
      - Changing it between V(any) and an address re-creates the tunnel.
    type: str
  dev:
    description:
      - Underlay link the outer packets must leave through; it must exist in the tunnel's namespace.
      - The tunnel's MTU stays as it is when O(dev) changes, unless O(mtu) is given too.
    type: str
  ttl:
    description:
      - TTL of the outer packets, V(1) to V(255), or V(inherit) to copy the inner packet's.
      - A fixed TTL needs O(pmtudisc=true).
      - Not for V(vti).
    type: str
  tos:
    description:
      - TOS byte of the outer packets, or V(inherit) to copy the inner packet's.
      - A number is read as decimal unless it starts with V(0x) (C(ip tunnel) reads a bare number as hex, so write V(0x10)
        for what C(ip tunnel ... tos 10) means).
      - Not for V(vti).
    type: str
  pmtudisc:
    description:
      - Path MTU discovery (the DF bit on outer packets).
      - V(false) needs O(ttl=inherit); otherwise the kernel would silently turn it back on.
      - V(vti) tunnels have no such setting; leave it at V(true) there.
    type: bool
    default: true
  key:
    description:
      - GRE key, or VTI key (the mark IPsec policies match), for both directions.
      - A number from 0 to 4294967295 or a dotted quad such as V(0.0.0.10); V(none) removes the key.
      - Only for V(gre) and V(vti). Mutually exclusive with O(ikey) and O(okey).
    type: str
  ikey:
    description:
      - Key of incoming packets; as O(key), for one direction.
    type: str
  okey:
    description:
      - Key of outgoing packets; as O(key), for one direction.
    type: str
  csum:
    description:
      - GRE checksums, in both directions. Only for V(gre).
    type: bool
  seq:
    description:
      - GRE sequence numbers, in both directions. Only for V(gre).
    type: bool
  encap:
    description:
      - Encapsulation of the tunnel's packets in UDP (V(fou) Foo-over-UDP or V(gue) Generic UDP Encapsulation), or V(none).
      - Needs the kernel module C(fou) and a kernel built with C(CONFIG_NET_FOU_IP_TUNNELS); the receiving side also needs
        a C(ip fou add port ...) listener, which this module does not manage.
      - Not for V(vti).
    type: str
    choices: [none, fou, gue]
  encap_sport:
    description:
      - UDP source port with O(encap=fou) or O(encap=gue); V(0) lets the kernel choose per flow.
    type: int
  encap_dport:
    description:
      - UDP destination port with O(encap=fou) or O(encap=gue); required for them.
    type: int
  mtu:
    description:
      - MTU of the tunnel. Left out, the kernel computes it when the tunnel is created and it is kept afterwards.
    type: int
  up:
    description:
      - Whether the tunnel is administratively up.
    type: bool
    default: true
  state:
    description:
      - Whether the tunnel should exist. V(absent) deletes a tunnel of any mode with that name.
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - linuxnet.tunnels.common
  - linuxnet.tunnels.common.attributes
notes:
  - Requires pyroute2 >= 0.9.7 on the managed node and root privileges.
  - Two tunnels of one mode with the same O(local), O(remote), O(dev) (and, for V(gre), input key) cannot coexist in a
    namespace; the module names the tunnel in the way instead of the kernel's bare C(File exists).
  - IPv6 underlays (C(ip6tnl), C(ip6gre)) and Ethernet tunnels (C(gretap)) are not managed by this module.
seealso:
  - module: linuxnet.tunnels.netns
  - module: linuxnet.tunnels.veth
  - module: linuxnet.tunnels.topology
'''

EXAMPLES = r'''
- name: An ipip tunnel from ns1 to ns2, as `ip tunnel add tun0 mode ipip local 10.10.10.2 remote 10.10.20.2 ttl 64` makes it
  linuxnet.tunnels.tunnel:
    name: tun0
    netns: ns1
    local: 10.10.10.2
    remote: 10.10.20.2
    ttl: 64

- name: A keyed GRE tunnel with checksums, bound to an underlay link
  linuxnet.tunnels.tunnel:
    name: gre1
    mode: gre
    local: 192.0.2.1
    remote: 198.51.100.7
    dev: eth0
    key: 42
    csum: true
    mtu: 1400

- name: An ISATAP router interface
  linuxnet.tunnels.tunnel:
    name: isatap0
    mode: isatap
    local: 192.0.2.1

- name: A VTI for route-based IPsec
  linuxnet.tunnels.tunnel:
    name: vti1
    mode: vti
    local: 192.0.2.1
    remote: 198.51.100.7
    ikey: 10
    okey: 11

- name: Remove the tunnel
  linuxnet.tunnels.tunnel:
    name: tun0
    netns: ns1
    state: absent
'''

RETURN = r'''
tunnel:
  description:
    - The tunnel after the task, as the kernel reports it (predicted in check mode); null when it does not exist.
    - Attributes the mode does not have are null.
  returned: always
  type: dict
  contains:
    name:
      description: Interface name.
      type: str
      sample: tun0
    mode:
      description: V(ipip), V(gre), V(sit), V(isatap) or V(vti).
      type: str
      sample: ipip
    local:
      description: Local endpoint, or V(any).
      type: str
      sample: 10.10.10.2
    remote:
      description: Remote endpoint, or V(any).
      type: str
      sample: 10.10.20.2
    dev:
      description: Underlay link; null when the tunnel is not bound to one (or the link is gone).
      type: str
      sample: veth1
    ttl:
      description: Outer TTL, or V(inherit).
      type: raw
      sample: 64
    tos:
      description: Outer TOS as a number, V(inherit), or V(inherit/0x10) (inherit, with a value for non-IP payloads).
      type: raw
      sample: 0
    pmtudisc:
      description: Whether path MTU discovery is on.
      type: bool
      sample: true
    key:
      description: The key of both directions when they are equal, else null.
      type: int
      sample: 42
    ikey:
      description: Key of incoming packets; null without one.
      type: int
      sample: 42
    okey:
      description: Key of outgoing packets; null without one.
      type: int
      sample: 42
    csum:
      description: GRE checksums in both directions; null when only one direction has them.
      type: bool
      sample: false
    seq:
      description: GRE sequence numbers in both directions; null when only one direction has them.
      type: bool
      sample: false
    encap:
      description: V(none), V(fou) or V(gue).
      type: str
      sample: none
    encap_sport:
      description: UDP source port of the encapsulation (0 lets the kernel choose); null without encapsulation.
      type: int
      sample: 0
    encap_dport:
      description: UDP destination port of the encapsulation; null without encapsulation.
      type: int
      sample: 5555
    mtu:
      description: MTU; null in a check run that creates the tunnel without O(mtu) (the kernel computes it).
      type: int
      sample: 1480
    up:
      description: Whether the tunnel is administratively up.
      type: bool
      sample: true
    ifindex:
      description: Interface index in its namespace; null in a check run that creates or re-creates it.
      type: int
      sample: 7
action:
  description: What the task did (or would do in check mode), V(create), V(update), V(replace), V(delete) or V(none).
  returned: always
  type: str
  sample: update
attributes:
  description: The tunnel attributes that differ.
  returned: when an existing tunnel is changed
  type: list
  elements: str
  sample: [ttl, mtu]
note:
  description: Why the tunnel is deleted and created again.
  returned: when the action is V(replace)
  type: str
  sample: "the kernel cannot change a tunnel from ipip to gre in place: it is deleted and created again"
'''

from ansible_collections.linuxnet.tunnels.plugins.module_utils._module import run_resource_module
from ansible_collections.linuxnet.tunnels.plugins.module_utils._tunnel import TunnelResource


def main() -> None:
    run_resource_module(TunnelResource)


if __name__ == '__main__':
    main()
