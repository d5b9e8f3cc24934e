"""Print a directory whose ansible_collections/linuxnet/tunnels is this checkout.

Ansible and the in-process tests import the collection as
ansible_collections.linuxnet.tunnels; the link lives outside the repository so
that no tool walking the tree meets a loop.
"""

from __future__ import annotations

import hashlib
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))


def ensure(repo: str = REPO) -> str:
    digest = hashlib.sha1(repo.encode()).hexdigest()[:10]
    # /tmp, not $TMPDIR: the User-Mode Linux runner shares /tmp with the host.
    root = os.path.join('/tmp', f'linuxnet.tunnels-{digest}')
    parent = os.path.join(root, 'ansible_collections', 'linuxnet')
    link = os.path.join(parent, 'tunnels')
    os.makedirs(parent, exist_ok=True)
    if os.path.realpath(link) != repo:
        tmp_link = f'{link}.{os.getpid()}'
        os.symlink(repo, tmp_link)
        os.replace(tmp_link, link)  # atomic even when several runs race
    return root


if __name__ == '__main__':
    sys.stdout.write(ensure() + '\n')
