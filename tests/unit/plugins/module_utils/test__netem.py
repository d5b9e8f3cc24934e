"""Pure logic of linuxnet.tunnels.netem: values as people write them, kernel units, comparison, planning."""

from __future__ import annotations

import pytest

from ansible_collections.linuxnet.tunnels.plugins.module_utils._netem import (
    DEFAULTS,
    NS_PER_TICK,
    PARAMETERS,
    U32_MAX,
    NetemResource,
    RootQdisc,
    differs,
    format_percent,
    format_rate,
    format_time,
    fraction,
    from_options,
    human,
    impairments,
    kernel_values,
    parse_percent,
    parse_rate,
    parse_time,
    rate_bytes,
    settle,
    ticks,
    to_options,
)
from ansible_collections.linuxnet.tunnels.plugins.module_utils._errors import ResourceError
from ansible_collections.linuxnet.tunnels.plugins.module_utils._resource import CREATE, DELETE, REPLACE, UPDATE


# ---- parsing ---------------------------------------------------------------

@pytest.mark.parametrize('value, ns', [
    ('20ms', 20_000_000), ('1.5s', 1_500_000_000), ('500us', 500_000), ('100ns', 100), ('2sec', 2 * 10 ** 9),
    ('3 msec', 3_000_000), ('20MS', 20_000_000), (20, 20_000_000), (0.5, 500_000), ('20', 20_000_000), ('0', 0),
    ('.5ms', 500_000), ('1e3us', 1_000_000),
])
def test_parse_time(value, ns):
    assert parse_time('delay', value) == ns


@pytest.mark.parametrize('value, percent', [('0.5%', 0.5), ('0.5', 0.5), (0.5, 0.5), (100, 100.0), ('100%', 100.0), ('0%', 0.0), (' 7 % ', 7.0)])
def test_parse_percent(value, percent):
    assert parse_percent('loss', value) == percent


@pytest.mark.parametrize('value, bits', [
    ('10mbit', 10 ** 7), ('1gbit', 10 ** 9), ('100kbps', 800_000), ('1mibit', 2 ** 20), ('64kbit', 64_000),
    (1_000_000, 10 ** 6), ('1000', 1000), ('1.5mbit', 1_500_000), ('0', 0), ('10Mbit', 10 ** 7),
])
def test_parse_rate(value, bits):
    assert parse_rate('rate', value) == bits


# (parser, value, words the message must hold); the option is always named first.
REFUSED = [
    (parse_time, '-5ms', 'negative'), (parse_time, -1, 'negative'), (parse_time, '5 parsecs', "unknown unit 'parsecs'"),
    (parse_time, '5%', "unknown unit '%'"), (parse_time, 'fast', 'not a time'), (parse_time, '', 'not a time'),
    (parse_time, True, 'not a time'), (parse_time, [5], 'not a time'), (parse_time, float('inf'), 'not a time'),
    (parse_time, 10 ** 400, 'not a time'), (parse_time, '1e400ms', 'not a time'), (parse_time, '300s', 'longer than netem can delay'),
    (parse_percent, '101%', 'more than 100%'), (parse_percent, 100.5, 'more than 100%'), (parse_percent, '-1%', 'negative'),
    (parse_percent, '5ms', "unknown unit 'ms'"), (parse_percent, 'half', 'not a percentage'), (parse_percent, None, 'not a percentage'),
    (parse_rate, '10 mph', "unknown unit 'mph'"), (parse_rate, '-10mbit', 'negative'), (parse_rate, '40gbit', 'faster than'),
    (parse_rate, '10ms', "unknown unit 'ms'"),
]


@pytest.mark.parametrize('parser, value, words', REFUSED)
def test_refused_with_a_message_naming_the_option(parser, value, words):
    with pytest.raises(ResourceError) as err:
        parser('opt', value)
    assert str(err.value).startswith('opt: ') and words in str(err.value), str(err.value)


def test_kernel_values_names_the_option():
    with pytest.raises(ResourceError, match='^jitter: '):
        kernel_values({'delay': '10ms', 'jitter': '-1ms'})
    with pytest.raises(ResourceError, match='^reorder_correlation: .*more than 100%'):
        kernel_values({'reorder_correlation': '150'})
    with pytest.raises(ResourceError, match='^limit: 0 is out of range'):
        kernel_values({'limit': 0})
    with pytest.raises(ResourceError, match='^gap: -1 is out of range'):
        kernel_values({'gap': -1})


def test_kernel_values_only_declared():
    assert kernel_values({'delay': '50ms', 'loss': None, 'limit': 5000}) == {'delay': 781250, 'limit': 5000}


# ---- kernel units ----------------------------------------------------------

def test_kernel_units():
    assert NS_PER_TICK == 64
    assert ticks(parse_time('delay', '50ms')) == 781250
    assert ticks(parse_time('delay', '500us')) == 7812  # rounded down, as tc and the kernel do
    assert fraction(100) == U32_MAX
    assert fraction(50) == 2 ** 31
    assert fraction(0) == 0
    assert rate_bytes(parse_rate('rate', '10mbit')) == 1_250_000


# ---- back to human units ---------------------------------------------------

@pytest.mark.parametrize('text', ['50ms', '1.5s', '500us', '20ms', '1s', '274s', '0.5ms', '1.25ms', '100us', '64ns', '0ms'])
def test_time_round_trip(text):
    kernel = ticks(parse_time('delay', text))
    shown = format_time(kernel)
    assert ticks(parse_time('delay', shown)) == kernel


def test_time_formats():
    assert format_time(ticks(parse_time('delay', '50ms'))) == '50ms'
    assert format_time(ticks(parse_time('delay', '1.5s'))) == '1.5s'
    assert format_time(ticks(parse_time('delay', '500us'))) == '500us'
    assert format_time(ticks(parse_time('delay', '0.5ms'))) == '500us'
    assert format_time(0) == '0ms'
    assert format_time(1) == '64ns'


@pytest.mark.parametrize('text, shown', [('0.5%', '0.5%'), ('100%', '100%'), ('25', '25%'), ('0.001%', '0.001%'), ('0', '0%'), ('33.3333%', '33.3333%')])
def test_percent_formats(text, shown):
    assert format_percent(fraction(parse_percent('loss', text))) == shown


def test_percent_of_tc_rounding_down():
    # tc truncates where the module rounds: one unit apart still reads as the same percentage.
    assert format_percent(fraction(0.5) - 1) == '0.5%'


@pytest.mark.parametrize('text, shown', [('10mbit', '10mbit'), ('1gbit', '1gbit'), ('100kbps', '800kbit'), ('1.5mbit', '1.5mbit'),
                                         ('0', '0bit'), ('8', '8bit'), ('1mibit', '1.04858mbit'), ('34gbit', '34gbit')])
def test_rate_formats(text, shown):
    kernel = rate_bytes(parse_rate('rate', text))
    assert format_rate(kernel) == shown
    assert rate_bytes(parse_rate('rate', shown)) == kernel


def test_human_and_impairments():
    values = dict(DEFAULTS, delay=781250, loss=fraction(10), rate=1_250_000)
    shown = human(values)
    assert list(shown) == list(PARAMETERS)
    assert shown['delay'] == '50ms' and shown['loss'] == '10%' and shown['rate'] == '10mbit' and shown['limit'] == 1000
    assert impairments(values) == {'delay': '50ms', 'loss': '10%', 'rate': '10mbit'}
    assert impairments(dict(DEFAULTS, limit=5000)) == {'limit': 5000}
    # What net_info reports is module input that gives the same kernel values.
    assert dict(DEFAULTS, **kernel_values(impairments(values))) == values


# ---- comparison -------------------------------------------------------------

def test_differs_within_one_unit():
    base = dict(DEFAULTS, delay=781250, loss=fraction(0.5), rate=1_250_000)
    assert differs(base, dict(base, delay=781251, loss=base['loss'] - 1, rate=1_249_999)) == []
    assert differs(base, dict(base, delay=781252)) == ['delay']
    assert differs(base, dict(base, loss=fraction(1))) == ['loss']
    assert differs(base, dict(base, limit=1001)) == ['limit']
    assert differs(base, dict(base, gap=1)) == ['gap']


def test_settle():
    base = dict(DEFAULTS, delay=781250, reorder=fraction(25))
    assert settle(base, {})['gap'] == 1  # as tc sets it
    assert settle(dict(base, gap=5), {'gap': 5})['gap'] == 5
    with pytest.raises(ResourceError, match='^reorder: reordering needs a delay'):
        settle(dict(base, delay=0), {})
    with pytest.raises(ResourceError, match='^gap: a gap only matters with reorder'):
        settle(dict(DEFAULTS, gap=3), {'gap': 3})
    assert settle(dict(DEFAULTS, gap=3), {})['gap'] == 3  # kept: set by something else, harmless


# ---- netlink layout ---------------------------------------------------------

def test_options_round_trip():
    values = dict(DEFAULTS, delay=1, jitter=2, delay_correlation=3, loss=4, loss_correlation=5, rate=6, corrupt=7,
                  duplicate=8, reorder=9, reorder_correlation=10, gap=11, limit=12, duplicate_correlation=13,
                  corrupt_correlation=14, packet_overhead=15, cell_size=16, cell_overhead=17)
    options = to_options(values)
    # Every nested attribute is sent, zeros included: the kernel keeps what a request leaves out.
    assert [name for name, _value in options['attrs']] == ['TCA_NETEM_CORR', 'TCA_NETEM_REORDER', 'TCA_NETEM_CORRUPT', 'TCA_NETEM_RATE']
    assert from_options(options) == values
    zeros = to_options(DEFAULTS)
    assert dict(zeros['attrs'])['TCA_NETEM_RATE']['rate'] == 0 and dict(zeros['attrs'])['TCA_NETEM_CORRUPT']['prob_corrupt'] == 0


def test_request_encodes():
    from ansible_collections.linuxnet.tunnels.plugins.module_utils._netem import root_request
    msg = root_request(3, dict(DEFAULTS, delay=781250, rate=1_250_000))
    msg.encode()  # pyroute2's sched_netem layout takes what to_options() builds
    assert msg.get_attr('TCA_KIND') == 'netem' and msg.get_attr('TCA_RATE') is None
    assert msg['parent'] == 0xFFFFFFFF and msg['index'] == 3


# ---- planning (the kernel replaced by a stand-in) ------------------------------

class FakeMessage(dict):
    def __init__(self, parent: int, handle: int, kind: str, options=None) -> None:
        super().__init__(parent=parent, handle=handle, index=1)
        self.attrs = {'TCA_KIND': kind, 'TCA_OPTIONS': options}

    def get_attr(self, name):
        return self.attrs.get(name)


class FakeSession:
    def __init__(self, messages) -> None:
        self.messages = messages

    def get_link(self, ifname):
        return {'index': 1, 'ifname': ifname}

    def qdiscs(self, index):
        return self.messages


class FakeNetlink:
    check_mode = True

    def __init__(self, messages) -> None:
        self.session = FakeSession(messages)

    def __call__(self, netns=None):
        return self.session

    def readable(self, netns):
        return True


def plan(messages, **params):
    full = {name: None for name in NetemResource.argument_spec}
    full.update(state='present', force=False, netns=None)
    full.update(params)
    resource = NetemResource(FakeNetlink(messages), full)
    resource.validate()
    return resource.plan()


NOQUEUE = [FakeMessage(0xFFFFFFFF, 0, 'noqueue')]
HTB = [FakeMessage(0xFFFFFFFF, 0x10000, 'htb')]


def netem(**values):
    return [FakeMessage(0xFFFFFFFF, 0x80010000, 'netem', to_options(dict(DEFAULTS, **values)))]


def test_plan_create_on_default_qdisc():
    change = plan(NOQUEUE, dev='v1', delay='50ms', loss='10%')
    assert change.action == CREATE and change.attributes == []
    assert change.after['delay'] == '50ms' and change.after['loss'] == '10%' and change.after['limit'] == 1000
    assert change.before == {'dev': 'v1', 'netns': None, 'present': False, 'qdisc': 'noqueue', 'handle': '0:'}


def test_plan_unchanged_keeps_undeclared():
    current = netem(delay=781250, loss=fraction(10))
    assert plan(current, dev='v1', delay='50ms', loss='10%') is None
    assert plan(current, dev='v1', loss='10%') is None
    change = plan(current, dev='v1', delay='20ms')
    assert change.action == UPDATE and change.attributes == ['delay']
    assert change.after['loss'] == '10%' and change.after['delay'] == '20ms'


def test_plan_foreign_root():
    with pytest.raises(ResourceError, match="htb qdisc 1: at its root.*force: true"):
        plan(HTB, dev='v1', delay='1ms')
    change = plan(HTB, dev='v1', delay='1ms', force=True)
    assert change.action == REPLACE and 'htb 1:' in change.note


def test_plan_absent():
    assert plan(NOQUEUE, dev='v1', state='absent') is None
    assert plan(HTB, dev='v1', state='absent') is None  # not ours
    change = plan(netem(delay=781250), dev='v1', state='absent')
    assert change.action == DELETE and change.before['delay'] == '50ms' and change.after['present'] is False


def test_root_qdisc_ignores_children_and_ingress():
    messages = [FakeMessage(0xFFFFFFF1, 0xFFFF0000, 'ingress'), FakeMessage(0x10001, 0x20000, 'netem', to_options(DEFAULTS))] + HTB
    root = RootQdisc.of(messages)
    assert (root.kind, root.handle, root.values) == ('htb', 0x10000, None)


@pytest.mark.parametrize('kernel', [1, 7, 15, 16, 1000, 7812, 781250, 23445312, 10 ** 9, U32_MAX])
def test_every_kernel_time_reads_back_the_same(kernel):
    assert ticks(parse_time('delay', format_time(kernel))) == kernel


@pytest.mark.parametrize('kernel', [1, 2, 3, 12345, 2 ** 31, 2 ** 31 + 7, U32_MAX - 1, U32_MAX])
def test_every_kernel_percentage_reads_back_within_one_unit(kernel):
    assert abs(fraction(parse_percent('loss', format_percent(kernel))) - kernel) <= 1


@pytest.mark.parametrize('kernel', [1, 124, 125, 1_250_001, 123_456_789, U32_MAX])
def test_every_kernel_rate_reads_back_the_same(kernel):
    assert rate_bytes(parse_rate('rate', format_rate(kernel))) == kernel
