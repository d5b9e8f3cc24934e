# Copyright (c) linuxnet.tunnels contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""module_defaults with group/linuxnet.tunnels.all (meta/runtime.yml) sets netns for every module.

Marked rootns: were the group not applied, the modules would change the
namespace the tests run in, so this runs only under scripts/uml-run.
"""

from __future__ import annotations

import os

import pytest

from harness import addresses, links
from reliability.common import playbook

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.mark.rootns
def test_group_all_sets_netns(make_netns, tmp_path):
    ns = make_netns('md')
    current_links = set(links())
    result = playbook(tmp_path, os.path.join(HERE, 'module_defaults.yml'), {'ns': ns})
    assert result.returncode == 0, result.stdout
    assert {'md0', 'md1'} <= set(links(ns)) and set(links()) == current_links
    assert [a['local'] for a in addresses('md0', ns) if a['family'] == 'inet'] == ['10.99.0.1']
