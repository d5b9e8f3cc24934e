# Copyright (c) linuxnet.tunnels contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fuzzing of every module's argument handling with hypothesis: never a traceback.

Each module's main() runs in-process on random option values (text, unicode,
ints, huge numbers, floats, None, lists, nested dicts, and plausible-but-wrong
names and addresses). The result is a normal result, or failed with a msg and
no 'exception' key; an exception escaping main() fails the test.

Safety: CHECK MODE ONLY, always. Every module with a netns option gets a
namespace that does not exist (so nothing is ever read there either); the
topology module's items only name namespaces that do not exist (declared in
the same call or not); ping is pointed at a missing namespace, so no packet
is ever sent. Modules without netns (netns itself) only read in check mode.
At the end no namespace named by the fuzz exists, and no path outside
/run/netns was made.

    .venv/bin/pytest -q -p no:cacheprovider tests/unit/test_fuzz_arguments.py
"""

from __future__ import annotations

import os

import pytest

hypothesis = pytest.importorskip('hypothesis')
pytest.importorskip('pyroute2')

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis.configuration import set_hypothesis_home_dir  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from ansible_collections.linuxnet.tunnels.plugins.module_utils import _info, _probe_options  # noqa: E402
from ansible_collections.linuxnet.tunnels.plugins.module_utils._address import AddressResource  # noqa: E402
from ansible_collections.linuxnet.tunnels.plugins.module_utils._link import LinkResource  # noqa: E402
from ansible_collections.linuxnet.tunnels.plugins.module_utils._module import full_argument_spec  # noqa: E402
from ansible_collections.linuxnet.tunnels.plugins.module_utils._netem import NetemResource  # noqa: E402
from ansible_collections.linuxnet.tunnels.plugins.module_utils._netns import NetnsResource  # noqa: E402
from ansible_collections.linuxnet.tunnels.plugins.module_utils._persist import LISTS as PERSIST_LISTS  # noqa: E402
from ansible_collections.linuxnet.tunnels.plugins.module_utils._persist import PersistResource  # noqa: E402
from ansible_collections.linuxnet.tunnels.plugins.module_utils._route import RouteResource  # noqa: E402
from ansible_collections.linuxnet.tunnels.plugins.module_utils._sysctl import SysctlResource  # noqa: E402
from ansible_collections.linuxnet.tunnels.plugins.module_utils._topology import ARGUMENT_SPEC as TOPOLOGY_SPEC  # noqa: E402
from ansible_collections.linuxnet.tunnels.plugins.module_utils._topology import KINDS  # noqa: E402
from ansible_collections.linuxnet.tunnels.plugins.module_utils._tunnel import TunnelResource  # noqa: E402
from ansible_collections.linuxnet.tunnels.plugins.module_utils._veth import VethResource  # noqa: E402
from ansible_collections.linuxnet.tunnels.plugins.module_utils._xfrm_policy import XfrmPolicyResource  # noqa: E402
from ansible_collections.linuxnet.tunnels.plugins.module_utils._xfrm_state import XfrmStateResource  # noqa: E402
from harness import list_netns, run_module, unique  # noqa: E402

# Hypothesis' caches go with the other test output (git-ignored), not into a .hypothesis/ of the checkout.
set_hypothesis_home_dir(os.path.join(os.path.dirname(__file__), '..', 'output', 'hypothesis'))
MAX_EXAMPLES = int(os.environ.get('LINUXNET_FUZZ_EXAMPLES', '60'))
# Namespaces that never exist: the one every netns option gets, and the ones
# the topology module may declare (check mode: never made).
MISSING = unique('fz')
POOL = [f'{MISSING}a', f'{MISSING}b']
USED: set = {MISSING, *POOL}

RESOURCES = {
    'netns': NetnsResource, 'veth': VethResource, 'link': LinkResource, 'address': AddressResource,
    'route': RouteResource, 'sysctl': SysctlResource, 'tunnel': TunnelResource, 'netem': NetemResource,
    'xfrm_state': XfrmStateResource, 'xfrm_policy': XfrmPolicyResource,
}
SPECS = {name: full_argument_spec(cls) for name, cls in RESOURCES.items()}
SPECS.update({'topology': TOPOLOGY_SPEC, 'ping': _probe_options.PING_SPEC, 'net_info': _info.ARGUMENT_SPEC,
              'persist': PersistResource.argument_spec})
# persist's dir never exists: check mode reads nothing there and could write nothing anyway.
PERSIST_DIR = f'/nonexistent/{MISSING}'

# Plausible-but-wrong strings: what users mistype, and what the kernel refuses.
STRINGS = [
    '', ' ', '.', '..', '../x', 'a/b', '/', 'lo', 'tunl0', 'gre0', 'sit0', 'ip_vti0', 'x' * 15, 'y' * 16, 'z' * 300,
    'eth0:1', 'a b', '\t', '\x00', 'ünïcödé', '🦆', 'default', 'any', 'inherit', 'none', 'None', 'null', 'true',
    '10.0.0.1', '10.0.0.1/24', '10.0.0.0/24', '10.0.0.1/33', '10.0.0.300', '0.0.0.0', '255.255.255.255',
    '224.0.0.1', '127.0.0.1', 'fd00::1', 'fd00::1/64', 'fd00::1/129', 'fe80::1%lo', '::', '::ffff:10.0.0.1',
    '1e3', '0x10', '0x', '-1', '0', '1', '255', '256', '4294967295', '4294967296', '99999999999999999999',
    'net.ipv4.ip_forward', 'net.ipv4.conf.all.forwarding', 'net.ipv6.conf.lo.disable_ipv6', 'net.', 'net..x',
    'net.ipv4.conf.../../../kernel/hostname', 'kernel.hostname', 'net.core', '1 2 3', '{{ x }}', '%s%n',
    'ipip', 'gre', 'sit', 'isatap', 'vti', 'fou', 'gue', 'present', 'absent', 'up', 'down', 'yes', 'no',
]
NUMBERS = [0, -1, 1, 68, 255, 256, 1500, 65535, 65536, 2**31, 2**32 - 1, 2**32, 2**63, 2**64, 10**30, -(10**30)]


def scalars() -> st.SearchStrategy:
    return st.one_of(
        st.none(), st.booleans(), st.sampled_from(NUMBERS), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
        st.sampled_from(STRINGS), st.text(max_size=40),
    )


def garbage() -> st.SearchStrategy:
    """Anything at all: scalars, lists and (nested) dicts of them."""
    return st.recursive(
        scalars(),
        lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
        max_leaves=8,
    )


def weighted(*choices: tuple[int, st.SearchStrategy]) -> st.SearchStrategy:
    """one_of with weights (hypothesis folds repeated branches into one)."""
    table = [strategy for weight, strategy in choices for _copy in range(weight)]
    return st.integers(min_value=0, max_value=len(table) - 1).flatmap(lambda i: table[i])


def typed_value(option: dict) -> st.SearchStrategy:
    """A value of the option's type (a valid choice for options with choices)."""
    kind = option.get('type', 'str')
    if option.get('choices'):
        return weighted((9, st.sampled_from(list(option['choices']))), (1, st.sampled_from(STRINGS)))
    if kind == 'int':
        return st.one_of(st.sampled_from(NUMBERS), st.integers(min_value=-100, max_value=70000))
    if kind == 'float':
        return st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0, 0.01, 1, 100]))
    if kind == 'bool':
        return st.booleans()
    if kind == 'list':
        return st.lists(st.one_of(st.sampled_from(STRINGS + POOL), st.text(max_size=10)), max_size=3)
    return st.one_of(st.sampled_from(STRINGS), st.sampled_from(STRINGS), st.text(max_size=30))


def wild_value(option: dict) -> st.SearchStrategy:
    """Anything, with the near misses AnsibleModule converts (or refuses) thrown in."""
    near = {
        'int': ['12', '0x10', '1.5', 'ten', 1.5, True],
        'float': ['nan', 'inf', '-inf', '0.5', '1e309', 'x'],
        'bool': ['yes', 'no', 'on', 'off', 'maybe', 2, 0],
    }.get(option.get('type', 'str'), [])
    return st.one_of(garbage(), st.sampled_from(near)) if near else garbage()


def options_for(spec: dict, forced: dict | None = None) -> st.SearchStrategy:
    """Option dicts: mostly well-typed with the required options present, so
    that the modules' own checks are reached rather than AnsibleModule's;
    sometimes wild values, missing required options or an unknown option."""
    free = {name: option for name, option in spec.items() if name not in (forced or {})}

    def dicts(value) -> st.SearchStrategy:
        required = {name: value(option) for name, option in free.items() if option.get('required')}
        optional = {name: value(option) for name, option in free.items() if not option.get('required')}
        return st.fixed_dictionaries(required, optional=optional)

    unknown = st.dictionaries(st.sampled_from(['colour', 'Name', '_x', 'nets']), garbage(), min_size=1, max_size=1)
    strategy = weighted(
        (16, dicts(typed_value)),
        (2, dicts(wild_value)),
        (1, st.fixed_dictionaries({}, optional={name: typed_value(option) for name, option in free.items()})),
        (1, st.tuples(dicts(typed_value), unknown).map(lambda pair: {**pair[1], **pair[0]})),
    )
    if forced:
        strategy = st.tuples(strategy, st.fixed_dictionaries(forced)).map(lambda pair: {**pair[0], **pair[1]})
    return strategy


def topology_item(resource_class) -> st.SearchStrategy:
    """One list item of the topology module, in a namespace that does not exist."""
    spec = full_argument_spec(resource_class)
    if resource_class is NetnsResource:
        return options_for(spec, {'name': st.one_of(st.sampled_from(POOL), st.sampled_from(['', '.', '..', '../' + MISSING, 'a/' + MISSING]))})
    forced = {'netns': st.sampled_from(POOL + [MISSING])}
    if 'peer_netns' in spec:
        forced['peer_netns'] = st.one_of(st.none(), st.sampled_from(POOL + [MISSING]))
    return options_for(spec, forced)


def topology_options() -> st.SearchStrategy:
    lists = {key: weighted((8, st.lists(topology_item(cls), max_size=3)), (1, st.lists(garbage(), max_size=2)), (1, garbage()))
             for key, cls in KINDS}
    lists['namespaces'] = st.lists(topology_item(NetnsResource), max_size=3)
    return st.fixed_dictionaries({}, optional={**lists, 'state': typed_value(TOPOLOGY_SPEC['state']), 'purge': typed_value(TOPOLOGY_SPEC['purge'])})


def persist_options() -> st.SearchStrategy:
    lists = {key: weighted((8, st.lists(options_for(cls.argument_spec), max_size=3)), (1, st.lists(garbage(), max_size=2)),
                           (1, garbage()))
             for key, cls in PERSIST_LISTS}
    others = {name: typed_value(option) for name, option in SPECS['persist'].items() if name not in lists and name != 'dir'}
    return st.fixed_dictionaries({'dir': st.just(PERSIST_DIR)}, optional={**lists, **others})


def strategy_for(module: str) -> st.SearchStrategy:
    spec = SPECS[module]
    if module == 'topology':
        return topology_options()
    if module == 'persist':
        return persist_options()
    if module == 'netns':
        return options_for(spec)  # check mode only: reads /run/netns, nothing else
    if module == 'ping':
        return options_for(spec, {'netns': st.just(MISSING)})  # never sends a packet
    if module == 'net_info':
        # Reads only; mutually exclusive netns/namespaces: one or the other names a missing namespace.
        return st.one_of(
            options_for({k: v for k, v in spec.items() if k != 'namespaces'}, {'netns': st.just(MISSING)}),
            options_for({k: v for k, v in spec.items() if k != 'netns'},
                        {'namespaces': st.lists(st.sampled_from(POOL + [MISSING, '', '../' + MISSING]), min_size=1, max_size=3)}),
        )
    forced = {'netns': st.just(MISSING)}
    if 'peer_netns' in spec:
        forced['peer_netns'] = st.one_of(st.none(), st.sampled_from(POOL + [MISSING, '', '../' + MISSING]))
    return options_for(spec, forced)


def assert_no_traceback(module: str, params: dict) -> dict:
    try:
        result = run_module(module, params, check=True)
    except AssertionError:
        raise
    except BaseException as exc:  # what would reach the user as a traceback
        raise AssertionError(f'{module} raised {exc!r} for {params!r}') from exc
    assert isinstance(result, dict), result
    if result.get('failed'):
        msg = result.get('msg')
        assert isinstance(msg, str) and msg.strip(), result
        assert 'Traceback' not in msg, msg
        assert 'exception' not in result, result
    else:
        assert 'changed' in result, result
        if module in ('ping', 'net_info'):
            assert result['changed'] is False, result
    return result


def remember_names(params: dict) -> None:
    """Every namespace name the fuzz could have made, for the final check."""
    for key in ('name', 'netns', 'peer_netns'):
        if isinstance(params.get(key), str):
            USED.add(params[key])
    for item in params.get('namespaces') or []:
        if isinstance(item, dict) and isinstance(item.get('name'), str):
            USED.add(item['name'])


@pytest.fixture(scope='module', autouse=True)
def nothing_made():
    before = set(list_netns())
    run_before = set(os.listdir('/run'))
    yield
    made = (set(list_netns()) - before) & USED
    assert not made, f'the fuzz created namespaces: {sorted(made)}'
    assert not [n for n in list_netns() if MISSING in n]
    assert not (set(os.listdir('/run')) - run_before) & {os.path.basename(n) for n in USED if '/' in n}


@pytest.mark.parametrize('module', sorted(SPECS))
def test_fuzz_module_arguments(module):
    os.environ.pop('ANSIBLE_DISPLAY_TRACEBACK', None)

    @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=not os.environ.get('LINUXNET_FUZZ_RANDOM'), database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
    @given(params=strategy_for(module))
    def fuzz(params):
        if module == 'netns' and isinstance(params.get('name'), str):
            # check mode only reads, but keep its names ours too
            params = dict(params, name=params['name'] if params['name'] in STRINGS else f"{MISSING}{params['name']}")
        remember_names(params)
        assert_no_traceback(module, params)

    fuzz()


def test_fuzz_covers_every_module():
    modules = os.listdir(os.path.join(os.path.dirname(__file__), '..', '..', 'plugins', 'modules'))
    names = {m[:-3] for m in modules if m.endswith('.py') and not m.startswith('_')}
    assert names <= set(SPECS), names - set(SPECS)
