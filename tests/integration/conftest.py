"""Fixtures for real-kernel tests: unique namespaces that always go away.

Guards: `rootns` tests touch the namespace the tests run in, so they run only
inside a User-Mode Linux kernel, never on a real host; `tunnel` tests are
skipped, loudly, where the kernel has no ipip (scripts/test runs them under
scripts/uml-run there).
"""

from __future__ import annotations

import pytest

from harness import ip, kernel_has_ipip, list_netns, under_uml, unique


def pytest_collection_modifyitems(config, items):
    in_uml = under_uml()
    has_ipip = None
    for item in items:
        if item.get_closest_marker('rootns') and not in_uml:
            item.add_marker(pytest.mark.skip(reason="touches the host's own namespace: runs only under scripts/uml-run"))
        elif item.get_closest_marker('tunnel'):
            if has_ipip is None:
                has_ipip = kernel_has_ipip()
            if not has_ipip:
                item.add_marker(pytest.mark.skip(reason='this kernel has no ipip: run under scripts/uml-run'))


@pytest.fixture
def make_netns():
    """make_netns() -> the name of a fresh namespace, removed after the test."""
    made: list[str] = []

    def make(stem: str = 'n') -> str:
        name = unique(stem)
        ip('netns', 'add', name)
        made.append(name)
        return name

    yield make
    for name in made:
        ip('netns', 'del', name, check=False)


@pytest.fixture
def netns_name():
    """A unique namespace name that does not exist yet; removed after the test if made."""
    name = unique('n')
    yield name
    if name in list_netns():
        ip('netns', 'del', name, check=False)
