"""linuxnet.tunnels.sysctl against the real kernel, in namespaces made here.

Natively every test passes netns: without it the module writes the host's own
sysctls. Tests that omit netns are marked rootns and run only under
scripts/uml-run, where the current namespace belongs to a throwaway kernel.
"""

from __future__ import annotations

import os

import pytest

from harness import assert_failed, assert_rhythm, ip, kernel_snapshot, rhythm, run_module, unique

IPV6 = os.path.exists('/proc/sys/net/ipv6')  # User-Mode Linux has no IPv6 loaded
needs_ipv6 = pytest.mark.skipif(not IPV6, reason='no IPv6 in this kernel')
KEYS = ('net.ipv4.ip_forward', 'net.ipv6.conf.all.forwarding', 'net.ipv4.tcp_rmem', 'net.ipv4.conf.lo.forwarding',
        'net.core.somaxconn')


def sysctl(name: str, netns: str | None = None) -> str:
    """Out of band: sysctl(8) itself, inside the namespace."""
    cmd = ['sysctl', '-n', name]
    if netns:
        return ip('netns', 'exec', netns, *cmd).stdout.strip()
    import subprocess
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()


def values(netns: str | None) -> dict:
    return {key: sysctl(key, netns) for key in KEYS if IPV6 or 'ipv6' not in key}


def test_ip_forward_in_one_namespace_only(make_netns):
    ns, other = make_netns(), make_netns()
    host_before = values(None)  # read only: natively this is the host
    params = {'netns': ns, 'name': 'net.ipv4.ip_forward', 'value': '1'}
    results = rhythm('sysctl', params)
    assert_rhythm(results)
    assert results[0]['action'] == 'update' and results[0]['sysctl']['previous'] == '0'
    assert results[1]['sysctl'] == {'name': 'net.ipv4.ip_forward', 'netns': ns, 'value': '1', 'previous': '0'}
    assert results[3]['sysctl'] == {'name': 'net.ipv4.ip_forward', 'netns': ns, 'value': '1', 'previous': '1'}
    assert results[1]['diff']['before']['value'] == '0' and results[1]['diff']['after']['value'] == '1'
    assert sysctl('net.ipv4.ip_forward', ns) == '1'
    assert sysctl('net.ipv4.ip_forward', other) == '0'
    assert values(None) == host_before

    results = rhythm('sysctl', dict(params, value='0'))
    assert_rhythm(results)
    assert results[1]['sysctl']['previous'] == '1' and sysctl('net.ipv4.ip_forward', ns) == '0'


@needs_ipv6
def test_ipv6_forwarding(make_netns):
    ns = make_netns()
    assert_rhythm(rhythm('sysctl', {'netns': ns, 'name': 'net.ipv6.conf.all.forwarding', 'value': '1'}))
    assert sysctl('net.ipv6.conf.all.forwarding', ns) == '1'


def test_multi_value_key_compares_words(make_netns):
    ns = make_netns()
    low, default, high = sysctl('net.ipv4.tcp_rmem', ns).split()
    wanted = [low, default, str(int(high) + 4096)]  # differs from whatever this kernel's default is
    params = {'netns': ns, 'name': 'net.ipv4.tcp_rmem', 'value': f'{low}  {default}\t{wanted[2]} '}
    results = rhythm('sysctl', params)
    assert_rhythm(results)
    assert sysctl('net.ipv4.tcp_rmem', ns).split() == wanted
    assert results[1]['sysctl']['value'].split() == wanted
    assert not run_module('sysctl', dict(params, value=' '.join(wanted)))['changed']


def test_slash_stands_for_a_dot_in_a_key_part(make_netns):
    ns = make_netns()
    ip('link', 'add', 'va.1', 'type', 'veth', 'peer', 'name', 'vb', netns=ns)
    params = {'netns': ns, 'name': 'net.ipv4.conf.va/1.forwarding', 'value': '1'}
    assert_rhythm(rhythm('sysctl', params))
    assert ip('netns', 'exec', ns, 'cat', '/proc/sys/net/ipv4/conf/va.1/forwarding').stdout.strip() == '1'
    assert sysctl('net.ipv4.conf.vb.forwarding', ns) == '0'


def test_adopts_value_set_by_sysctl(make_netns):
    ns = make_netns()
    ip('netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv4.ip_forward=1')
    result = run_module('sysctl', {'netns': ns, 'name': 'net.ipv4.ip_forward', 'value': '1'})
    assert not result['changed'] and result['action'] == 'none'
    assert result['sysctl'] == {'name': 'net.ipv4.ip_forward', 'netns': ns, 'value': '1', 'previous': '1'}


@pytest.mark.parametrize('check', [True, False])
@pytest.mark.parametrize('params, words', [
    ({'name': 'kernel.hostname'}, ("'kernel.hostname' is not under net.", 'global to the host')),
    ({'name': 'vm.swappiness', 'value': '10'}, ('not under net.', 'vm.*')),
    ({'name': 'net.ipv4.no_such_key'}, ('does not exist', 'global to the host')),
    ({'name': 'net.ipv4'}, ('is a group of keys',)),
    ({'name': 'net.ipv4.route.flush'}, ('write-only',)),
    ({'name': 'net.ipv4.tcp_available_congestion_control'}, ('read-only',)),
    ({'name': 'net.ipv4.conf.lo/../../../kernel.hostname'}, ('not a valid sysctl name',)),
    ({'name': 'net..ipv4.ip_forward'}, ('not a valid sysctl name',)),
    ({'name': 'net.ipv4.conf.//.forwarding'}, ('not a valid sysctl name',)),
    ({'netns': 'lt-missing-ns'}, ("network namespace 'lt-missing-ns' does not exist",)),
    ({'netns': '../evil'}, ('not a valid network namespace name',)),
])
def test_bad_input_changes_nothing(make_netns, params, words, check):
    ns = make_netns()
    before, host_before, snapshot = values(ns), values(None), kernel_snapshot([ns])
    result = run_module('sysctl', dict({'netns': ns, 'name': 'net.ipv4.ip_forward', 'value': '1'}, **params), check=check)
    assert_failed(result, *words)
    assert values(ns) == before and values(None) == host_before and kernel_snapshot([ns]) == snapshot


def test_global_key_is_refused_inside_a_namespace(make_netns):
    """net.core.rmem_max is global: absent or read-only in other namespaces, depending on the kernel."""
    ns = make_netns()
    result = run_module('sysctl', {'netns': ns, 'name': 'net.core.rmem_max', 'value': '1048576'})
    assert_failed(result, 'net.core.rmem_max', 'initial namespace')


def test_value_refused_by_the_kernel(make_netns):
    ns = make_netns()
    before = values(ns)
    result = run_module('sysctl', {'netns': ns, 'name': 'net.ipv4.ip_forward', 'value': 'True'})
    assert_failed(result, 'could not set net.ipv4.ip_forward', 'EINVAL', "write '1' or '0'")
    result = run_module('sysctl', {'netns': ns, 'name': 'net.core.somaxconn', 'value': 'lots'})
    assert_failed(result, 'EINVAL')
    assert values(ns) == before


def test_value_the_kernel_rewrites_is_refused_and_restored(make_netns):
    ns = make_netns()
    previous = sysctl('net.core.somaxconn', ns)
    # The kernel parses integers with base 0: 0100 is octal and reads back as 64.
    result = run_module('sysctl', {'netns': ns, 'name': 'net.core.somaxconn', 'value': '0100'})
    assert_failed(result, "set to '0100' but the kernel stored '64'", 'restored')
    assert sysctl('net.core.somaxconn', ns) == previous


def test_missing_namespace_is_never_created(netns_name):
    result = run_module('sysctl', {'netns': netns_name, 'name': 'net.ipv4.ip_forward', 'value': '1'})
    assert_failed(result, 'does not exist')
    assert netns_name not in ip('netns', 'list').stdout


def test_original_file_keeps_the_first_value_and_absent_puts_it_back(make_netns, tmp_path):
    ns = make_netns()
    kept = tmp_path / 'state' / 'ip_forward'  # its directory does not exist yet
    params = {'netns': ns, 'name': 'net.ipv4.ip_forward', 'value': '1', 'original_file': str(kept)}
    results = rhythm('sysctl', params)
    assert_rhythm(results)
    assert results[0]['attributes'] == ['value', 'original'] and str(kept) in results[0]['note']
    assert results[1]['diff']['before'] == {'name': 'net.ipv4.ip_forward', 'netns': ns, 'value': '0', 'original': None}
    assert results[1]['diff']['after'] == {'name': 'net.ipv4.ip_forward', 'netns': ns, 'value': '1', 'original': '0'}
    assert results[3]['sysctl'] == {'name': 'net.ipv4.ip_forward', 'netns': ns, 'value': '1', 'original': '0', 'previous': '1'}
    assert sysctl('net.ipv4.ip_forward', ns) == '1'
    assert kept.read_text() == '0\n' and oct(kept.stat().st_mode & 0o777) == '0o644'

    # A later change keeps the first value found, not its own.
    ip('netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv4.ip_forward=0')
    result = run_module('sysctl', params)
    assert result['changed'] and result['attributes'] == ['value'] and kept.read_text() == '0\n'

    results = rhythm('sysctl', {'netns': ns, 'name': 'net.ipv4.ip_forward', 'original_file': str(kept), 'state': 'absent'})
    assert_rhythm(results)
    assert kept.exists() is False and sysctl('net.ipv4.ip_forward', ns) == '0'
    assert results[0]['attributes'] == ['value', 'original'] and results[0]['sysctl']['value'] == '0'
    assert results[1]['diff']['before']['original'] == '0' and results[1]['diff']['after'] == {
        'name': 'net.ipv4.ip_forward', 'netns': ns, 'value': '0', 'original': None}
    assert results[3]['sysctl'] == {'name': 'net.ipv4.ip_forward', 'netns': ns, 'value': '0', 'original': None, 'previous': '0'}


def test_original_file_is_not_written_when_nothing_changes(make_netns, tmp_path):
    ns = make_netns()
    kept = tmp_path / 'ip_forward'
    ip('netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv4.ip_forward=1')
    assert_rhythm(rhythm('sysctl', {'netns': ns, 'name': 'net.ipv4.ip_forward', 'value': '1', 'original_file': str(kept)}),
                  changes=False)
    assert not kept.exists()
    assert_rhythm(rhythm('sysctl', {'netns': ns, 'name': 'net.ipv4.ip_forward', 'original_file': str(kept), 'state': 'absent'}),
                  changes=False)
    # Without original_file there is nothing to put back.
    assert_rhythm(rhythm('sysctl', {'netns': ns, 'name': 'net.ipv4.ip_forward', 'state': 'absent'}), changes=False)
    assert sysctl('net.ipv4.ip_forward', ns) == '1'


def test_original_file_of_a_namespace_that_is_gone_is_deleted(netns_name, tmp_path):
    kept = tmp_path / 'ip_forward'
    ip('netns', 'add', netns_name)
    assert run_module('sysctl', {'netns': netns_name, 'name': 'net.ipv4.ip_forward', 'value': '1', 'original_file': str(kept)})['changed']
    ip('netns', 'del', netns_name)
    results = rhythm('sysctl', {'netns': netns_name, 'name': 'net.ipv4.ip_forward', 'original_file': str(kept), 'state': 'absent'})
    assert_rhythm(results)
    assert 'is gone' in results[1]['note'] and not kept.exists()
    assert netns_name not in ip('netns', 'list').stdout


def test_original_file_is_not_left_when_the_kernel_refuses(make_netns, tmp_path):
    ns = make_netns()
    kept = tmp_path / 'ip_forward'
    result = run_module('sysctl', {'netns': ns, 'name': 'net.ipv4.ip_forward', 'value': 'True', 'original_file': str(kept)})
    assert_failed(result, 'EINVAL')
    assert not kept.exists() and not list(tmp_path.iterdir()) and sysctl('net.ipv4.ip_forward', ns) == '0'
    result = run_module('sysctl', {'netns': ns, 'name': 'net.core.somaxconn', 'value': '0100', 'original_file': str(kept)})
    assert_failed(result, 'the kernel stored')
    assert not kept.exists()


@pytest.mark.parametrize('check', [True, False])
def test_original_file_that_cannot_be_used_changes_nothing(make_netns, tmp_path, check):
    ns = make_netns()
    (tmp_path / 'dir').mkdir()
    (tmp_path / 'plain').write_text('x')
    params = {'netns': ns, 'name': 'net.ipv4.ip_forward', 'value': '1'}
    result = run_module('sysctl', dict(params, original_file=str(tmp_path / 'dir')), check=check)
    assert_failed(result, 'original_file', 'is a directory')
    result = run_module('sysctl', dict(params, original_file=str(tmp_path / 'plain' / 'below')), check=check)
    assert_failed(result, 'original_file: cannot read', 'not a directory')
    if not check:  # check mode writes nothing, so it cannot know that a file cannot be made there
        result = run_module('sysctl', dict(params, original_file=f"/proc/{unique('nowhere')}/ip_forward"))
        assert_failed(result, 'original_file: cannot write', 'nothing was changed')
    assert sysctl('net.ipv4.ip_forward', ns) == '0' and sorted(p.name for p in tmp_path.iterdir()) == ['dir', 'plain']
    result = run_module('sysctl', {'netns': ns, 'name': 'net.ipv4.ip_forward'}, check=check)
    assert_failed(result, 'state is present but all of the following are missing: value')


def test_topology_absent_puts_a_kept_value_back_even_when_its_namespace_goes(netns_name, make_netns, tmp_path):
    stays = make_netns()
    kept_stays, kept_goes = tmp_path / 'stays', tmp_path / 'goes'
    sysctls = [{'netns': stays, 'name': 'net.ipv4.ip_forward', 'value': '1', 'original_file': str(kept_stays)},
               {'netns': netns_name, 'name': 'net.ipv4.ip_forward', 'value': '1', 'original_file': str(kept_goes)},
               {'netns': stays, 'name': 'net.ipv4.conf.all.rp_filter', 'value': '2'}]
    params = {'namespaces': [netns_name], 'sysctls': sysctls}
    assert_rhythm(rhythm('topology', params))
    assert kept_stays.read_text() == kept_goes.read_text() == '0\n'
    assert sysctl('net.ipv4.ip_forward', stays) == '1' == sysctl('net.ipv4.ip_forward', netns_name)

    results = rhythm('topology', dict(params, state='absent'))
    assert_rhythm(results)
    assert results[0]['changes'] == results[1]['changes']
    assert [c['name'] for c in results[1]['changes']] == [f'{netns_name}/net.ipv4.ip_forward', f'{stays}/net.ipv4.ip_forward', netns_name]
    assert not kept_stays.exists() and not kept_goes.exists()
    assert sysctl('net.ipv4.ip_forward', stays) == '0' and sysctl('net.ipv4.conf.all.rp_filter', stays) == '2'
    assert netns_name not in ip('netns', 'list').stdout


@pytest.mark.rootns
def test_without_netns_writes_the_current_namespace():
    """Under UML only: the current namespace there belongs to a throwaway kernel."""
    previous = sysctl('net.ipv4.ip_forward')
    wanted = '0' if previous == '1' else '1'
    try:
        results = rhythm('sysctl', {'name': 'net.ipv4.ip_forward', 'value': wanted})
        assert_rhythm(results)
        assert results[1]['sysctl'] == {'name': 'net.ipv4.ip_forward', 'netns': None, 'value': wanted, 'previous': previous}
        assert sysctl('net.ipv4.ip_forward') == wanted
    finally:
        with open('/proc/sys/net/ipv4/ip_forward', 'w') as handle:
            handle.write(previous)


@pytest.mark.rootns
def test_without_netns_refuses_keys_outside_net():
    result = run_module('sysctl', {'name': 'kernel.hostname', 'value': unique('h')})
    assert_failed(result, 'not under net.')
