# -*- coding: utf-8 -*-
# Copyright (c) linuxnet.tunnels contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Errors fit to show the user, and the kernel's refusals turned into them.

Imports no pyroute2: the code that talks netlink registers pyroute2's
NetlinkError here (register_kernel_error), and only that code can raise it.
"""

from __future__ import annotations

import errno
from contextlib import contextmanager

# What a refusal of the kernel can be raised as: OSError, and what register_kernel_error() adds.
KERNEL_ERRORS: list = [OSError]


class ResourceError(Exception):
    """A failure whose message is complete and fit to show the user."""


class NamespaceMissing(ResourceError):
    def __init__(self, name: str) -> None:
        super().__init__(f"network namespace '{name}' does not exist")
        self.name = name


def register_kernel_error(error_class: type) -> None:
    """Treat error_class (pyroute2's NetlinkError: code, then the kernel's text) as a kernel refusal."""
    if error_class not in KERNEL_ERRORS:
        KERNEL_ERRORS.append(error_class)


def code_of(exc: BaseException) -> int | None:
    """The errno of a kernel refusal (NetlinkError.code or OSError.errno)."""
    if isinstance(exc, OSError):
        return exc.errno
    code = getattr(exc, 'code', None)
    return code if isinstance(code, int) else None


def error_text(exc: BaseException) -> str:
    """The kernel's own words for a refusal, with the errno name."""
    code = code_of(exc)
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror
    elif not isinstance(exc, OSError) and len(exc.args) > 1:
        text = str(exc.args[1])  # NetlinkError(code, text)
    else:
        text = str(exc) or type(exc).__name__
    name = errno.errorcode.get(code) if code is not None else None
    return f'{text} ({name})' if name else text


@contextmanager
def kernel_call(action: str):
    """Turn a refusal inside the block into a ResourceError naming `action`."""
    try:
        yield
    except ResourceError:
        raise
    except tuple(KERNEL_ERRORS) as exc:
        if code_of(exc) == errno.EPERM:
            raise ResourceError(f'{action}: operation not permitted; the module needs root (become: true)') from exc
        raise ResourceError(f'{action}: {error_text(exc)}') from exc


def errno_of(exc: BaseException) -> int | None:
    """The errno behind a ResourceError raised by kernel_call, if any."""
    cause = exc.__cause__ if isinstance(exc, ResourceError) else exc
    return code_of(cause) if isinstance(cause, tuple(KERNEL_ERRORS)) else None


def where(netns: str | None) -> str:
    """Words for a namespace in messages."""
    return f"namespace '{netns}'" if netns else 'the current namespace'
