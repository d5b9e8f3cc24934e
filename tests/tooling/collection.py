# Copyright (c) linuxnet.tunnels contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the tooling tests (scripts/test's sanity, lint, build and oldest steps) share."""

from __future__ import annotations

import glob
import os
import subprocess
import tarfile

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def plugins(kind: str) -> list[str]:
    """The names of the collection's plugins of one kind (modules, connection, ...)."""
    return sorted(os.path.basename(f)[:-3] for f in glob.glob(f'{REPO}/plugins/{kind}/*.py') if not f.endswith('__init__.py'))


def copy_committed(dest: str) -> None:
    """The files git would commit (tracked, and untracked but not ignored), as a fresh clone has them."""
    names = subprocess.run(['git', 'ls-files', '-co', '--exclude-standard'], cwd=REPO, capture_output=True, text=True,
                           check=True).stdout.split('\n')
    os.makedirs(dest, exist_ok=True)
    with tarfile.open(os.path.join(dest, '.copy.tar'), 'w') as tar:
        for name in filter(None, names):
            if os.path.lexists(os.path.join(REPO, name)):  # a deleted file git still tracks
                tar.add(os.path.join(REPO, name), arcname=name, recursive=False)
    with tarfile.open(os.path.join(dest, '.copy.tar')) as tar:
        tar.extractall(dest, filter='tar')
    os.remove(os.path.join(dest, '.copy.tar'))


def doc_failures(ansible_doc: str, kind: str, names: list[str], env: dict | None = None) -> list[str]:
    """The plugins whose documentation does not render: all at once (one start-up), then one by one to name them."""
    fqcns = [f'linuxnet.tunnels.{name}' for name in names]
    if subprocess.run([ansible_doc, '-t', kind, *fqcns], env=env, capture_output=True, check=False).returncode == 0:
        return []
    return [fqcn for fqcn in fqcns
            if subprocess.run([ansible_doc, '-t', kind, fqcn], env=env, capture_output=True, check=False).returncode]
