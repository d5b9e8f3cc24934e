"""Make the collection importable as ansible_collections.linuxnet.tunnels."""

from __future__ import annotations

import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, 'scripts'))

import collection_path  # noqa: E402  (needs the path above)

COLLECTIONS = collection_path.ensure()
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)
os.environ.setdefault('ANSIBLE_COLLECTIONS_PATH', COLLECTIONS)
