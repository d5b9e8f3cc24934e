#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) linuxnet.tunnels contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: topology
short_description: Declare a whole lab of namespaces, veths, tunnels, addresses, routes, sysctls, impairments and IPsec in one task
version_added: 0.1.0
description:
  - Creates, changes or removes a whole topology in one task, through the same code as the single-resource
    modules, in one process and one netlink session. A lab of twenty objects costs one module start instead of twenty.
  - Each list takes items with exactly the options of the module of the same kind, including their defaults;
    O(namespaces) as M(linuxnet.tunnels.netns), O(veths) as M(linuxnet.tunnels.veth), O(tunnels) as
    M(linuxnet.tunnels.tunnel), O(links) as M(linuxnet.tunnels.link), O(addresses) as M(linuxnet.tunnels.address),
    O(routes) as M(linuxnet.tunnels.route), O(sysctls) as M(linuxnet.tunnels.sysctl), O(impairments) as
    M(linuxnet.tunnels.netem), O(xfrm_states) as M(linuxnet.tunnels.xfrm_state) and O(xfrm_policies) as
    M(linuxnet.tunnels.xfrm_policy).
  - Every item is validated (types, choices, required options, and the checks of its module) before anything is
    touched; errors name the list and the position, as in C(veths[2]).
  - With O(state=present), items are handled in dependency order, each planned and applied before the next one is
    planned; first the namespaces, then namespace by namespace the veths with an end in it, its tunnels, links,
    addresses, routes, sysctls, impairments, IPsec states and IPsec policies (hubs, the namespaces with the most veths,
    come last).
  - With O(state=absent), what is listed is removed in reverse order. Objects inside a listed namespace go with it
    and are not removed one by one; a veth with an end outside the removed namespaces is deleted explicitly.
    Objects or namespaces that are already gone are nothing to do, so a teardown can be run again.
  - When an item fails, the task stops with a message that starts with the item and its object
    (for example C(tunnels[0]) and C(ns1/tunl)) and removes again everything this task created before the failure.
    Changes to objects that existed before (updates, purged objects) are not reverted.
author:
  - linuxnet.tunnels maintainers (@linuxnet)
options:
  namespaces:
    description:
      - "Network namespaces; each item takes the options of M(linuxnet.tunnels.netns) (C(name), C(state)),
        or is just the name: V(ns1) is short for V({name: ns1})."
      - With O(state=present) every namespace an item refers to (its C(netns), a veth's C(peer_netns)) must be listed
        here or exist already.
    type: list
    elements: raw
    default: []
  veths:
    description:
      - veth pairs; each item takes the options of M(linuxnet.tunnels.veth) (C(name), C(peer), C(netns),
        C(peer_netns), C(mtu), C(up), C(recreate), C(state)).
    type: list
    elements: dict
    default: []
  tunnels:
    description:
      - ipip, gre, sit, isatap and vti tunnels; each item takes the options of M(linuxnet.tunnels.tunnel)
        (C(name), C(netns), C(mode), C(local), C(remote), C(dev), C(ttl), C(tos), C(pmtudisc), C(key), ...),
        or is just the name (of a tunnel with the module's defaults, in the namespace Ansible runs in).
    type: list
    elements: raw
    default: []
  links:
    description:
      - Admin state and MTU of links that exist or that this topology makes (C(lo) in a new namespace, one end of a veth);
        each item takes the options of M(linuxnet.tunnels.link) (C(name), C(netns), C(state), C(mtu)),
        or is just the name (of a link in the namespace Ansible runs in).
      - Settings, not objects; O(state=absent) leaves them alone.
    type: list
    elements: raw
    default: []
  addresses:
    description:
      - Addresses; each item takes the options of M(linuxnet.tunnels.address) (C(dev), C(netns), C(address), C(peer),
        C(state)).
    type: list
    elements: dict
    default: []
  routes:
    description:
      - Routes; each item takes the options of M(linuxnet.tunnels.route) (C(dest), C(gateway), C(dev), C(metric),
        C(table), C(netns), C(state)).
    type: list
    elements: dict
    default: []
  sysctls:
    description:
      - Per-namespace sysctls; each item takes the options of M(linuxnet.tunnels.sysctl) (C(name), C(value), C(netns),
        C(original_file), C(state)).
      - Settings, not objects; O(state=absent) leaves them alone (inside a removed namespace they go with it), except
        an item with C(original_file), whose kept value is put back and file deleted, as with
        O(linuxnet.tunnels.sysctl#module:state=absent).
    type: list
    elements: dict
    default: []
  impairments:
    description:
      - Link impairments (a netem qdisc); each item takes the options of M(linuxnet.tunnels.netem) (C(dev), C(netns),
        C(delay), C(jitter), C(loss), C(rate), ..., C(state), C(force)).
      - With O(state=absent) the impairments of links that stay are removed (the link gets its default qdisc back).
    type: list
    elements: dict
    default: []
  xfrm_states:
    description:
      - IPsec security associations; each item takes the options of M(linuxnet.tunnels.xfrm_state) (C(src), C(dst),
        C(spi), C(mode), C(reqid), C(aead) or C(auth) and C(enc), C(mark), C(netns), C(state)).
      - Their keys are never returned, logged or shown in a diff.
    type: list
    elements: dict
    default: []
    suboptions:
      netns:
        description: As O(linuxnet.tunnels.xfrm_state#module:netns).
        type: str
      src:
        description: As O(linuxnet.tunnels.xfrm_state#module:src).
        type: str
      dst:
        description: As O(linuxnet.tunnels.xfrm_state#module:dst).
        type: str
        required: true
      proto:
        description: As O(linuxnet.tunnels.xfrm_state#module:proto).
        type: str
        choices: [esp]
        default: esp
      spi:
        description: As O(linuxnet.tunnels.xfrm_state#module:spi).
        type: int
        required: true
      mode:
        description: As O(linuxnet.tunnels.xfrm_state#module:mode).
        type: str
        choices: [transport, tunnel]
        default: tunnel
      reqid:
        description: As O(linuxnet.tunnels.xfrm_state#module:reqid).
        type: int
      aead:
        description: As O(linuxnet.tunnels.xfrm_state#module:aead).
        type: dict
        suboptions:
          name:
            description: As O(linuxnet.tunnels.xfrm_state#module:aead.name).
            type: str
            required: true
          key:
            description: As O(linuxnet.tunnels.xfrm_state#module:aead.key).
            type: str
            required: true
          icv_len:
            description: As O(linuxnet.tunnels.xfrm_state#module:aead.icv_len).
            type: int
            default: 128
      auth:
        description: As O(linuxnet.tunnels.xfrm_state#module:auth).
        type: dict
        suboptions:
          name:
            description: As O(linuxnet.tunnels.xfrm_state#module:auth.name).
            type: str
            required: true
          key:
            description: As O(linuxnet.tunnels.xfrm_state#module:auth.key).
            type: str
            required: true
          trunc_len:
            description: As O(linuxnet.tunnels.xfrm_state#module:auth.trunc_len).
            type: int
      enc:
        description: As O(linuxnet.tunnels.xfrm_state#module:enc).
        type: dict
        suboptions:
          name:
            description: As O(linuxnet.tunnels.xfrm_state#module:enc.name).
            type: str
            required: true
          key:
            description: As O(linuxnet.tunnels.xfrm_state#module:enc.key).
            type: str
            required: true
      mark:
        description: As O(linuxnet.tunnels.xfrm_state#module:mark).
        type: dict
        suboptions:
          value:
            description: As O(linuxnet.tunnels.xfrm_state#module:mark.value).
            type: int
            required: true
          mask:
            description: As O(linuxnet.tunnels.xfrm_state#module:mark.mask).
            type: int
            default: 0xffffffff
      state:
        description: As O(linuxnet.tunnels.xfrm_state#module:state).
        type: str
        choices: [present, absent]
        default: present
  xfrm_policies:
    description:
      - IPsec policies; each item takes the options of M(linuxnet.tunnels.xfrm_policy) (C(src), C(dst), C(dir),
        C(template), C(mark), C(priority), C(netns), C(state)). They are handled after the states of their namespace,
        so a template finds the states declared with it.
    type: list
    elements: dict
    default: []
  state:
    description:
      - V(present) creates or updates everything listed; an item's own C(state) is honoured, so an item with
        C(state=absent) is removed.
      - V(absent) removes everything listed (the items' own C(state) is ignored) and leaves O(links) and O(sysctls) alone
        (a sysctl with C(original_file) gets its kept value back).
    type: str
    choices: [present, absent]
    default: present
  purge:
    description:
      - With O(state=present), also remove the routes, addresses and links found inside the namespaces listed
        under O(namespaces) that the topology does not declare (the C(overridden) state of network resource modules).
      - Never touched are namespaces that are not listed (the one Ansible runs in included), C(lo) and its addresses,
        the fallback tunnel devices the kernel keeps in every namespace (C(tunl0), C(gre0), C(sit0), ...),
        links without a kind (physical NICs), links an item refers to (as C(dev), say), IPv6 link-local and
        autoconfigured addresses, and routes the kernel made or learned (C(proto kernel), C(ra), C(redirect)),
        in the C(local) table, or with several next hops.
      - A veth whose other end lives in a namespace that is not listed is kept, with a warning, because deleting one
        end deletes the other one outside the topology. Declare that veth, or remove it with M(linuxnet.tunnels.veth).
      - What goes with a purged link (its addresses and routes, a veth's other end) is not listed separately.
      - IPsec states and policies that are not declared are kept (an IKE daemon may own them).
      - Ignored with O(state=absent).
    type: bool
    default: false
  verify:
    description:
      - After everything is in place, run these probes (and captures) as M(linuxnet.tunnels.ping) runs its
        O(linuxnet.tunnels.ping#module:probes), in the same module run. A lab is built and proved in one task,
        without a second module start.
      - The task fails when a probe misses its expectation, with a message that names each one; what was built
        stays, and RV(verification) holds every probe's outcome.
      - The probes and captures are checked before anything is touched. Only with O(state=present); in check mode
        nothing is built, so nothing is pinged.
    type: dict
    suboptions:
      probes:
        description: As O(linuxnet.tunnels.ping#module:probes).
        type: list
        elements: dict
        required: true
        suboptions:
          label:
            description: As O(linuxnet.tunnels.ping#module:probes[].label).
            type: str
          dest:
            description: As O(linuxnet.tunnels.ping#module:dest).
            type: str
            required: true
          netns:
            description: As O(linuxnet.tunnels.ping#module:netns).
            type: str
          count:
            description: As O(linuxnet.tunnels.ping#module:count).
            type: int
          interval:
            description: As O(linuxnet.tunnels.ping#module:interval).
            type: float
          timeout:
            description: As O(linuxnet.tunnels.ping#module:timeout).
            type: float
          size:
            description: As O(linuxnet.tunnels.ping#module:size).
            type: int
          dont_fragment:
            description: As O(linuxnet.tunnels.ping#module:dont_fragment).
            type: bool
          max_loss:
            description: As O(linuxnet.tunnels.ping#module:max_loss).
            type: float
          ttl:
            description: As O(linuxnet.tunnels.ping#module:ttl).
            type: int
          expect:
            description: As O(linuxnet.tunnels.ping#module:expect).
            type: str
            choices: [reply, fail]
      capture:
        description: As O(linuxnet.tunnels.ping#module:capture).
        type: list
        elements: dict
        suboptions:
          netns:
            description: As O(linuxnet.tunnels.ping#module:capture[].netns).
            type: str
          dev:
            description: As O(linuxnet.tunnels.ping#module:capture[].dev).
            type: str
            required: true
          pcap:
            description: As O(linuxnet.tunnels.ping#module:capture[].pcap).
            type: path
      netns:
        description: The namespace of the probes that leave out theirs, as O(linuxnet.tunnels.ping#module:netns).
        type: str
      count:
        description: The default of the probes' C(count).
        type: int
        default: 3
      interval:
        description: The default of the probes' C(interval).
        type: float
        default: 0.2
      timeout:
        description: The default of the probes' C(timeout).
        type: float
        default: 2.0
      size:
        description: The default of the probes' C(size).
        type: int
        default: 56
      dont_fragment:
        description: The default of the probes' C(dont_fragment).
        type: bool
        default: false
      max_loss:
        description: The default of the probes' C(max_loss).
        type: float
        default: 0
      ttl:
        description: The default of the probes' C(ttl).
        type: int
      expect:
        description: The default of the probes' C(expect).
        type: str
        choices: [reply, fail]
        default: reply
extends_documentation_fragment:
  - linuxnet.tunnels.common.attributes
attributes:
  check_mode:
    support: partial
    details:
      - Check mode plans every item through its resource, taking into account what earlier items of the same task
        would have made, and returns for each change the same action, attributes, and (with C(--diff)) before and
        after states, in the same shape, as a real run.
      - "Not exact, and marked by RV(changes[].uncertain) where it shows: setting in O(links) the MTU of a tunnel
        created without C(mtu) (the kernel picks that MTU); a sysctl, or a fallback device such as C(tunl0), in a
        namespace the task creates (its value there is not known before it exists); the C(index) and C(operstate)
        of links the task creates, which are null in a prediction."
      - When the task replaces or removes an address, the kernel may flush the routes whose gateway only that address
        made reachable; a route item after it is then predicted as an update but created again.
notes:
  - Requires pyroute2 >= 0.9.7 on the managed node and root privileges.
  - In diff mode, the C(diff) of the result is a list with one before/after pair per changed object.
  - The result does not read every object back; use M(linuxnet.tunnels.net_info) for the resulting state.
seealso:
  - module: linuxnet.tunnels.netns
  - module: linuxnet.tunnels.veth
  - module: linuxnet.tunnels.tunnel
  - module: linuxnet.tunnels.link
  - module: linuxnet.tunnels.address
  - module: linuxnet.tunnels.route
  - module: linuxnet.tunnels.sysctl
  - module: linuxnet.tunnels.netem
  - module: linuxnet.tunnels.net_info
'''

EXAMPLES = r'''
- name: The two-namespace IPIP lab, in one task
  linuxnet.tunnels.topology:
    namespaces:
      - name: ns1
      - name: ns2
      - name: router
    veths:
      - {name: v1, netns: ns1, peer: v1-P, peer_netns: router}
      - {name: v2, netns: ns2, peer: v2-P, peer_netns: router}
    tunnels:
      - {name: tunl, netns: ns1, mode: ipip, local: 10.10.10.2, remote: 10.10.20.2}
      - {name: tunr, netns: ns2, mode: ipip, local: 10.10.20.2, remote: 10.10.10.2}
    addresses:
      - {dev: v1, netns: ns1, address: 10.10.10.2/24}
      - {dev: v1-P, netns: router, address: 10.10.10.1/24}
      - {dev: v2, netns: ns2, address: 10.10.20.2/24}
      - {dev: v2-P, netns: router, address: 10.10.20.1/24}
      - {dev: tunl, netns: ns1, address: 10.10.100.10, peer: 10.10.200.10}
      - {dev: tunr, netns: ns2, address: 10.10.200.10, peer: 10.10.100.10}
    routes:
      - {dest: 10.10.20.0/24, gateway: 10.10.10.1, netns: ns1}
      - {dest: 10.10.10.0/24, gateway: 10.10.20.1, netns: ns2}
    sysctls:
      - {name: net.ipv4.ip_forward, value: '1', netns: router}
    impairments:
      - {dev: v1-P, netns: router, delay: 50ms, loss: 1%}

- name: Keep only what is declared inside ns1 (remove addresses, routes and links added by hand)
  linuxnet.tunnels.topology:
    namespaces:
      - name: ns1
    veths:
      - {name: v1, netns: ns1, peer: v1-P, peer_netns: router}
    addresses:
      - {dev: v1, netns: ns1, address: 10.10.10.2/24}
    purge: true

- name: Build a tunnel between two namespaces and ping through it, in one module run
  linuxnet.tunnels.topology:
    namespaces: [site-a, site-b]
    veths:
      - {name: uplink, netns: site-a, peer: uplink, peer_netns: site-b}
    addresses:
      - {dev: uplink, netns: site-a, address: 192.0.2.1/30}
      - {dev: uplink, netns: site-b, address: 192.0.2.2/30}
      - {dev: gre1, netns: site-a, address: 10.0.0.1, peer: 10.0.0.2}
      - {dev: gre1, netns: site-b, address: 10.0.0.2, peer: 10.0.0.1}
    tunnels:
      - {name: gre1, netns: site-a, mode: gre, local: 192.0.2.1, remote: 192.0.2.2, key: 7}
      - {name: gre1, netns: site-b, mode: gre, local: 192.0.2.2, remote: 192.0.2.1, key: 7}
    verify:
      probes:
        - {label: a to b through gre1, netns: site-a, dest: 10.0.0.2, ttl: 64}
      capture:
        - {netns: site-a, dev: uplink}
  register: built

- name: Show what crossed the uplink
  ansible.builtin.debug:
    msg: "{{ built.verification.lines }}"

- name: Tear the lab down (the namespaces take their contents with them)
  linuxnet.tunnels.topology:
    namespaces:
      - name: ns1
      - name: ns2
      - name: router
    state: absent
'''

RETURN = r'''
changes:
  description: One entry per object that was (or, in check mode, would be) created, changed or removed, in order.
  returned: always
  type: list
  elements: dict
  contains:
    kind:
      description: The kind of object (V(netns), V(veth), V(tunnel), V(link), V(address), V(route), V(sysctl), V(netem)).
      type: str
      sample: veth
    name:
      description: The object, with its namespace in front (V(ns1/v1), V(ns1/10.10.10.2/24 dev v1)).
      type: str
      sample: ns1/v1
    action:
      description: V(create), V(update), V(replace) or V(delete).
      type: str
      sample: create
    attributes:
      description: For an update or a replace, the attributes that differ.
      type: list
      elements: str
      returned: when some differ
      sample: [mtu]
    note:
      description: Why, when the action is not obvious (a replace, an object removed by O(purge)).
      type: str
      returned: when there is something to explain
      sample: not declared (purge)
    item:
      description: The list item behind the change (V(veths[0])), or V(purge) for an object O(purge) removes.
      type: str
      sample: veths[0]
    uncertain:
      description:
        - In check mode, why this prediction may differ from what a real run does (see the C(check_mode) attribute).
      type: str
      returned: in check mode, when the prediction is not exact
      sample: the namespace is made by this task, so the value it starts with is not known yet
created:
  description: The objects created, as C(kind name).
  returned: success
  type: list
  elements: str
  sample: [netns ns1, veth ns1/v1]
updated:
  description: The objects changed in place or replaced, as C(kind name).
  returned: success
  type: list
  elements: str
  sample: [link ns1/lo]
removed:
  description: The objects removed, as C(kind name).
  returned: success
  type: list
  elements: str
  sample: [address ns1/10.10.10.9/24 dev v1]
counts:
  description: How many objects were created, updated and removed.
  returned: success
  type: dict
  contains:
    created:
      description: Objects created.
      type: int
      sample: 14
    updated:
      description: Objects changed in place or replaced.
      type: int
      sample: 0
    removed:
      description: Objects removed.
      type: int
      sample: 0
verification:
  description:
    - What O(verify) found, as M(linuxnet.tunnels.ping) returns it for O(linuxnet.tunnels.ping#module:probes)
      (see its RV(linuxnet.tunnels.ping#module:probes), RV(linuxnet.tunnels.ping#module:packets) and
      RV(linuxnet.tunnels.ping#module:lines)).
  returned: with O(verify), when the topology was built (not in check mode)
  type: dict
  contains:
    probes:
      description: One outcome per item of O(verify.probes), in order.
      type: list
      elements: dict
    packets:
      description: Every packet the links of O(verify.capture) saw, decoded.
      type: list
      elements: dict
    lines:
      description: Each probe's outcome, and what was captured of it, one line each.
      type: list
      elements: str
      sample:
        - 'ns1 -> 10.10.200.10 through tunl: 3/3 replies, ttl 64 as expected'
        - '  v1-P: 10.10.10.2 > 10.10.20.2 ipip | 10.10.100.10 > 10.10.200.10 icmp echo-request'
rolled_back:
  description: After a failure, the objects this task had created and removed again, as C(kind name).
  returned: failure after something was created
  type: list
  elements: str
  sample: [veth ns1/v1, netns ns1]
'''

from ansible_collections.linuxnet.tunnels.plugins.module_utils._topology import run_topology_module


def main() -> None:
    run_topology_module()


if __name__ == '__main__':
    main()
