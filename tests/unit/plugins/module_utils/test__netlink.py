"""Session reads against a scripted socket: dumps in several datagrams, ENOBUFS, interrupted dumps."""

from __future__ import annotations

import errno
import struct

import pytest
from pyroute2.netlink import NLM_F_DUMP_INTR, NLM_F_MULTI, NLMSG_DONE
from pyroute2.netlink.rtnl import RTM_NEWLINK
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg

from ansible_collections.linuxnet.tunnels.plugins.module_utils import _netlink
from ansible_collections.linuxnet.tunnels.plugins.module_utils._netlink import NetlinkError, Session


def link(seq: int, index: int, flags: int = NLM_F_MULTI) -> bytes:
    msg = ifinfmsg()
    msg['header'] = {'type': RTM_NEWLINK, 'flags': flags, 'sequence_number': seq}
    msg['index'] = index
    msg['attrs'] = [('IFLA_IFNAME', f'link{index}')]
    msg.encode()
    return bytes(msg.data)


def done(seq: int, flags: int = NLM_F_MULTI) -> bytes:
    return struct.pack('=IHHIIi', 20, NLMSG_DONE, flags, seq, 0, 0)


class ScriptedSocket:
    """Answers each request with the datagrams script(seq) returns; an exception in them is raised by recv."""

    def __init__(self, script) -> None:
        self.script = script
        self.pending: list = []
        self.closed = False

    def send(self, data: bytes) -> None:
        seq = struct.unpack_from('=I', data, 8)[0]
        self.pending = list(self.script(seq))

    def recv(self, _size: int) -> bytes:
        item = self.pending.pop(0)
        if isinstance(item, BaseException):
            raise item
        return item

    def close(self) -> None:
        self.closed = True


def session_with(monkeypatch, *scripts) -> tuple[Session, list]:
    """A Session whose first socket follows scripts[0], the next one (after a reopen) scripts[1], ..."""
    sockets = [ScriptedSocket(script) for script in scripts]
    opened = list(sockets)
    monkeypatch.setattr(Session, '_open', lambda self: opened.pop(0))
    monkeypatch.setattr(_netlink, 'netlink_fd', lambda netns, protocol=None: pytest.fail('no real socket in a unit test'))
    return Session('scripted'), sockets


def test_a_dump_over_several_datagrams_is_read_whole(monkeypatch):
    session, _sockets = session_with(monkeypatch, lambda seq: [link(seq, 1) + link(seq, 2), link(seq, 3), link(seq, 4) + done(seq)])
    assert [m['index'] for m in session.links()] == [1, 2, 3, 4]


def test_enobufs_asks_again_on_a_fresh_socket(monkeypatch):
    overrun = OSError(errno.ENOBUFS, 'No buffer space available')
    session, sockets = session_with(monkeypatch, lambda seq: [link(seq, 1), overrun], lambda seq: [link(seq, 1) + link(seq, 2) + done(seq)])
    assert [m['index'] for m in session.links()] == [1, 2]
    assert sockets[0].closed and not sockets[1].closed


def test_enobufs_on_a_write_is_not_repeated(monkeypatch):
    overrun = OSError(errno.ENOBUFS, 'No buffer space available')
    session, _sockets = session_with(monkeypatch, lambda seq: [overrun])
    with pytest.raises(OSError) as caught:
        session.change_link(1, up=True)
    assert caught.value.errno == errno.ENOBUFS


def test_an_interrupted_dump_is_asked_again(monkeypatch):
    answers = iter([[link(1, 1, NLM_F_MULTI | NLM_F_DUMP_INTR), done(1)], [link(2, 1), link(2, 2) + done(2)]])
    session, _sockets = session_with(monkeypatch, lambda seq: next(answers))
    assert [m['index'] for m in session.links()] == [1, 2]


def test_a_dump_that_never_settles_fails(monkeypatch):
    session, _sockets = session_with(monkeypatch, lambda seq: [link(seq, 1, NLM_F_MULTI | NLM_F_DUMP_INTR) + done(seq)])
    with pytest.raises(NetlinkError) as caught:
        session.links()
    assert caught.value.code == errno.EAGAIN
