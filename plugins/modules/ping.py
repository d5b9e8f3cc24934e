#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) linuxnet.tunnels contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: ping
short_description: Send ICMP or ICMPv6 echo requests from inside a network namespace
version_added: 0.1.0
description:
  - Sends O(count) echo requests to O(dest) from inside the network namespace O(netns) and reports what came back,
    like C(ip netns exec NS ping), without a C(ping) binary or a shell.
  - The module enters the namespace itself; a raw ICMP socket is opened by a thread that has joined the namespace,
    so the module runs unchanged on hosts without iputils.
  - IPv4 and IPv6 are both supported; the family follows O(dest).
  - Fails with a message giving the numbers when the loss is above O(max_loss); the numbers are returned in that case too.
  - Not to be confused with M(ansible.builtin.ping), which tests the Ansible connection and sends no packet.
author:
  - linuxnet.tunnels maintainers (@linuxnet)
options:
  dest:
    description:
      - The address to ping, IPv4 or IPv6, for example V(10.0.0.2) or V(fd00::2).
      - A link-local IPv6 address needs its interface, as in V(fe80::1%veth0).
      - A host name is looked up from inside O(netns) with the machine's resolver configuration;
        the first IPv4 address is used, otherwise the first IPv6 one.
    type: str
    required: true
  netns:
    description:
      - Name of the network namespace (as listed by C(ip netns list)) to ping from.
      - Omitted means the namespace Ansible itself runs in.
      - The namespace must exist; it is never created as a side effect.
    type: str
  count:
    description:
      - Number of echo requests to send, from 1 to 65535.
    type: int
    default: 3
  interval:
    description:
      - Seconds between two echo requests; fractions are allowed.
    type: float
    default: 0.2
  timeout:
    description:
      - How long, in seconds, to wait for each reply, counted from the moment its request was sent.
        A reply that arrives later counts as lost, like C(ping -W).
      - The module returns as soon as every request has been answered; otherwise it ends O(timeout) seconds
        after the last request, so a run takes at most O(count) - 1 times O(interval), plus O(timeout).
    type: float
    default: 2.0
  size:
    description:
      - Bytes of payload in each echo request, as C(ping -s); 56 gives 84-byte IPv4 packets.
      - At most 65507 for IPv4 and 65527 for IPv6.
    type: int
    default: 56
  dont_fragment:
    description:
      - V(true) sets the IPv4 Don't Fragment bit and forbids local fragmentation (IPv4 C(IP_PMTUDISC_DO), IPv6 C(IPV6_DONTFRAG)),
        like C(ping -M do). An echo request larger than the path MTU is lost, and the reason
        (the router's C(Fragmentation needed) or C(Packet too big), or the local C(message too long)) is in RV(errors).
      - V(false) lets the packets be fragmented; for IPv4 the Don't Fragment bit is cleared, so routers fragment too (C(ping -M dont)).
    type: bool
    default: false
  max_loss:
    description:
      - The highest loss, in percent of the requests sent, that still counts as success.
      - The default V(0) fails on any lost reply; V(100) never fails on loss, which is how to prove that something is B(not) reachable
        (test RV(received) afterwards).
    type: float
    default: 0
extends_documentation_fragment:
  - linuxnet.tunnels.common.info_module
  - linuxnet.tunnels.common.attributes
requirements:
  - pyroute2 >= 0.9.7 on the managed node (to enter the namespace)
  - "root privileges (C(become: true)), for the raw ICMP socket and to enter a namespace"
notes:
  - The module never reports C(changed).
  - Raw sockets see every ICMP packet in the namespace; replies are matched by a random identifier,
    the sequence number and a random cookie in the payload, so concurrent pings do not mix.
  - Replies are accepted from O(dest) only, so pinging a broadcast address receives nothing.
seealso:
  - module: linuxnet.tunnels.net_info
  - module: linuxnet.tunnels.topology
'''

EXAMPLES = r'''
- name: Ping site-b from inside site-a, three times
  linuxnet.tunnels.ping:
    dest: 10.10.200.10
    netns: site-a

- name: Check that a 1400-byte payload passes the tunnel without fragmentation
  linuxnet.tunnels.ping:
    dest: fd00:200::10
    netns: site-a
    size: 1400
    dont_fragment: true

- name: Prove that the management network cannot reach the lab
  linuxnet.tunnels.ping:
    dest: 10.10.200.10
    netns: mgmt
    count: 2
    timeout: 0.5
    max_loss: 100
  register: probe
  failed_when: probe.received > 0
'''

RETURN = r'''
dest:
  description: O(dest) as given.
  returned: success or loss above max_loss
  type: str
  sample: 10.10.200.10
address:
  description: The address the requests were sent to (O(dest) resolved).
  returned: success or loss above max_loss
  type: str
  sample: 10.10.200.10
family:
  description: V(ipv4) or V(ipv6).
  returned: success or loss above max_loss
  type: str
  sample: ipv4
netns:
  description: The namespace the requests were sent from; null for the current one.
  returned: success or loss above max_loss
  type: str
  sample: site-a
transmitted:
  description: Echo requests sent, including those the local kernel refused (see RV(errors)).
  returned: success or loss above max_loss
  type: int
  sample: 3
received:
  description: Echo replies received in time, duplicates not included.
  returned: success or loss above max_loss
  type: int
  sample: 3
duplicates:
  description: Extra replies to a request already answered.
  returned: success or loss above max_loss
  type: int
  sample: 0
loss:
  description: Percentage of requests without a reply in time.
  returned: success or loss above max_loss
  type: float
  sample: 0.0
rtt_min:
  description: Shortest round-trip time in milliseconds; null when nothing came back.
  returned: success or loss above max_loss
  type: float
  sample: 0.041
rtt_avg:
  description: Mean round-trip time in milliseconds; null when nothing came back.
  returned: success or loss above max_loss
  type: float
  sample: 0.058
rtt_max:
  description: Longest round-trip time in milliseconds; null when nothing came back.
  returned: success or loss above max_loss
  type: float
  sample: 0.083
ttl:
  description:
    - TTL (IPv4) or hop limit (IPv6) of the first reply, as it arrived; null when nothing came back.
    - 64 from a Linux neighbour, one less per router on the way back.
  returned: success or loss above max_loss
  type: int
  sample: 63
ttls:
  description: Every distinct TTL or hop limit seen in the replies, sorted.
  returned: success or loss above max_loss
  type: list
  elements: int
  sample: [63]
errors:
  description:
    - Why requests were lost, when the network said so; one entry per event, naming the sequence number.
    - ICMP errors about our requests (unreachable, fragmentation needed or packet too big with the MTU, TTL exceeded),
      and local send errors such as C(message too long) with the path MTU.
  returned: success or loss above max_loss
  type: list
  elements: str
  sample: ['icmp_seq=1: Fragmentation needed and DF set (next-hop MTU 1280) (from 10.0.1.1)']
'''

from ansible_collections.linuxnet.tunnels.plugins.module_utils._module import new_module
from ansible_collections.linuxnet.tunnels.plugins.module_utils._netlink import ResourceError
from ansible_collections.linuxnet.tunnels.plugins.module_utils._ping import ARGUMENT_SPEC, loss_message, ping


def main() -> None:
    module = new_module(ARGUMENT_SPEC)
    try:
        result = ping(module.params)
    except ResourceError as exc:
        module.fail_json(msg=str(exc), changed=False)
    failure = loss_message(module.params, result)
    if failure:
        module.fail_json(msg=failure, changed=False, **result)
    module.exit_json(changed=False, **result)


if __name__ == '__main__':
    main()
