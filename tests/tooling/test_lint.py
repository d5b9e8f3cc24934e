# Copyright (c) linuxnet.tunnels contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""scripts/test lint: ansible-lint's production profile and the changelog."""

from __future__ import annotations

import subprocess

import pytest

from collection import REPO


@pytest.mark.parametrize('cmd', [
    ['ansible-lint', '--offline', '--profile', 'production'],
    ['antsibull-changelog', 'lint'],
    ['antsibull-changelog', 'lint-changelog-yaml', 'changelogs/changelog.yaml'],
], ids=lambda cmd: ' '.join(cmd[:2]) if cmd[-1] != 'changelogs/changelog.yaml' else 'changelog.yaml')
def test_lint(cmd):
    result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
