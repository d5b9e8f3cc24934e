#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) linuxnet.tunnels contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: persist
short_description: Write systemd-networkd or NetworkManager files that bring tunnels back after a reboot
version_added: 0.1.0
description:
  - Writes the boot-time configuration of tunnels, their addresses (point-to-point peers included) and their routes
    in the namespace the network service runs in, from the same items M(linuxnet.tunnels.topology) takes.
    The kernel is not touched; M(linuxnet.tunnels.topology) makes the tunnels now, this module makes them come back.
  - O(backend=networkd) writes, per tunnel, C(10-linuxnet-NAME.netdev) (C([NetDev]) with C(Kind=) C(ipip), C(gre),
    C(sit) or C(vti), V(isatap) being C(sit) with C(ISATAP=yes), and C(MTUBytes=); C([Tunnel]) with C(Independent=yes),
    C(Local=), C(Remote=), C(TTL=), C(TOS=), C(DiscoverPathMTU=) and the keys) and C(10-linuxnet-NAME.network)
    (C([Match] Name=), C(ConfigureWithoutCarrier=yes), one C([Address]) with C(Peer=) and one C([Route]) per item),
    mode 0644.
  - O(backend=networkmanager) writes, per tunnel, the keyfile C(linuxnet-NAME.nmconnection) (type C(ip-tunnel) with
    the mode number, C(local), C(remote), C(parent), C(ttl), C(tos), C(path-mtu-discovery), the keys and C(mtu);
    addresses and routes under C([ipv4]) and C([ipv6])), owned by root, mode 0600.
  - Every tunnel option is written or refused by name, never dropped. Refused are options a backend cannot express,
    for example V(isatap) with NetworkManager (it cannot create one), a point-to-point peer with NetworkManager, the C(dev) of a tunnel
    with systemd-networkd (only the underlay's own C(.network) file can name a tunnel, and that hands the underlay to
    systemd-networkd), GRE checksums, and fou/gue encapsulation.
  - Idempotent by content, mode and owner. Writes are atomic (a hidden temporary file in O(dir), renamed over the
    target); when one file of a run fails, the files the run wrote before it are put back.
  - Every file starts with a comment line that marks it as written by this module. A file in the way without that
    line is never overwritten or removed; the task fails and names it. Delete the line to keep a file as your own.
author:
  - linuxnet.tunnels maintainers (@linuxnet)
options:
  backend:
    description:
      - The network service that reads the files at boot.
    type: str
    required: true
    choices: [networkd, networkmanager]
  dir:
    description:
      - Directory of the files. It must exist.
      - Defaults to C(/etc/systemd/network) for O(backend=networkd) and C(/etc/NetworkManager/system-connections)
        for O(backend=networkmanager).
    type: path
  tunnels:
    description:
      - Tunnels; each item takes the options of M(linuxnet.tunnels.tunnel) except C(netns)
        (C(name), C(mode), C(local), C(remote), C(dev), C(ttl), C(tos), C(pmtudisc), C(key), C(ikey), C(okey),
        C(csum), C(seq), C(mtu), C(up), C(state)), with the same defaults and checks.
      - An item with C(state=absent) has its files removed.
      - O(backend=networkmanager) needs C(remote) (NetworkManager refuses a tunnel without one).
    type: list
    elements: dict
    default: []
  addresses:
    description:
      - Addresses of the tunnels; each item takes the options of M(linuxnet.tunnels.address) except C(netns)
        (C(dev), C(address), C(peer), C(state)). C(dev) must be one of O(tunnels).
      - An item with C(state=absent) is left out of the files.
    type: list
    elements: dict
    default: []
  routes:
    description:
      - Routes through the tunnels; each item takes the options of M(linuxnet.tunnels.route) except C(netns)
        (C(dest), C(gateway), C(dev), C(metric), C(table), C(state)). C(dev) must be one of O(tunnels).
      - A route without C(metric) gets the kernel's default (0 for IPv4, 1024 for IPv6) with both backends, as at run
        time (NetworkManager would otherwise choose its own).
      - An item with C(state=absent) is left out of the files.
    type: list
    elements: dict
    default: []
  state:
    description:
      - V(present) writes the files of every tunnel listed.
      - V(absent) removes the files of every tunnel listed (only files this module wrote); O(addresses) and O(routes)
        are ignored.
    type: str
    choices: [present, absent]
    default: present
  reload:
    description:
      - After a change, ask the running service to read its files again (C(networkctl reload) or
        C(nmcli connection reload)). systemd-networkd creates new tunnels on reload but does not change existing ones.
      - When no service runs, the task still succeeds, with a warning and RV(reloaded=false).
    type: bool
    default: false
extends_documentation_fragment:
  - linuxnet.tunnels.common.attributes
notes:
  - Check mode renders and compares the same files a real run writes, and never reloads. In diff mode, the C(diff)
    of the result is a list with one before/after text per changed file, shown as a unified diff.
  - A running systemd-networkd removes routes it did not configure from the links it manages
    (C(ManageForeignRoutes=yes), the default in C(networkd.conf)); declare every route of a tunnel here.
  - Nothing here creates the underlay or the remote end's route; those belong to the host's own configuration.
  - NetworkManager reads only root-owned keyfiles of mode 0600; the module writes them so.
seealso:
  - module: linuxnet.tunnels.topology
  - module: linuxnet.tunnels.tunnel
  - module: linuxnet.tunnels.address
  - module: linuxnet.tunnels.route
'''

EXAMPLES = r'''
- name: A gre tunnel now and after every reboot (systemd-networkd)
  vars:
    tunnels:
      - {name: gre-b, mode: gre, local: 198.51.100.10, remote: 203.0.113.20, key: '42', ttl: '64'}
    addresses:
      - {dev: gre-b, address: 10.255.0.1, peer: 10.255.0.2}
    routes:
      - {dest: 192.168.20.0/24, dev: gre-b}
  block:
    - name: Make it now
      linuxnet.tunnels.topology:
        tunnels: "{{ tunnels }}"
        addresses: "{{ addresses }}"
        routes: "{{ routes }}"
    - name: Make it come back
      linuxnet.tunnels.persist:
        backend: networkd
        tunnels: "{{ tunnels }}"
        addresses: "{{ addresses }}"
        routes: "{{ routes }}"

- name: An ipip tunnel as a NetworkManager connection, loaded at once
  linuxnet.tunnels.persist:
    backend: networkmanager
    tunnels:
      - {name: tun-b, local: 198.51.100.10, remote: 203.0.113.20}
    addresses:
      - {dev: tun-b, address: 10.255.0.1/30}
    reload: true

- name: Remove the files again
  linuxnet.tunnels.persist:
    backend: networkd
    tunnels:
      - {name: gre-b}
    state: absent
'''

RETURN = r'''
action:
  description: V(create), V(update) or V(delete) when every changed file has that action, else V(update); V(none) when nothing changed.
  returned: always
  type: str
  sample: create
dir:
  description: The directory of the files.
  returned: always
  type: str
  sample: /etc/systemd/network
files:
  description: Every file of the declaration and what the task did (or would do) to it.
  returned: success
  type: list
  elements: dict
  contains:
    path:
      description: The file.
      type: str
      sample: /etc/systemd/network/10-linuxnet-gre-b.netdev
    action:
      description: V(create), V(update), V(delete), or V(none) when it is as declared already (or absent, for a removal).
      type: str
      sample: create
reloaded:
  description: Whether a running service read the files again (O(reload=true) after a change).
  returned: success
  type: bool
  sample: false
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.linuxnet.tunnels.plugins.module_utils._errors import ResourceError
from ansible_collections.linuxnet.tunnels.plugins.module_utils._persist import PersistResource, reload_daemon
from ansible_collections.linuxnet.tunnels.plugins.module_utils._resource import converge


def main() -> None:
    module = AnsibleModule(argument_spec=PersistResource.argument_spec, supports_check_mode=True)
    resource = PersistResource(None, module.params)
    try:
        resource.validate()
        change = converge(resource, module.check_mode)
    except ResourceError as exc:
        module.fail_json(msg=str(exc))
    result = {
        'changed': change is not None,
        'action': change.action if change else 'none',
        'dir': resource.dir,
        'files': resource.file_actions(change),
        'reloaded': False,
    }
    if change is not None and module.params['reload'] and not module.check_mode:
        result['reloaded'], warning = reload_daemon(module.params['backend'], module)
        if warning:
            module.warn(warning)
    if module._diff:
        result['diff'] = resource.diffs(change)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
