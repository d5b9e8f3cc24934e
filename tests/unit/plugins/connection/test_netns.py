"""The netns connection plugin on a controller without pyroute2."""

from __future__ import annotations

import subprocess
import sys

PROBE = '''
import sys


class NoPyroute2:
    """Any import of pyroute2, even one guarded by try/except ImportError, stops the probe."""

    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] == 'pyroute2':
            raise SystemExit('pyroute2 was imported')


sys.meta_path.insert(0, NoPyroute2())
sys.path.insert(0, sys.argv[1])
import ansible_collections.linuxnet.tunnels.plugins.connection.netns as plugin
try:
    plugin.check_netns_name('a/b', 'ansible_netns_name')
except plugin.ResourceError as exc:
    print(exc)
'''


def test_imports_no_pyroute2_and_checks_names():
    import conftest  # the collection's import path, as the tests set it up
    proc = subprocess.run([sys.executable, '-c', PROBE, conftest.COLLECTIONS], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ansible_netns_name: 'a/b' is not a valid network namespace name (empty, '.', '..' or containing '/')"
