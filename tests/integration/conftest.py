"""Fixtures for real-kernel tests: unique namespaces that always go away."""

from __future__ import annotations

import pytest

from harness import ip, list_netns, unique


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
