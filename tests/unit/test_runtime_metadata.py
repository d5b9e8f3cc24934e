# Copyright (c) linuxnet.tunnels contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""meta/runtime.yml: the action group `all` is every module, no more, no less."""

from __future__ import annotations

import glob
import os

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_group_all_is_every_module():
    with open(os.path.join(REPO, 'meta', 'runtime.yml'), encoding='utf-8') as fh:
        group = yaml.safe_load(fh)['action_groups']['all']
    modules = sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(REPO, 'plugins', 'modules', '*.py'))
                     if not p.endswith('__init__.py'))
    assert modules and sorted(group) == modules, 'meta/runtime.yml action_groups.all must list exactly plugins/modules/*.py'
