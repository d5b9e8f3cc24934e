#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) linuxnet.tunnels contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: net_info
short_description: Read links, addresses, routes and forwarding sysctls of network namespaces
version_added: 0.1.0
description:
  - Reads one (O(netns)), several (O(namespaces)) or all named network namespaces through netlink and pyroute2,
    and returns per namespace its links (kind, admin state, MTU, veth peer and the peer's namespace, every tunnel attribute),
    addresses (with the peer of point-to-point ones), routes, forwarding sysctls, link impairments (netem), and IPsec
    states (without keys) and policies.
  - Returns the same state a second time as RV(topology), in exactly the input format of M(linuxnet.tunnels.topology).
    Feeding it back reproduces the namespaces, and on the same machine reports no change.
  - Never creates or changes anything; a namespace that does not exist is never created by reading it.
author:
  - linuxnet.tunnels maintainers (@linuxnet)
options:
  netns:
    description:
      - Read only this named namespace.
      - A list of names is taken as O(namespaces).
      - Mutually exclusive with O(namespaces). When neither is given, every namespace that C(ip netns list) shows is read.
      - A namespace that does not exist is an error.
    type: raw
  namespaces:
    description:
      - Read these named namespaces.
      - Mutually exclusive with O(netns). A namespace that does not exist is an error.
    type: list
    elements: str
  include_current:
    description:
      - Also read the namespace Ansible itself runs in, reported as RV(current); its items in RV(topology) have no C(netns).
      - When the current namespace has a name (Ansible runs inside a named namespace, for example through the
        C(linuxnet.tunnels.netns) connection), it is reported under that name and RV(current) stays null.
      - By default the current namespace is not read, so the host's own interfaces stay out of the result.
    type: bool
    default: false
  kernel_routes:
    description:
      - Also list the routes the kernel adds by itself (C(proto kernel), such as the connected subnet of an address) in
        each namespace's RV(namespaces.routes).
      - They are never part of RV(topology); the address that made them brings them back.
    type: bool
    default: false
extends_documentation_fragment:
  - linuxnet.tunnels.common.info_module
  - linuxnet.tunnels.common.attributes
requirements:
  - pyroute2 >= 0.9.7 on the managed node
  - "root privileges (C(become: true)) to enter network namespaces"
notes:
  - "What RV(topology) leaves out, because the kernel makes it by itself: the fallback tunnel devices (C(tunl0), C(gre0), C(sit0), ...),
    the loopback addresses C(127.0.0.1/8) and C(::1/128) on C(lo), IPv6 link-local addresses and C(fe80::/64) routes,
    addresses that are not permanent (IPv6 autoconfiguration), routes with protocol C(kernel), C(redirect) or C(ra),
    and the local routing table."
  - What RV(topology) cannot express is left out with a warning, for example multipath routes or a veth whose peer
    is in a namespace without a name.
  - Each veth pair appears once in RV(topology.veths). When its two ends have different MTUs, the item has no C(mtu)
    and one RV(topology.links) item per end gives each end's MTU.
  - The veth module brings both ends of a pair up or down together. When the two ends differ in admin state, the item
    takes the state of the end it names, with a warning; replaying it changes the other end.
  - Links that are neither veths nor tunnels (C(lo), physical NICs, bridges, ...) appear in RV(topology.links) with their state and MTU;
    replaying them elsewhere needs those links to exist there.
  - A veth whose other end is in the current namespace is declared from that end (without C(netns)), because the veth module
    names the peer's namespace, and has no name for the current one.
seealso:
  - module: linuxnet.tunnels.topology
  - module: linuxnet.tunnels.ping
'''

EXAMPLES = r'''
- name: Read every named namespace
  linuxnet.tunnels.net_info:
  register: net

- name: Show what site-a routes
  ansible.builtin.debug:
    var: net.namespaces['site-a'].routes

- name: Read two namespaces and rebuild them elsewhere with one topology call
  linuxnet.tunnels.net_info:
    namespaces: [site-a, site-b]
  register: lab

- name: Replay the same state (on this machine this reports no change)
  linuxnet.tunnels.topology: "{{ lab.topology }}"
'''

RETURN = r'''
namespaces:
  description: Per named namespace read, what is in it.
  returned: always
  type: dict
  sample:
    site-a:
      links:
        - {name: lo, index: 1, kind: null, up: true, mtu: 65536, operstate: UNKNOWN}
        - {name: veth-a, index: 2, kind: veth, up: true, mtu: 1500, operstate: UP,
           peer: {name: veth-r1, netns: router, index: 2, named: true}}
        - name: tun-a
          index: 5
          kind: ipip
          up: true
          mtu: 1480
          operstate: UNKNOWN
          tunnel: {mode: ipip, local: 10.0.1.1, remote: 10.0.2.1, dev: veth-a, ttl: 64, tos: 0, pmtudisc: true,
                   key: null, ikey: null, okey: null, csum: null, seq: null, encap: none, encap_sport: null,
                   encap_dport: null, mtu: 1480, up: true}
      addresses:
        - {dev: veth-a, address: 10.0.1.1/24, local: 10.0.1.1, prefixlen: 24, peer: null, family: ipv4, scope: 0, permanent: true}
      routes:
        - {dest: 0.0.0.0/0, family: ipv4, gateway: 10.0.1.254, dev: veth-a, metric: 0, table: 254, proto: boot, scope: 0,
           multipath: false}
      sysctls: {net.ipv4.ip_forward: '0', net.ipv6.conf.all.forwarding: '0'}
      impairments: []
  contains:
    links:
      description:
        - Every link, with C(name), C(index), C(kind) (null for C(lo) and physical NICs), C(up) (the administrative state),
          C(mtu) and C(operstate) (the kernel's operational state, for information).
        - veths have C(peer) with the peer's C(name), C(netns) (null for the current namespace), C(index), and C(named)
          (false when the peer is in a namespace without a name; C(name) and C(netns) are then null).
        - ipip, gre, sit, isatap and vti tunnels have C(tunnel), their attributes as M(linuxnet.tunnels.tunnel) returns them.
        - The kernel's fallback tunnel devices have C(fallback=true).
      type: list
      elements: dict
    addresses:
      description:
        - Every address, with C(dev), C(address) (with prefix length), C(local), C(prefixlen), C(peer) (point-to-point only),
          C(family), C(scope) and C(permanent) (false for addresses that expire, from IPv6 autoconfiguration).
      type: list
      elements: dict
    routes:
      description:
        - Unicast routes of every table except the local one, with C(dest) (C(0.0.0.0/0) or C(::/0) for a default route),
          C(family), C(gateway), C(dev), C(metric), C(table), C(proto), C(scope) and C(multipath).
        - Routes with protocol C(kernel) only with O(kernel_routes=true).
      type: list
      elements: dict
    sysctls:
      description: C(net.ipv4.ip_forward) and C(net.ipv6.conf.all.forwarding) (absent when the kernel has no IPv6), as strings.
      type: dict
    impairments:
      description:
        - One item per link with a netem qdisc at its root, with C(dev) and every impairment as M(linuxnet.tunnels.netem)
          returns it (C(delay), C(jitter), C(loss), C(rate), ...).
      type: list
      elements: dict
    xfrm_states:
      description:
        - IPsec security associations, as M(linuxnet.tunnels.xfrm_state) returns them, never with their keys (so they are
          not part of RV(topology)).
      type: list
      elements: dict
    xfrm_policies:
      description: IPsec policies, as M(linuxnet.tunnels.xfrm_policy) returns them.
      type: list
      elements: dict
current:
  description: The namespace Ansible runs in, like one entry of RV(namespaces); null unless O(include_current=true).
  returned: always
  type: dict
topology:
  description:
    - The state read, as input for M(linuxnet.tunnels.topology). Each list item takes exactly the options of the single-resource
      module of its kind, and options left to their default are omitted.
  returned: always
  type: dict
  contains:
    namespaces:
      description: One item per named namespace read, with C(name), as for M(linuxnet.tunnels.netns).
      type: list
      elements: dict
      sample: [{name: site-a}, {name: router}]
    veths:
      description: One item per veth pair (one end only), with C(name), C(peer), C(netns), C(peer_netns), C(mtu) and C(up), as for M(linuxnet.tunnels.veth).
      type: list
      elements: dict
      sample: [{name: veth-a, peer: veth-r1, netns: site-a, peer_netns: router, mtu: 1500, up: true}]
    links:
      description: Links that are neither veths nor tunnels, with C(name), C(netns), C(state) (V(up) or V(down)) and C(mtu), as for M(linuxnet.tunnels.link).
      type: list
      elements: dict
      sample: [{name: lo, netns: site-a, state: up, mtu: 65536}]
    addresses:
      description: Addresses, with C(dev), C(netns), C(address) (with prefix length) and C(peer), as for M(linuxnet.tunnels.address).
      type: list
      elements: dict
      sample: [{dev: veth-a, netns: site-a, address: 10.0.1.1/24}]
    routes:
      description: Routes, with C(dest), C(gateway), C(dev), C(metric), C(table) and C(netns), as for M(linuxnet.tunnels.route).
      type: list
      elements: dict
      sample: [{dest: 0.0.0.0/0, gateway: 10.0.1.254, dev: veth-a, metric: 0, table: 254, netns: site-a}]
    sysctls:
      description: The forwarding sysctls, with C(name), C(value) and C(netns), as for M(linuxnet.tunnels.sysctl).
      type: list
      elements: dict
      sample: [{name: net.ipv4.ip_forward, value: '1', netns: router}]
    impairments:
      description: Links with a netem qdisc, with C(dev), C(netns) and the impairments that differ from a new qdisc, as for M(linuxnet.tunnels.netem).
      type: list
      elements: dict
      sample: [{dev: v1-P, netns: router, delay: 50ms, loss: 1%}]
    tunnels:
      description:
        - Tunnels, with C(name), C(netns), C(mode), C(local), C(remote), C(dev), C(ttl), C(tos), C(pmtudisc), C(key) (or C(ikey) and C(okey)),
          C(csum), C(seq), C(encap), C(encap_sport), C(encap_dport), C(mtu) and C(up), as for M(linuxnet.tunnels.tunnel).
      type: list
      elements: dict
      sample: [{name: tun-a, netns: site-a, mode: ipip, local: 10.0.1.1, remote: 10.0.2.1, dev: veth-a, ttl: '64', tos: '0',
                pmtudisc: true, encap: none, mtu: 1480, up: true}]
'''

from ansible_collections.linuxnet.tunnels.plugins.module_utils._info import ARGUMENT_SPEC, MODULE_KWARGS, gather
from ansible_collections.linuxnet.tunnels.plugins.module_utils._module import new_module
from ansible_collections.linuxnet.tunnels.plugins.module_utils._errors import ResourceError
from ansible_collections.linuxnet.tunnels.plugins.module_utils._netlink import Netlink


def main() -> None:
    module = new_module(ARGUMENT_SPEC, **MODULE_KWARGS)
    with Netlink() as nl:
        try:
            found = gather(nl, module.params)
        except ResourceError as exc:
            module.fail_json(msg=str(exc))
    for warning in found['warnings']:
        module.warn(warning)
    module.exit_json(changed=False, **found['result'])


if __name__ == '__main__':
    main()
