"""Run a module in-process against the real kernel, and read the kernel out of band.

In-process runs cost no interpreter start-up (about 4 s a module under
User-Mode Linux), so the tests can afford the check -> real -> check -> real
rhythm everywhere. Out-of-band reads use `ip -j`, never the module's return.
"""

from __future__ import annotations

import configparser
import contextlib
import importlib
import io
import json
import subprocess
import time
import uuid

from ansible.module_utils import _internal as module_utils_internal
from ansible.module_utils.testing import patch_module_args

import kernel_state

PREFIX = 'lt'


def unique(stem: str = '') -> str:
    """A name that fits IFNAMSIZ and marks the test run (for cleanup)."""
    return f'{PREFIX}{stem}{uuid.uuid4().hex[:6]}'[:15]


def run_module(name: str, params: dict, check: bool = False, diff: bool = True) -> dict:
    """Run linuxnet.tunnels.<name> as Ansible would; return its JSON result."""
    module = importlib.import_module(f'ansible_collections.linuxnet.tunnels.plugins.modules.{name}')
    args = dict(params, _ansible_check_mode=check, _ansible_diff=diff)
    out = io.StringIO()
    # A test that imported controller code (a filter plugin, say) makes the process a "controller",
    # where module.warn() displays instead of returning: run the module as on a managed node.
    was_controller = module_utils_internal.is_controller
    module_utils_internal.is_controller = False
    try:
        with patch_module_args(args), contextlib.redirect_stdout(out):
            try:
                module.main()
            except SystemExit:
                pass
    finally:
        module_utils_internal.is_controller = was_controller
    text = out.getvalue()
    try:
        return json.loads(text)
    except ValueError as exc:
        raise AssertionError(f'module {name} printed no JSON result:\n{text}') from exc


def rhythm(name: str, params: dict) -> list[dict]:
    """check -> real -> check -> real; returns the four results."""
    return [run_module(name, params, check=check) for check in (True, False, True, False)]


def assert_rhythm(results: list[dict], changes: bool = True) -> None:
    """changed, changed, not changed, not changed (or never, for a no-op)."""
    for result in results:
        assert not result.get('failed'), result.get('msg')
    expected = [changes, changes, False, False]
    assert [r['changed'] for r in results] == expected, [r.get('diff') for r in results]


def assert_failed(result: dict, *words: str) -> None:
    """A readable failure that names the problem, with no traceback."""
    assert result.get('failed'), result
    msg = result.get('msg', '')
    assert msg and 'Traceback' not in msg and 'exception' not in result, result
    for word in words:
        assert word.lower() in msg.lower(), f'{word!r} not in {msg!r}'


def ip(*args: str, netns: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    cmd = ['ip'] + (['-n', netns] if netns else []) + list(args)
    return subprocess.run(cmd, capture_output=True, text=True, check=check)


def ip_json(*args: str, netns: str | None = None) -> list:
    """`ip -j ...` parsed; [] when the object does not exist."""
    proc = ip('-j', *args, netns=netns, check=False)
    if proc.returncode != 0 or not proc.stdout.strip():
        return []
    return json.loads(proc.stdout)


def links(netns: str | None = None) -> dict:
    """ifname -> `ip -d -j link show` entry."""
    return {link['ifname']: link for link in ip_json('-d', 'link', 'show', netns=netns)}


def addresses(dev: str, netns: str | None = None) -> list[dict]:
    data = ip_json('addr', 'show', 'dev', dev, netns=netns)
    return data[0].get('addr_info', []) if data else []


def routes(netns: str | None = None, *selector: str) -> list[dict]:
    return ip_json('route', 'show', *selector, netns=netns)


list_netns = kernel_state.list_netns


# Everything a failed task must leave untouched, for before/after comparison.
kernel_snapshot = kernel_state.snapshot


def snapshot(*namespaces: str) -> dict:
    """kernel_snapshot of just these namespaces: tests running beside us add and remove theirs."""
    snap = kernel_state.snapshot(namespaces)
    snap['netns'] = sorted(set(snap['netns']) & set(namespaces))
    return snap


def settled(ns: str, *devs: str) -> None:
    """Wait until the kernel has finished bringing devs up (carrier, IPv6 link-local address).

    Carrier comes through the kernel's linkwatch, up to a second later; the
    link-local address follows it. Snapshots taken before would differ from
    later ones by what the kernel did on its own.
    """
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if all(any(a.get('scope') == 'link' and not a.get('tentative') for a in addresses(dev, ns)) for dev in devs):
            return
        time.sleep(0.05)
    raise AssertionError(f'{devs} in {ns} did not come up')


def nm_keyfile(path) -> configparser.ConfigParser:
    """A NetworkManager keyfile as NetworkManager's own parser reads it (`nmcli --offline`, no daemon;
    normalised: values at their default are left out)."""
    with open(path, encoding='utf-8') as handle:
        proc = subprocess.run(['nmcli', '--offline', 'connection', 'modify', 'connection.autoconnect', 'yes'],
                              stdin=handle, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    parsed = configparser.ConfigParser(interpolation=None)
    parsed.read_string(proc.stdout)
    return parsed


def under_uml() -> bool:
    """True inside a User-Mode Linux kernel, whose root namespace is disposable."""
    try:
        with open('/proc/cpuinfo', encoding='utf-8') as handle:
            return 'User Mode Linux' in handle.read()
    except OSError:
        return False


def kernel_has_ipip() -> bool:
    """Try an ipip link in a scratch namespace (never in the current one)."""
    scratch = unique('probe')
    ip('netns', 'add', scratch)
    try:
        return ip('link', 'add', 'probe0', 'type', 'ipip', 'remote', '192.0.2.1', netns=scratch, check=False).returncode == 0
    finally:
        ip('netns', 'del', scratch, check=False)
