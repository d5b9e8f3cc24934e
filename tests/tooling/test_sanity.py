# Copyright (c) linuxnet.tunnels contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""scripts/test sanity: ansible-test sanity, no ignore files."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from collection import REPO, copy_committed


def test_ansible_test_sanity():
    # ansible-test wants the collection at .../ansible_collections/NS/NAME and reads
    # git's file list: give it exactly the files git would commit.
    root = os.path.join(REPO, '.build', f'sanity-{os.getpid()}')
    dest = os.path.join(root, 'ansible_collections', 'linuxnet', 'tunnels')
    try:
        copy_committed(dest)
        subprocess.run(['git', 'init', '-q'], cwd=dest, check=True)
        subprocess.run(['git', 'add', '-A'], cwd=dest, check=True)
        result = subprocess.run(['ansible-test', 'sanity', '--python', '%d.%d' % sys.version_info[:2], '--venv', '--color', 'no'],
                                cwd=dest, capture_output=True, text=True, check=False)
        if os.environ.get('LINUXNET_TEST_OUTPUT') and os.path.isdir(f'{dest}/tests/output'):  # ansible-test's reports
            shutil.copytree(f'{dest}/tests/output', f'{os.environ["LINUXNET_TEST_OUTPUT"]}/sanity',
                            ignore=shutil.ignore_patterns('.tmp'), dirs_exist_ok=True)
        assert result.returncode == 0, result.stdout + result.stderr
    finally:
        shutil.rmtree(root, ignore_errors=True)
