# -*- coding: utf-8 -*-
# Copyright (c) linuxnet.tunnels contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Link impairments: a netem qdisc at the root of a link.

Values come as people write them for tc ('20ms', '10mbit', '0.5%') and are
turned into the kernel's own units before anything is compared: psched ticks
of 64 ns for times, fractions of 2**32 - 1 for percentages, bytes per second
for the rate. The kernel hands back exactly those, so a value read back is
compared with the wanted one within one such unit (tc rounds down where we
round to the nearest), and the state returned is turned back into the
shortest text that means the same kernel value.

An option left out keeps the value the qdisc has (the default of a new
qdisc when there is none): impairments declared by several tasks add up,
and a re-run never resets what another task set.

The request is built here with pyroute2's message classes, every parameter
included: IPRoute.tc() leaks rate= into TCA_RATE and leaves out a zero rate
or corruption, which the kernel then keeps from before.
"""

from __future__ import annotations

import math
import re

from ansible_collections.linuxnet.tunnels.plugins.module_utils._link import get_link
from ansible_collections.linuxnet.tunnels.plugins.module_utils._errors import ResourceError, kernel_call, where
from ansible_collections.linuxnet.tunnels.plugins.module_utils._names import check_ifname
from ansible_collections.linuxnet.tunnels.plugins.module_utils._resource import (
    CREATE,
    DELETE,
    REPLACE,
    UPDATE,
    Change,
    Resource,
    compact,
)

try:
    from pyroute2.netlink.rtnl.tcmsg import tcmsg
except ImportError:
    pass  # reported by the module through HAS_PYROUTE2

TC_H_ROOT = 0xFFFFFFFF  # include/uapi/linux/pkt_sched.h
U32_MAX = 2 ** 32 - 1
NS_PER_TICK = 64  # PSCHED_SHIFT 6: the kernel's psched tick, fixed since Linux 2.6.31
DEFAULT_LIMIT = 1000  # packets, as tc and the kernel default it

TIME_UNITS = {  # nanoseconds
    's': 10 ** 9, 'sec': 10 ** 9, 'secs': 10 ** 9,
    'ms': 10 ** 6, 'msec': 10 ** 6, 'msecs': 10 ** 6,
    'us': 10 ** 3, 'usec': 10 ** 3, 'usecs': 10 ** 3,
    'ns': 1, 'nsec': 1, 'nsecs': 1,
}
PLAIN_TIME_UNIT = 'ms'
RATE_UNITS = {  # bits per second, as tc counts them (k = 1000, ki = 1024, ...bps = bytes)
    'bit': 1, 'kbit': 10 ** 3, 'mbit': 10 ** 6, 'gbit': 10 ** 9, 'tbit': 10 ** 12,
    'kibit': 2 ** 10, 'mibit': 2 ** 20, 'gibit': 2 ** 30, 'tibit': 2 ** 40,
    'bps': 8, 'kbps': 8 * 10 ** 3, 'mbps': 8 * 10 ** 6, 'gbps': 8 * 10 ** 9, 'tbps': 8 * 10 ** 12,
}
NUMBER = re.compile(r'^\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?)\s*([a-z%]*)\s*$', re.IGNORECASE)

# Option -> kind of value; the order is the order of the returned state.
TIMES = ('delay', 'jitter')
PERCENTS = ('delay_correlation', 'loss', 'loss_correlation', 'corrupt', 'duplicate', 'reorder', 'reorder_correlation')
COUNTS = ('gap', 'limit')
PARAMETERS = ('delay', 'jitter', 'delay_correlation', 'loss', 'loss_correlation', 'rate', 'corrupt',
              'duplicate', 'reorder', 'reorder_correlation', 'gap', 'limit')
# netem settings without an option here: sent back as read, so a change keeps them.
CARRIED = ('duplicate_correlation', 'corrupt_correlation', 'packet_overhead', 'cell_size', 'cell_overhead')
EXACT = COUNTS + CARRIED  # compared exactly; the others within one kernel unit
DEFAULTS = dict({name: 0 for name in PARAMETERS + CARRIED}, limit=DEFAULT_LIMIT)


# ---- values as people write them -------------------------------------------

def _number(option: str, value, what: str) -> tuple[float, str]:
    """(number, unit in lower case) of '20ms', '0.5%', 20 or 1.5; refuses negatives and non-numbers."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ResourceError(f'{option}: {value!r} is not {what}')
    if isinstance(value, str):
        match = NUMBER.match(value)
        if match is None:
            raise ResourceError(f"{option}: '{value}' is not {what}")
        number, unit = float(match.group(1)), match.group(2).lower()
    else:
        number, unit = (float(value) if abs(value) < 1e300 else math.inf), ''
    if not math.isfinite(number):
        raise ResourceError(f'{option}: {value!r} is not {what}')
    if number < 0:
        raise ResourceError(f'{option}: {value!r} is negative; it must be 0 or more')
    return number, unit


def parse_time(option: str, value) -> int:
    """Nanoseconds of '20ms', '1.5s', '500us', '100ns' or a plain number of milliseconds."""
    what = f"a time such as '20ms', '1.5s' or '500us' (a plain number is in {PLAIN_TIME_UNIT})"
    number, unit = _number(option, value, what)
    factor = TIME_UNITS.get(unit or PLAIN_TIME_UNIT)
    if factor is None:
        raise ResourceError(f"{option}: unknown unit '{unit}' in '{value}'; use s, ms, us or ns")
    ns = round(number * factor)
    if ns // NS_PER_TICK > U32_MAX:
        raise ResourceError(f"{option}: '{value}' is longer than netem can delay ({format_time(U32_MAX)})")
    return ns


def parse_percent(option: str, value) -> float:
    """Percent of '0.5%', '25' or 0.5 (a plain number is a percentage), from 0 to 100."""
    number, unit = _number(option, value, "a percentage such as '0.5%' or 25")
    if unit not in ('', '%'):
        raise ResourceError(f"{option}: unknown unit '{unit}' in '{value}'; a percentage takes '%' or no unit")
    if number > 100:
        raise ResourceError(f'{option}: {value!r} is more than 100%')
    return number


def parse_rate(option: str, value) -> float:
    """Bits per second of '10mbit', '1gbit', '100kbps' (bytes) or a plain number of bits per second."""
    number, unit = _number(option, value, "a rate such as '10mbit', '1gbit' or '100kbps' (a plain number is in bit/s)")
    factor = RATE_UNITS.get(unit or 'bit')
    if factor is None:
        raise ResourceError(f"{option}: unknown unit '{unit}' in '{value}'; use bit, kbit, mbit, gbit, tbit "
                            '(bits per second), kibit, mibit, gibit, tibit, or bps, kbps, mbps, gbps, tbps (bytes per second)')
    bits = number * factor
    if round(bits / 8) > U32_MAX:
        raise ResourceError(f"{option}: '{value}' is faster than the {format_rate(U32_MAX)} netem takes here")
    return bits


def parse_count(option: str, value, minimum: int) -> int:
    if value < minimum or value > U32_MAX:
        raise ResourceError(f'{option}: {value} is out of range ({minimum} to {U32_MAX} packets)')
    return value


# ---- the kernel's units ----------------------------------------------------

def ticks(ns: int) -> int:
    """psched ticks, rounded down as the kernel and tc do."""
    return ns // NS_PER_TICK


def fraction(percent: float) -> int:
    """A percentage as the kernel's u32 probability (100% is 2**32 - 1)."""
    return round(percent / 100 * U32_MAX)


def rate_bytes(bits: float) -> int:
    return round(bits / 8)


def kernel_values(params: dict) -> dict:
    """The declared options (None: not declared) in kernel units; raises ResourceError naming the option."""
    out = {}
    for name in PARAMETERS:
        value = params.get(name)
        if value is None:
            continue
        if name in TIMES:
            out[name] = ticks(parse_time(name, value))
        elif name in PERCENTS:
            out[name] = fraction(parse_percent(name, value))
        elif name == 'rate':
            out[name] = rate_bytes(parse_rate(name, value))
        else:
            out[name] = parse_count(name, value, 1 if name == 'limit' else 0)
    return out


def settle(values: dict, declared: dict) -> dict:
    """values with what tc fills in, or a refusal of what would only mislead.

    Reordering sends some packets without the delay, so it needs a delay,
    and a gap of at least 1 (the kernel does not reorder with 0), as tc
    sets it; a gap asked for without reordering would do nothing.
    """
    out = dict(values)
    if out['reorder']:
        if not out['delay']:
            raise ResourceError('reorder: reordering needs a delay (the reordered packets are the ones sent without it)')
        out['gap'] = out['gap'] or 1
    elif declared.get('gap'):
        raise ResourceError('gap: a gap only matters with reorder, which is 0%')
    return out


def differs(current: dict, wanted: dict) -> list[str]:
    """The parameters whose kernel values differ by more than the kernel's resolution."""
    return [name for name in PARAMETERS + CARRIED
            if abs(current[name] - wanted[name]) > (0 if name in EXACT else 1)]


# ---- back to people's units -------------------------------------------------

def _shortest(value: float, unit: str, same) -> str:
    """value with the fewest decimals (at most 9) that same() accepts as the same kernel value."""
    text = ''
    for digits in range(10):
        text = f'{value:.{digits}f}'
        if same(float(text)):
            break
    return text + unit


def format_time(tick_count: int) -> str:
    """'50ms', '1.5s', '500us': in the largest unit that keeps the value at 1 or more."""
    if tick_count == 0:
        return '0ms'
    ns = tick_count * NS_PER_TICK
    unit = next(name for name in ('s', 'ms', 'us', 'ns') if ns >= TIME_UNITS[name])
    return _shortest(ns / TIME_UNITS[unit], unit, lambda value: ticks(round(value * TIME_UNITS[unit])) == tick_count)


def format_percent(u32: int) -> str:
    return _shortest(u32 * 100 / U32_MAX, '%', lambda value: abs(fraction(value) - u32) <= 1)


def format_rate(byte_rate: int) -> str:
    """'10mbit', '800kbit': bits per second in the largest decimal unit that keeps the value at 1 or more."""
    bits = byte_rate * 8
    unit = next((name for name in ('tbit', 'gbit', 'mbit', 'kbit') if bits >= RATE_UNITS[name]), 'bit')
    return _shortest(bits / RATE_UNITS[unit], unit, lambda value: rate_bytes(value * RATE_UNITS[unit]) == byte_rate)


def human(values: dict) -> dict:
    """Kernel values as the module's options take them."""
    out = {}
    for name in PARAMETERS:
        if name in TIMES:
            out[name] = format_time(values[name])
        elif name in PERCENTS:
            out[name] = format_percent(values[name])
        elif name == 'rate':
            out[name] = format_rate(values[name])
        else:
            out[name] = values[name]
    return out


def impairments(values: dict) -> dict:
    """Only what differs from a new qdisc: what net_info reports as topology input."""
    return {name: text for name, text in human(values).items() if values[name] != DEFAULTS[name]}


# ---- netlink ---------------------------------------------------------------

def from_options(options) -> dict:
    """Kernel values of a decoded netem TCA_OPTIONS."""
    nested = {name: dict(value) for name, value in options.get('attrs', []) if name.startswith('TCA_NETEM_')}
    corr = nested.get('TCA_NETEM_CORR', {})
    reorder = nested.get('TCA_NETEM_REORDER', {})
    corrupt = nested.get('TCA_NETEM_CORRUPT', {})
    rate = nested.get('TCA_NETEM_RATE', {})
    return {
        'delay': options['delay'], 'jitter': options['jitter'], 'loss': options['loss'], 'duplicate': options['duplicate'],
        'gap': options['gap'], 'limit': options['limit'],
        'delay_correlation': corr.get('delay_corr', 0), 'loss_correlation': corr.get('loss_corr', 0),
        'duplicate_correlation': corr.get('dup_corr', 0),
        'reorder': reorder.get('prob_reorder', 0), 'reorder_correlation': reorder.get('corr_reorder', 0),
        'corrupt': corrupt.get('prob_corrupt', 0), 'corrupt_correlation': corrupt.get('corr_corrupt', 0),
        'rate': rate.get('rate', 0), 'packet_overhead': rate.get('packet_overhead', 0),
        'cell_size': rate.get('cell_size', 0), 'cell_overhead': rate.get('cell_overhead', 0),
    }


def to_options(values: dict) -> dict:
    """TCA_OPTIONS of a netem qdisc (pyroute2's sched_netem layout), every attribute present."""
    return {
        'delay': values['delay'], 'limit': values['limit'], 'loss': values['loss'], 'gap': values['gap'],
        'duplicate': values['duplicate'], 'jitter': values['jitter'],
        'attrs': [
            ['TCA_NETEM_CORR', {'delay_corr': values['delay_correlation'], 'loss_corr': values['loss_correlation'],
                                'dup_corr': values['duplicate_correlation']}],
            ['TCA_NETEM_REORDER', {'prob_reorder': values['reorder'], 'corr_reorder': values['reorder_correlation']}],
            ['TCA_NETEM_CORRUPT', {'prob_corrupt': values['corrupt'], 'corr_corrupt': values['corrupt_correlation']}],
            ['TCA_NETEM_RATE', {'rate': values['rate'], 'packet_overhead': values['packet_overhead'],
                                'cell_size': values['cell_size'], 'cell_overhead': values['cell_overhead']}],
        ],
    }


def root_request(index: int, values: dict | None = None):
    """A tcmsg for the root qdisc of link `index`: netem with `values`, or just its address (delete)."""
    msg = tcmsg()
    msg['index'] = index
    msg['parent'] = TC_H_ROOT
    if values is not None:
        msg['attrs'] = [('TCA_KIND', 'netem'), ('TCA_OPTIONS', to_options(values))]
    return msg


def handle_text(handle: int) -> str:
    return f'{handle >> 16:x}:'


class RootQdisc:
    """What the root of one link holds: kind, handle, and the netem values when it is netem."""

    __slots__ = ('kind', 'handle', 'values')

    def __init__(self, kind: str | None, handle: int, values: dict | None) -> None:
        self.kind = kind
        self.handle = handle
        self.values = values

    @property
    def default(self) -> bool:
        """The qdisc the kernel attached by itself (handle 0: noqueue, pfifo_fast, mq, fq_codel, noop)."""
        return self.handle == 0

    @classmethod
    def of(cls, messages) -> RootQdisc:
        """The root qdisc among one link's qdiscs."""
        return next(iter(roots(messages).values()), cls(None, 0, None))


def roots(messages) -> dict[int, RootQdisc]:
    """The root qdisc of each link in a qdisc dump, by link index (children and ingress left out)."""
    out = {}
    for msg in messages:
        if msg['parent'] == TC_H_ROOT:
            kind = msg.get_attr('TCA_KIND')
            values = from_options(msg.get_attr('TCA_OPTIONS')) if kind == 'netem' else None
            out[msg['index']] = RootQdisc(kind, msg['handle'], values)
    return out


class NetemResource(Resource):
    """The netem qdisc at the root of one link."""

    kind = 'netem'
    argument_spec = {
        'dev': {'type': 'str', 'required': True},
        'delay': {'type': 'raw'},
        'jitter': {'type': 'raw'},
        'delay_correlation': {'type': 'raw'},
        'loss': {'type': 'raw'},
        'loss_correlation': {'type': 'raw'},
        'rate': {'type': 'raw'},
        'corrupt': {'type': 'raw'},
        'duplicate': {'type': 'raw'},
        'reorder': {'type': 'raw'},
        'reorder_correlation': {'type': 'raw'},
        'gap': {'type': 'int'},
        'limit': {'type': 'int'},
        'state': {'type': 'str', 'choices': ['present', 'absent'], 'default': 'present'},
        'force': {'type': 'bool', 'default': False},
    }

    def __init__(self, nl, params: dict) -> None:
        super().__init__(nl, params)
        self.declared: dict = {}
        self.index: int | None = None  # of the link, as the last plan read it
        self.target: dict | None = None  # the netem values the last plan decided on

    # ---- its place in a topology -----------------------------------------

    PREDICTED_UNKNOWN = ('handle',)  # the kernel picks a new qdisc's handle

    def display_name(self) -> str:
        return str(self.params['dev'])

    def key(self) -> tuple:
        return (self.netns, self.params['dev'])

    def uses(self) -> list[tuple]:
        return [(self.netns, self.params['dev'])]

    def wanted(self) -> dict:
        """The state of a link that had no netem: the declared impairments over a new qdisc's."""
        values = settle(dict(DEFAULTS, **self.declared), self.declared)
        return dict(self._public(None, values), qdisc='netem')

    # ---- net_info: the impairments of every link of a namespace, from one qdisc dump

    @classmethod
    def gather(cls, gatherer, session, space) -> None:
        space.found[cls.kind] = {index: root.values for index, root in roots(session.qdiscs()).items() if root.values is not None}

    @classmethod
    def namespace_facts(cls, gatherer, space) -> dict:
        return {'impairments': [dict({'dev': space.names.get(index)}, **human(values))
                                for index, values in space.found[cls.kind].items()]}

    @classmethod
    def topology_items(cls, gatherer, infos: dict) -> dict:
        return {'impairments': [compact(dict({'dev': space.names.get(index), 'netns': netns}, **impairments(values)))
                                for netns, space in gatherer.spaces.items() for index, values in space.found[cls.kind].items()]}

    def validate(self) -> None:
        check_ifname(self.params['dev'], 'dev')
        self.declared = kernel_values(self.params)  # state=absent ignores them, as the topology's absent does

    # ---- reading -------------------------------------------------------

    def _root(self) -> RootQdisc | None:
        """The link's root qdisc, or None when there is no such link."""
        dev = self.params['dev']
        session = self.nl(self.netns)
        with kernel_call(f"could not read the qdiscs of link '{dev}' in {where(self.netns)}"):
            link = get_link(session, dev)
            if link is None:
                return None
            self.index = link['index']
            return RootQdisc.of(session.qdiscs(link['index']))

    def _public(self, root: RootQdisc | None, values: dict | None) -> dict:
        out = {'dev': self.params['dev'], 'netns': self.netns, 'present': values is not None,
               'qdisc': root.kind if root else None, 'handle': handle_text(root.handle) if root else None}
        if values is not None:
            out.update(human(values))
        return out

    def read(self) -> dict | None:
        root = self._root()
        return None if root is None else self._public(root, root.values)

    # ---- planning ------------------------------------------------------

    def plan_state(self) -> Change | None:
        dev = self.params['dev']
        root = self._root()
        if root is None:
            if self.params['state'] == 'absent':
                return None
            raise ResourceError(f"dev: link '{dev}' does not exist in {where(self.netns)}")
        if self.params['state'] == 'absent':
            if root.values is None:
                return None
            after = {'dev': dev, 'netns': self.netns, 'present': False, 'qdisc': None, 'handle': '0:'}
            return Change(self.kind, self.name, DELETE, self._public(root, root.values), after,
                          note="the kernel attaches the link's default qdisc again")
        return self._plan_present(root)

    def _plan_present(self, root: RootQdisc) -> Change | None:
        dev = self.params['dev']
        note = ''
        if root.values is not None:
            action, base = UPDATE, root.values
        elif root.default:
            action, base = CREATE, DEFAULTS
        elif self.params['force']:
            action, base = REPLACE, DEFAULTS
            note = f"replaces the root qdisc {root.kind} {handle_text(root.handle)} (force)"
        else:
            raise ResourceError(f"dev: link '{dev}' in {where(self.netns)} has a {root.kind} qdisc {handle_text(root.handle)} "
                                'at its root, set up by something else; force: true replaces it with netem')
        target = self.target = settle(dict(base, **self.declared), self.declared)
        changed = differs(base, target)
        if action == UPDATE and not changed:
            return None
        after = self._public(RootQdisc('netem', root.handle, target), target) if action == UPDATE else self.wanted()
        # A new qdisc lists no attributes, like every creation.
        attributes = [] if action == CREATE else [name for name in changed if name in PARAMETERS]
        return Change(self.kind, self.name, action, self._public(root, root.values), after, attributes, note)

    # ---- writing -------------------------------------------------------

    def apply(self, change: Change) -> None:
        # The plan has just read the link (converge() plans right before it applies).
        dev = self.params['dev']
        if change.action == DELETE:
            self._send('del', f"could not remove the impairments of link '{dev}' in {where(self.netns)}")
        else:
            self._send('replace', f"could not set the impairments of link '{dev}' in {where(self.netns)}", self.target)

    def remove(self) -> None:
        """Delete the root netem qdisc; the kernel puts the link's default one back."""
        root = self._root()
        if root is not None and root.values is not None:
            self._send('del', f"could not remove the impairments of link '{self.params['dev']}' in {where(self.netns)}")

    def _send(self, command: str, action: str, values: dict | None = None) -> None:
        with kernel_call(action):
            self.nl(self.netns).change_qdisc(command, root_request(self.index, values))
