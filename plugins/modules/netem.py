#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) linuxnet.tunnels contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: netem
short_description: Impair a link with delay, jitter, loss, rate limits, corruption, duplication and reordering
version_added: 0.1.0
description:
  - Declares the impairments of one link as a C(netem) queueing discipline at the root of the link, like
    C(tc qdisc replace dev DEV root netem ...), through netlink and pyroute2.
  - Values are written as for C(tc) (V(20ms), V(10mbit), V(0.5%)) or as plain numbers. They are compared with what
    the kernel holds within the kernel's resolution (64 ns for times, 1/2^32 for percentages, one byte per second for
    rates), so a second run reports no change.
  - An option left out keeps the value the link has (on a link without netem, the default of a new qdisc, which is
    no impairment and O(limit=1000)). Tasks that each declare some impairments of one link add up; set a value
    to V(0) to take one impairment away, or use O(state=absent) to take them all away.
  - netem acts on the packets a link B(sends). To impair both directions, impair both ends of a veth pair.
  - A link whose root holds another queueing discipline that something else set up (C(htb), C(tbf), C(fq_codel) added
    with C(tc), ...) is left alone unless O(force=true). The qdisc the kernel gives a link by itself (C(noqueue),
    C(pfifo_fast), C(mq), ...) is replaced without asking, and comes back with O(state=absent).
author:
  - linuxnet.tunnels maintainers (@linuxnet)
options:
  dev:
    description:
      - Name of the link to impair, as C(ip link) shows it. It must exist.
    type: str
    required: true
  delay:
    description:
      - Delay added to every packet the link sends, as V(50ms), V(1.5s), V(500us) or V(100ns);
        a plain number is in milliseconds.
      - At most about 274 seconds.
    type: raw
  jitter:
    description:
      - Random variation of O(delay), in the same units; each packet is delayed by O(delay) plus or minus up to O(jitter).
      - Jitter larger than the delay lets packets overtake each other.
    type: raw
  delay_correlation:
    description:
      - How much each packet's random jitter depends on the previous packet's, as a percentage (V(25%) or V(25)).
    type: raw
  loss:
    description:
      - Share of packets dropped at random, as a percentage from V(0%) to V(100%) (V(0.5%) and V(0.5) are the same).
    type: raw
  loss_correlation:
    description:
      - How much each packet's chance of loss depends on the previous packet's, as a percentage; makes losses come in bursts.
    type: raw
  rate:
    description:
      - Bandwidth limit, in bits per second with V(bit), V(kbit), V(mbit), V(gbit), V(tbit) (powers of 1000) or
        V(kibit), V(mibit), V(gibit), V(tibit) (powers of 1024), or in bytes per second with V(bps), V(kbps), V(mbps),
        V(gbps), V(tbps); a plain number is in bits per second.
      - V(0) means no limit. At most 34.36 Gbit/s (the kernel's 32-bit bytes per second).
      - Packets beyond the rate wait in the queue of O(limit) packets and are dropped once it is full.
    type: raw
  corrupt:
    description:
      - Share of packets in which one random bit is flipped, as a percentage.
    type: raw
  duplicate:
    description:
      - Share of packets sent twice, as a percentage.
    type: raw
  reorder:
    description:
      - Share of packets sent at once, without O(delay), so that they overtake the delayed ones, as a percentage.
      - Needs a non-zero O(delay). O(gap) is set to V(1) when it is V(0), as C(tc) does.
    type: raw
  reorder_correlation:
    description:
      - How much each packet's chance of being reordered depends on the previous packet's, as a percentage.
    type: raw
  gap:
    description:
      - With O(reorder), only every O(gap)th packet may be reordered (C(tc)'s C(reorder ... gap N)).
      - Refused when O(reorder) is V(0).
    type: int
  limit:
    description:
      - Length of the netem queue, in packets; packets that find it full are dropped.
      - A large O(delay) or a small O(rate) needs a longer queue than the default V(1000) at high packet rates.
    type: int
  state:
    description:
      - V(present) sets the impairments; V(absent) removes the netem qdisc, and the kernel gives the link its default
        queueing discipline again. With V(absent), the impairment options are ignored.
      - V(absent) on a link or namespace that does not exist does nothing.
    type: str
    choices: [present, absent]
    default: present
  force:
    description:
      - Replace a root queueing discipline of another kind that something else set up.
      - Without it, such a link is refused and left alone.
    type: bool
    default: false
extends_documentation_fragment:
  - linuxnet.tunnels.common
  - linuxnet.tunnels.common.attributes
notes:
  - The qdisc is attached with a handle the kernel picks; any other netem options set with C(tc)
    (duplicate and corruption correlation, rate overheads, slots, ECN) are kept when the module changes the ones it manages.
seealso:
  - module: linuxnet.tunnels.topology
  - module: linuxnet.tunnels.net_info
  - module: linuxnet.tunnels.ping
'''

EXAMPLES = r'''
- name: Delay what the router sends towards site-a by 50 ms, give or take 5 ms, and lose 1% of it
  linuxnet.tunnels.netem:
    dev: v1-P
    netns: router
    delay: 50ms
    jitter: 5ms
    loss: 1%

- name: Limit the underlay to 10 Mbit/s (the delay and loss above are kept)
  linuxnet.tunnels.netem:
    dev: v1-P
    netns: router
    rate: 10mbit

- name: Take the loss away again, keep the rest
  linuxnet.tunnels.netem:
    dev: v1-P
    netns: router
    loss: 0

- name: Remove every impairment of the link
  linuxnet.tunnels.netem:
    dev: v1-P
    netns: router
    state: absent
'''

RETURN = r'''
netem:
  description:
    - The link's impairments after the task (as predicted, in check mode), in the units the options take.
    - The impairment keys are there only when RV(netem.present) is true.
  returned: success, unless O(state=absent) met a link or namespace that does not exist
  type: dict
  contains:
    dev:
      description: Name of the link.
      type: str
      sample: v1-P
    netns:
      description: Namespace of the link; null for the namespace Ansible runs in.
      type: str
      sample: router
    present:
      description: Whether the link has a netem qdisc at its root.
      type: bool
      sample: true
    qdisc:
      description:
        - Kind of the root queueing discipline, as C(tc qdisc show) names it (V(netem), V(noqueue), ...).
        - Null in check mode when the kernel would choose it.
      type: str
      sample: netem
    handle:
      description:
        - Handle of the root queueing discipline (V(0:) for the one the kernel attached by itself).
        - Null in check mode when the kernel would choose it.
      type: str
      sample: '8001:'
    delay:
      description: Delay (O(delay)).
      type: str
      sample: 50ms
    jitter:
      description: Jitter (O(jitter)).
      type: str
      sample: 5ms
    delay_correlation:
      description: Delay correlation (O(delay_correlation)).
      type: str
      sample: 0%
    loss:
      description: Random loss (O(loss)).
      type: str
      sample: 1%
    loss_correlation:
      description: Loss correlation (O(loss_correlation)).
      type: str
      sample: 0%
    rate:
      description: Rate limit in bits per second (O(rate)); V(0bit) is no limit.
      type: str
      sample: 10mbit
    corrupt:
      description: Corruption (O(corrupt)).
      type: str
      sample: 0%
    duplicate:
      description: Duplication (O(duplicate)).
      type: str
      sample: 0%
    reorder:
      description: Reordering (O(reorder)).
      type: str
      sample: 0%
    reorder_correlation:
      description: Reordering correlation (O(reorder_correlation)).
      type: str
      sample: 0%
    gap:
      description: Reordering gap (O(gap)).
      type: int
      sample: 0
    limit:
      description: Queue length in packets (O(limit)).
      type: int
      sample: 1000
action:
  description:
    - What the task did (or would do in check mode), V(create) (netem added to a link without one), V(update),
      V(replace) (another root qdisc replaced, O(force)), V(delete) or V(none).
  returned: always
  type: str
  sample: update
attributes:
  description: The impairments that differed, for V(update) and V(replace).
  returned: changed, when impairments differed
  type: list
  elements: str
  sample: [delay]
note:
  description: Why, when the action is not obvious (a replaced qdisc, a default qdisc restored).
  returned: changed, sometimes
  type: str
'''

from ansible_collections.linuxnet.tunnels.plugins.module_utils._module import run_resource_module
from ansible_collections.linuxnet.tunnels.plugins.module_utils._netem import NetemResource


def main() -> None:
    run_resource_module(NetemResource)


if __name__ == '__main__':
    main()
