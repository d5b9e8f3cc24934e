# -*- coding: utf-8 -*-
# Copyright (c) linuxnet.tunnels contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
name: netns
short_description: Run tasks inside a network namespace of the controller
version_added: 0.1.0
description:
  - Runs each task inside a named network namespace (one that C(ip netns list) shows) of the machine Ansible runs on,
    as C(ip netns exec NAME) would; otherwise it behaves like P(ansible.builtin.local#connection).
  - This makes every namespace an inventory host, so roles written for real machines can be rehearsed on one machine,
    a namespace per host, with C(forks) running them in parallel.
  - The namespace must exist; a missing one makes the host unreachable with a message saying so. It is never created.
  - Files stay on the one filesystem; only the network (links, addresses, routes, C(/proc/net), C(/proc/sys/net)) and
    C(/sys) (mounted afresh for the namespace, so fact gathering sees the namespace's interfaces) differ.
author:
  - linuxnet.tunnels maintainers (@linuxnet)
options:
  netns_name:
    description:
      - Name of the network namespace to run the tasks in, as C(ip netns list) shows it.
      - Defaults to the inventory hostname; set the variable C(ansible_netns_name) to use another one, for example
        when the host names of an inventory are written for real machines.
      - There is deliberately no ini or environment setting, because the namespace differs from host to host.
    type: str
    default: inventory_hostname
    vars:
      - name: inventory_hostname
      - name: ansible_netns_name
  become_success_timeout:
    description:
      - Number of seconds to wait for become to succeed when enabled, as for the C(local) connection.
      - The default will be used if the configured value is less than 1.
    type: int
    default: 10
    vars:
      - name: ansible_local_become_success_timeout
      - name: ansible_netns_become_success_timeout
  become_strip_preamble:
    description:
      - Strip internal become output preceding command execution, as for the C(local) connection. Disable for additional diagnostics.
    type: bool
    default: true
    vars:
      - name: ansible_local_become_strip_preamble
      - name: ansible_netns_become_strip_preamble
extends_documentation_fragment:
  - connection_pipelining
requirements:
  - Linux, with C(nsenter) and C(unshare) from util-linux on the controller.
  - ansible-playbook running as root on the controller (entering a namespace needs C(CAP_SYS_ADMIN));
    C(become) then works inside the namespace as usual, but cannot provide the right to enter it.
notes:
  - The remote user is ignored, as with the C(local) connection; tasks run as the user running Ansible.
  - Modules run with the controller's Python (the one running C(ansible-playbook), C(ansible_playbook_python)),
    without interpreter discovery, unless C(ansible_python_interpreter) is set for the host.
  - The M(ansible.builtin.reboot) module refuses to run through this connection, as through C(local), because it would reboot the controller.
seealso:
  - module: linuxnet.tunnels.netns
  - module: linuxnet.tunnels.net_info
'''

EXAMPLES = r'''
# inventory.yml: each host is a namespace of the controller.
# all:
#   vars:
#     ansible_connection: linuxnet.tunnels.netns
#   hosts:
#     site-a: {}                      # runs in namespace site-a
#     site-b:
#       ansible_netns_name: lab-site-b  # runs in namespace lab-site-b

- name: Show the links each namespace has
  hosts: all
  gather_facts: false
  tasks:
    - name: Read the links
      ansible.builtin.command: ip -j link show
      changed_when: false
'''

import os
import shlex
import shutil
import subprocess
import sys

import ansible.constants as C
from ansible.errors import AnsibleConnectionFailure
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.connection.local import Connection as LocalConnection
from ansible.utils.display import Display

from ansible_collections.linuxnet.tunnels.plugins.module_utils._errors import ResourceError
from ansible_collections.linuxnet.tunnels.plugins.module_utils._names import NETNS_RUN_DIR, check_netns_name

display = Display()

# Run by the shell that unshare starts: mount a sysfs of the namespace over /sys
# (in the private mount namespace only), as `ip netns exec` does, so that
# /sys/class/net (which fact gathering reads) lists the namespace's links.
# Best effort: without it, everything but /sys still runs in the namespace.
SYSFS_THEN_EXEC = 'mount -t sysfs sysfs /sys 2>/dev/null; exec "$0" -c "$1"'


class Connection(LocalConnection):
    """The local connection, with every command started inside a network namespace."""

    # Ansible keys controller-side behaviour on transport 'local': the task's
    # directory as cwd, and reboot refusing to reboot the control node. Both
    # apply here: this is the controller, seen through a namespace.
    transport = 'local'

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._tools: tuple[str, str] | None = None

    @property
    def netns_name(self) -> str:
        name = self.get_option('netns_name')
        if not name:
            raise AnsibleConnectionFailure('netns connection: no network namespace name (set ansible_netns_name)')
        try:
            check_netns_name(name, 'ansible_netns_name')
        except ResourceError as exc:
            raise AnsibleConnectionFailure(f'netns connection: {exc}') from None
        return name

    def update_vars(self, variables: dict) -> None:
        """Modules run with the controller's Python, unless the host sets ansible_python_interpreter.

        The namespace is the controller's own filesystem: interpreter discovery
        could only find a worse Python there (one without pyroute2, or a pyenv
        shim that exits 127), and would run once per namespace.
        """
        super().update_vars(variables)
        variables.setdefault('ansible_python_interpreter', sys.executable)

    def _netns_path(self) -> str:
        name = self.netns_name
        path = os.path.join(NETNS_RUN_DIR, name)
        if not os.path.exists(path):
            raise AnsibleConnectionFailure(
                f"network namespace '{name}' does not exist (create it first, e.g. with linuxnet.tunnels.netns)")
        return path

    def _find_tools(self) -> tuple[str, str]:
        if self._tools is None:
            nsenter, unshare = shutil.which('nsenter'), shutil.which('unshare')
            if not nsenter or not unshare:
                raise AnsibleConnectionFailure('netns connection: nsenter and unshare (util-linux) are needed on the controller')
            self._tools = (nsenter, unshare)
        return self._tools

    def _connect(self) -> Connection:
        if not self._connected:
            path = self._netns_path()
            nsenter, _unshare = self._find_tools()
            # Enter once up front, so that a namespace we may not enter makes the
            # host unreachable with the reason, instead of failing every module.
            probe = subprocess.run([nsenter, f'--net={path}', '--', 'true'], capture_output=True, check=False)
            if probe.returncode != 0:
                reason = to_text(probe.stderr).strip() or f'nsenter exited with {probe.returncode}'
                hint = '; entering a namespace needs root on the controller' if 'ermission' in reason or 'not permitted' in reason else ''
                raise AnsibleConnectionFailure(f"cannot enter network namespace '{self.netns_name}': {reason}{hint}")
            display.vvv(f'ESTABLISH NETNS CONNECTION TO NAMESPACE {self.netns_name}', host=self._play_context.remote_addr)
        return super()._connect()

    def exec_command(self, cmd: str, in_data: bytes | None = None, sudoable: bool = True) -> tuple[int, bytes, bytes]:
        """Run cmd as the local connection would, but inside the namespace.

        Why nsenter and unshare in front of the command, rather than setns():
        the switch happens in a short-lived child process, so Ansible's own
        worker process (and any thread in it) never changes namespace; the
        command travels as one argument ("$1"), quoted once with shlex, so its
        own quoting is untouched; become (sudo, su) runs inside, and inherits
        the namespace; and util-linux is on every Linux machine, where iproute2's
        `ip netns exec` may not be. The private mount namespace carries the
        namespace's own /sys, which `ip netns exec` also provides.
        """
        path = self._netns_path()  # again: the namespace may have gone since the last task
        nsenter, unshare = self._find_tools()
        shell = self._shell_executable()
        wrapped = [
            nsenter, f'--net={path}', '--',
            unshare, '--mount', '--propagation', 'private', '--',
            shell, '-c', SYSFS_THEN_EXEC, shell, to_text(cmd),
        ]
        return super().exec_command(' '.join(shlex.quote(part) for part in wrapped), in_data=in_data, sudoable=sudoable)

    @staticmethod
    def _shell_executable() -> str:
        # The shell the local connection runs commands with.
        return C.DEFAULT_EXECUTABLE.split()[0] if C.DEFAULT_EXECUTABLE else '/bin/sh'
