#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) linuxnet.tunnels contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: ping
short_description: Send ICMP or ICMPv6 echo requests from inside network namespaces, and capture what crosses the links
version_added: 0.1.0
description:
  - Sends O(count) echo requests to O(dest) from inside the network namespace O(netns) and reports what came back,
    like C(ip netns exec NS ping), without a C(ping) binary or a shell.
  - With O(probes) instead of O(dest), runs several such probes at once, each from its own namespace, in one module run,
    so that a lab is verified in one task.
  - With O(capture), records every packet crossing the given links while the probes run, and returns each one decoded
    layer by layer (outer IP header, GRE, the packet inside the tunnel, ICMP), optionally also as a pcap file.
  - The module enters the namespaces itself; each raw ICMP socket (and packet socket) is opened by a thread that has
    joined its namespace, so the module runs unchanged on hosts without iputils or tcpdump.
  - IPv4 and IPv6 are both supported; the family follows O(dest).
  - A probe misses its expectation when the loss is above O(max_loss), when O(ttl) is set and a reply came back with another
    TTL, or, with O(expect=fail), when any reply came back. The task then fails with one message naming each probe that missed;
    the results are returned in that case too.
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
      - Required unless O(probes) is given; the two are mutually exclusive.
    type: str
  netns:
    description:
      - Name of the network namespace (as listed by C(ip netns list)) to ping from.
      - Omitted means the namespace Ansible itself runs in.
      - The namespace must exist; it is never created as a side effect.
      - The default for the items of O(probes).
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
      - The default V(0) fails on any lost reply; V(100) never fails on loss.
      - Ignored with O(expect=fail).
    type: float
    default: 0
  ttl:
    description:
      - The TTL (IPv4) or hop limit (IPv6) every reply must arrive with, for example V(64) from a Linux neighbour and
        V(63) with one router on the way back. A reply with another one makes the probe miss its expectation.
      - Omitted checks nothing. Not allowed with O(expect=fail).
    type: int
  expect:
    description:
      - V(reply) expects the replies (up to O(max_loss) lost).
      - V(fail) expects no reply at all, to prove that a path does B(not) work (a tunnel with the wrong key, a filtered
        network); a single reply makes the probe miss its expectation.
    type: str
    choices: [reply, fail]
    default: reply
  probes:
    description:
      - Several probes, run at the same time in one module run, instead of the single probe of O(dest).
      - Each item takes O(dest) (required), O(netns), O(count), O(interval), O(timeout), O(size), O(dont_fragment),
        O(max_loss), O(ttl) and O(expect); what an item leaves out is taken from the top-level option of the same name
        (and its default). The results are in RV(probes), one per item, in the same order.
    type: list
    elements: dict
    suboptions:
      label:
        description:
          - A name for the probe in RV(lines) and in the failure message; defaults to C(NETNS -> DEST).
          - Labels must differ between the items.
        type: str
      dest: {description: As O(dest)., type: str, required: true}
      netns: {description: As O(netns)., type: str}
      count: {description: As O(count)., type: int}
      interval: {description: As O(interval)., type: float}
      timeout: {description: As O(timeout)., type: float}
      size: {description: As O(size)., type: int}
      dont_fragment: {description: As O(dont_fragment)., type: bool}
      max_loss: {description: As O(max_loss)., type: float}
      ttl: {description: As O(ttl)., type: int}
      expect: {description: As O(expect)., type: str, choices: [reply, fail]}
  capture:
    description:
      - Links to capture on while the probes run, from just before the first echo request until the last probe ends.
      - Every packet seen in either direction is returned in RV(packets); with O(capture[].pcap) the IP packets are also
        written to a pcap file.
      - A packet socket bound to the link, opened inside its namespace; no C(tcpdump) is needed.
    type: list
    elements: dict
    suboptions:
      netns:
        description:
          - The namespace of the link. Omitted means the namespace Ansible itself runs in (not O(netns)).
          - It must exist.
        type: str
      dev:
        description: The link to capture on; it must exist.
        type: str
        required: true
      pcap:
        description:
          - A file on the managed node to write the captured IP packets to, in the pcap format that C(tcpdump -r) and
            Wireshark read (link type raw IP, microsecond time stamps). It is overwritten.
          - It is written in check mode too, and does not count as a change.
        type: path
extends_documentation_fragment:
  - linuxnet.tunnels.common.info_module
  - linuxnet.tunnels.common.attributes
requirements:
  - pyroute2 >= 0.9.7 on the managed node (to enter the namespace)
  - "root privileges (C(become: true)), for the raw ICMP and packet sockets and to enter a namespace"
notes:
  - The module never reports C(changed).
  - All probes and captures are driven from one loop over non-blocking sockets; the run takes as long as its slowest probe.
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
    expect: fail

- name: Verify a lab in one task, capturing on the router, and show what crossed it
  linuxnet.tunnels.ping:
    probes:
      - label: through the tunnel
        netns: site-a
        dest: 10.10.200.10
        ttl: 64
      - label: routed
        netns: site-a
        dest: 10.10.20.2
        ttl: 63
      - label: wrong key must not pass
        netns: site-c
        dest: 10.10.200.10
        expect: fail
        timeout: 0.5
    capture:
      - netns: router
        dev: v1-P
        pcap: /tmp/v1-P.pcap
    count: 3
    interval: 0.05
  register: lab_check

- name: One line per probe, and the packet each one sent as the router saw it
  ansible.builtin.debug:
    msg: "{{ lab_check.lines }}"
'''

RETURN = r'''
dest:
  description: O(dest) as given.
  returned: with O(dest), on success or a missed expectation
  type: str
  sample: 10.10.200.10
address:
  description: The address the requests were sent to (O(dest) resolved).
  returned: with O(dest), on success or a missed expectation
  type: str
  sample: 10.10.200.10
family:
  description: V(ipv4) or V(ipv6).
  returned: with O(dest), on success or a missed expectation
  type: str
  sample: ipv4
netns:
  description: The namespace the requests were sent from; null for the current one.
  returned: with O(dest), on success or a missed expectation
  type: str
  sample: site-a
transmitted:
  description: Echo requests sent, including those the local kernel refused (see RV(errors)).
  returned: with O(dest), on success or a missed expectation
  type: int
  sample: 3
received:
  description: Echo replies received in time, duplicates not included.
  returned: with O(dest), on success or a missed expectation
  type: int
  sample: 3
duplicates:
  description: Extra replies to a request already answered.
  returned: with O(dest), on success or a missed expectation
  type: int
  sample: 0
loss:
  description: Percentage of requests without a reply in time.
  returned: with O(dest), on success or a missed expectation
  type: float
  sample: 0.0
rtt_min:
  description: Shortest round-trip time in milliseconds; null when nothing came back.
  returned: with O(dest), on success or a missed expectation
  type: float
  sample: 0.041
rtt_avg:
  description: Mean round-trip time in milliseconds; null when nothing came back.
  returned: with O(dest), on success or a missed expectation
  type: float
  sample: 0.058
rtt_max:
  description: Longest round-trip time in milliseconds; null when nothing came back.
  returned: with O(dest), on success or a missed expectation
  type: float
  sample: 0.083
ttl:
  description:
    - TTL (IPv4) or hop limit (IPv6) of the first reply, as it arrived; null when nothing came back.
    - 64 from a Linux neighbour, one less per router on the way back.
  returned: with O(dest), on success or a missed expectation
  type: int
  sample: 63
ttls:
  description: Every distinct TTL or hop limit seen in the replies, sorted.
  returned: with O(dest), on success or a missed expectation
  type: list
  elements: int
  sample: [63]
errors:
  description:
    - Why requests were lost, when the network said so; one entry per event, naming the sequence number.
    - ICMP errors about our requests (unreachable, fragmentation needed or packet too big with the MTU, TTL exceeded),
      and local send errors such as C(message too long) with the path MTU.
  returned: with O(dest), on success or a missed expectation
  type: list
  elements: str
  sample: ['icmp_seq=1: Fragmentation needed and DF set (next-hop MTU 1280) (from 10.0.1.1)']
probes:
  description:
    - With O(probes), one result per item, in order, with the keys a single probe returns (RV(dest), RV(address), RV(family),
      RV(netns), RV(transmitted), RV(received), RV(duplicates), RV(loss), RV(rtt_min), RV(rtt_avg), RV(rtt_max), RV(ttl),
      RV(ttls), RV(errors)) and the ones below.
  returned: with O(probes), on success or a missed expectation
  type: list
  elements: dict
  contains:
    label:
      description: The item's label, or C(NETNS -> DEST).
      type: str
      sample: ns1 -> 10.10.200.10 through tunl
    expect:
      description: V(reply) or V(fail).
      type: str
      sample: reply
    expected_ttl:
      description: The TTL every reply had to arrive with; null when none was given.
      type: int
      sample: 64
    problem:
      description: How the probe missed its expectation; null when it met it.
      type: str
      sample: reply TTL 64, expected 63
    seen:
      description:
        - "Per link of O(capture), in order: the link's name, a colon and the first echo request of this probe it saw
          (as in RV(packets[].summary)), or that it saw none."
      type: list
      elements: str
      sample: ['v1-P: 10.10.10.2 > 10.10.20.2 ipip | 10.10.100.10 > 10.10.200.10 icmp echo-request']
lines:
  description:
    - A short report, for a M(ansible.builtin.debug) task or a log. Per probe, a line with its label and outcome
      (replies and TTL, no reply as expected, or C(FAILED:) and the problem), then, indented, the lines of RV(probes[].seen).
  returned: with O(probes) or O(capture)
  type: list
  elements: str
  sample:
    - 'ns1 -> 10.10.200.10 through tunl: 3/3 replies, ttl 64 as expected'
    - '  v1-P: 10.10.10.2 > 10.10.20.2 ipip | 10.10.100.10 > 10.10.200.10 icmp echo-request'
    - '  v2-P: 10.10.10.2 > 10.10.20.2 ipip | 10.10.100.10 > 10.10.200.10 icmp echo-request'
packets:
  description:
    - Every packet the links of O(capture) saw, in the order of O(capture) and, per link, in the order they were seen.
    - Each IP layer (RV(packets[].outer), RV(packets[].inner)) has C(version) (4 or 6), C(src), C(dst), C(ttl) (the hop limit for IPv6),
      C(protocol) (a name such as C(icmp), C(icmpv6), C(ipip), C(ipv6), C(gre), C(esp), C(udp), or the number) and C(protocol_number);
      an ICMP or ICMPv6 layer adds C(icmp) (the type's name, such as C(echo-request)), C(icmp_type) and C(icmp_code), and an echo
      C(id) and C(seq); an ESP layer adds C(esp) with C(spi) and C(seq); a fragment after the first adds C(fragment_offset).
  returned: with O(capture)
  type: list
  elements: dict
  contains:
    netns:
      description: The namespace of the link, as in O(capture[].netns).
      type: str
    dev:
      description: The link.
      type: str
      sample: v1-P
    direction:
      description: V(in) for a packet the link received, V(out) for one it sent.
      type: str
      sample: in
    time:
      description: When the packet was read, in seconds since the epoch.
      type: float
    length:
      description: Bytes of the packet, from its network-layer header on.
      type: int
      sample: 104
    ethertype:
      description: The packet's EtherType (2048 for IPv4, 34525 for IPv6, 2054 for ARP).
      type: int
      sample: 2048
    outer:
      description: The IP header the link carried; null for a packet that is not IP (ARP).
      type: dict
      sample: {version: 4, src: 10.10.10.2, dst: 10.10.20.2, ttl: 64, protocol: ipip, protocol_number: 4}
    gre:
      description:
        - The GRE header after RV(packets[].outer), with C(key) (null without one), C(protocol) (the EtherType it carries)
          and C(version); null when there is none.
      type: dict
      sample: {key: 1, protocol: 2048, version: 0}
    inner:
      description:
        - The IP packet inside the tunnel (IP in IP, IPv6 in IPv4, GRE); null for a packet that is not a tunnel's.
        - A tunnel packet inside a tunnel packet has its own C(gre) and C(inner).
      type: dict
      sample: {version: 4, src: 10.10.100.10, dst: 10.10.200.10, ttl: 64, protocol: icmp, protocol_number: 1,
               icmp: echo-request, icmp_type: 8, icmp_code: 0, id: 4660, seq: 1}
    summary:
      description: The packet in one line, layer by layer; a tunnel's outer header is named by its mode (C(ipip), C(sit), C(gre) with its key).
      type: str
      sample: 10.10.10.2 > 10.10.20.2 gre key 1 | 10.10.100.10 > 10.10.200.10 icmp echo-request
'''

from ansible_collections.linuxnet.tunnels.plugins.module_utils._module import new_module
from ansible_collections.linuxnet.tunnels.plugins.module_utils._errors import ResourceError
from ansible_collections.linuxnet.tunnels.plugins.module_utils._probe_options import PING_KWARGS, PING_SPEC
from ansible_collections.linuxnet.tunnels.plugins.module_utils._probes import ping


def main() -> None:
    module = new_module(PING_SPEC, **PING_KWARGS)
    try:
        result, failure = ping(module.params)
    except ResourceError as exc:
        module.fail_json(msg=str(exc), changed=False)
    if failure:
        module.fail_json(msg=failure, changed=False, **result)
    module.exit_json(changed=False, **result)


if __name__ == '__main__':
    main()
