# SPDX-License-Identifier: GPL-3.0-or-later
"""The step runner behind scripts/test (see `scripts/test --help`).

Native steps run one after the other in the foreground, streamed; the steps
that run inside User-Mode Linux run in the background, LINUXNET_JOBS at a time,
their output printed when they end. A pytest step counts its tests from its
JUnit file, any other step counts as one test. Run with the virtualenv's Python
and ANSIBLE_COLLECTIONS_PATH set (scripts/test does both).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import datetime
import glob
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET

REPO = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
ORDER = ('unit', 'integration-native', 'integration-tunnel', 'sanity', 'lint', 'build', 'molecule', 'oldest')
ALIASES = {'all': ORDER, 'integration': ORDER[1:3], 'tunnel': ORDER[2:3]}
UML_TIMEOUT = {'pytest': os.environ.get('LINUXNET_UML_PYTEST_TIMEOUT', '1800'),
               'molecule': os.environ.get('LINUXNET_UML_MOLECULE_TIMEOUT', '2400')}
COLOUR = sys.stdout.isatty() and not os.environ.get('NO_COLOR')
RUNNING: set[subprocess.Popen] = set()
PRINT = threading.Lock()


def bold(text: str, colour: int = 1) -> str:
    return f'\033[1;{colour}m{text}\033[0m' if COLOUR else text


def say(text: str, log=None) -> None:
    with PRINT:
        print(text, file=log or sys.stdout, flush=True)


@dataclasses.dataclass(eq=False)
class Step:
    name: str
    cmd: list[str]
    uml: bool = False
    junit: str = ''  # a pytest step: counted from this file
    status: str = 'SKIPPED'
    secs: int = 0
    counts: tuple[int, int, int] = (0, 0, 1)  # passed, failed, skipped
    detail: str = ''

    def run(self, log=None) -> None:
        where = ' (inside User-Mode Linux)' if self.uml else ''
        shown = ['pytest', *self.cmd[6:]] if self.junit else self.cmd  # not the interpreter and JUnit options
        say(bold(f'\n==> {self.name}: {shlex.join(shown)}{where}'), log)
        cmd = self.cmd
        if self.uml:
            cmd = [f'{REPO}/scripts/uml-run', '--timeout', UML_TIMEOUT['pytest' if self.junit else 'molecule'], '--', *cmd]
        start = time.monotonic()
        # A session of its own: an interrupt ends the step's whole process tree (and kernel).
        proc = subprocess.Popen(cmd, cwd=REPO, stdin=subprocess.DEVNULL, stdout=log, stderr=log and subprocess.STDOUT,
                                start_new_session=True)
        RUNNING.add(proc)
        rc = proc.wait()
        RUNNING.discard(proc)
        self.secs = round(time.monotonic() - start)
        self.status = 'FAILED' if rc else 'PASSED'
        self.counts = (0, 1, 0) if rc else (1, 0, 0)
        if self.junit:
            self.counts = junit_counts(self.junit)
            if rc and not self.counts[1]:  # a crash, a timeout, no tests collected (exit 5): one failure
                self.counts = (self.counts[0], 1, self.counts[2])
        reasons = {5: 'no tests collected', 124: 'timed out', 125: 'the User-Mode Linux runner failed'}
        self.detail = reasons.get(rc, f'exit status {rc}') if rc else ''
        say(bold(f'--- {self.name}: {self.status} in {self.secs}s ({self.summary()})'), log)
        if log:
            say(bold(f'[background] {self.name}: {self.status} in {self.secs}s'))

    def summary(self) -> str:
        passed, failed, skipped = self.counts
        return f'{passed} passed, {failed} failed, {skipped} skipped' + (f'; {self.detail}' if self.detail else '')


def junit_counts(path: str) -> tuple[int, int, int]:
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return 0, 0, 0
    suites = [root] if root.tag == 'testsuite' else root.findall('testsuite')
    total, failed, skipped = (sum(int(s.get(k, 0)) for s in suites for k in keys)
                              for keys in (('tests',), ('failures', 'errors'), ('skipped',)))
    return total - failed - skipped, failed, skipped


def plan(wanted: list[str], out: str) -> list[Step]:
    def pytest(name: str, path: str, *args: str, uml: bool = False) -> Step:
        if not os.path.exists(os.path.join(REPO, path)):  # declared empty: nothing to run yet
            return Step(name, [], detail=f'no {path}')
        return Step(name, [sys.executable, '-m', 'pytest', '-p', 'no:cacheprovider', f'--junitxml={out}/junit/{name}.xml',
                           path, *args], uml=uml, junit=f'{out}/junit/{name}.xml')

    native_tunnels = False
    if 'integration-tunnel' in wanted or any(w.startswith('molecule') for w in wanted):
        native_tunnels = subprocess.run([f'{REPO}/scripts/has-tunnels'], check=False).returncode == 0
        say('The running kernel creates ipip links: tunnel tests and molecule run natively (rootns ones inside User-Mode Linux).'
            if native_tunnels else 'The running kernel cannot create ipip links (or LINUXNET_FORCE_UML=1): tunnel tests and '
            'molecule run inside User-Mode Linux (scripts/uml-run).')
    scenarios = sorted(os.path.basename(os.path.dirname(f)) for f in glob.glob(f'{REPO}/molecule/*/molecule.yml'))
    steps = []
    for name in ORDER:
        if name == 'molecule':
            chosen = scenarios if name in wanted else [w[9:] for w in wanted if w.startswith('molecule:')]
            steps += [Step(f'molecule:{s}', ['molecule', 'test', '-s', s], uml=s.startswith('rootns') or not native_tunnels)
                      for s in chosen]
            if name in wanted and not scenarios:
                steps.append(Step(name, [sys.executable, '-c', 'raise SystemExit("no molecule/*/molecule.yml")']))
        elif name not in wanted:
            continue
        elif name == 'unit':
            steps.append(pytest(name, 'tests/unit'))
        elif name == 'integration-native':
            steps.append(pytest(name, 'tests/integration', '-m', 'not tunnel and not rootns'))
        elif name == 'integration-tunnel' and native_tunnels:
            steps += [pytest(name, 'tests/integration', '-m', 'tunnel and not rootns'),
                      pytest('integration-rootns', 'tests/integration', '-m', 'rootns', uml=True)]
        elif name == 'integration-tunnel':
            # Two kernels, a CPU each: the two longest files beside all the others.
            longest = [f'tests/integration/{f}' for f in ('test_roles_tunnel_endpoint.py', 'test_reliability_faults.py')]
            steps += [pytest(name, 'tests/integration', '-m', 'tunnel or rootns', *[f'--ignore={f}' for f in longest], uml=True),
                      pytest(f'{name}-2', longest[0], longest[1], '-m', 'tunnel or rootns', uml=True)]
        else:
            steps.append(pytest(name, f'tests/tooling/test_{name}.py'))
    return steps


def main(argv: list[str]) -> int:
    requested = argv or os.environ.get('STEPS', '').split() or ['all']
    scenarios = {os.path.basename(os.path.dirname(f)) for f in glob.glob(f'{REPO}/molecule/*/molecule.yml')}
    wanted = []
    for word in requested:
        if word not in ORDER and word not in ALIASES and word[9:] not in scenarios:
            say(f"test: unknown step '{word}' (steps: unit integration sanity lint build molecule molecule:NAME oldest)")
            return 2
        wanted += ALIASES.get(word, [word])
    started = time.monotonic()
    root = os.path.join(REPO, 'tests', 'output', 'linuxnet')
    # Each run has a directory of its own (two runs in one checkout must not mix), `latest`; the five newest are kept.
    out = os.path.join(root, f'run-{datetime.datetime.now():%Y%m%d-%H%M%S}-{os.getpid()}')
    os.makedirs(f'{out}/junit')
    os.makedirs(f'{out}/logs')
    if os.path.lexists(f'{root}/latest'):
        os.remove(f'{root}/latest')
    os.symlink(os.path.basename(out), f'{root}/latest')
    for old in sorted(glob.glob(f'{root}/run-*'), key=os.path.getmtime)[:-5]:
        if not os.path.exists(f'/proc/{old.rsplit("-", 1)[1]}'):  # not a run still going
            shutil.rmtree(old, ignore_errors=True)
    os.environ['LINUXNET_TEST_OUTPUT'] = out  # tests/tooling keep reports there

    steps = plan(wanted, out)
    jobs = int(os.environ.get('LINUXNET_JOBS') or os.cpu_count() or 1)
    background = [s for s in steps if s.uml and s.cmd and jobs > 0]
    pool = concurrent.futures.ThreadPoolExecutor(max(jobs, 1))
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        if background:
            say(f'Running {len(background)} step(s) inside User-Mode Linux in the background, {jobs} at a time; '
                "their output follows the other steps'.")
        futures = [pool.submit(run_logged, s, f'{out}/logs/{s.name}.log') for s in background]
        for step in steps:
            if step not in background and step.cmd:
                step.run()
        if futures:
            say(bold('\nWaiting for the steps running in the background...'))
        for future, step in zip(futures, background):
            future.result()
            say(bold(f'\n################ output of a background step ({os.path.relpath(out, REPO)}/logs/{step.name}.log)'))
            with open(f'{out}/logs/{step.name}.log', encoding='utf-8', errors='replace') as fh:
                sys.stdout.write(fh.read())
    except KeyboardInterrupt:
        say('test: interrupted')
        pool.shutdown(wait=False, cancel_futures=True)
        for proc in list(RUNNING):  # scripts/uml-run ends its kernel on TERM
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        return 130

    say(bold('\n==================== summary ===================='))
    colours = {'PASSED': 32, 'FAILED': 31, 'SKIPPED': 33}
    for s in steps:
        say(f'{s.name:<28} {bold(f"{s.status:<7}", colours[s.status])} {s.secs:5}s  {s.summary()}')
    say(f'{"(wall clock, all)":<28} {"":<7} {round(time.monotonic() - started):5}s')
    passed, failed, skipped = (sum(s.counts[i] for s in steps) for i in range(3))
    say(f'TOTAL: {passed} passed, {failed} failed, {skipped} skipped')
    return 1 if failed else 0


def run_logged(step: Step, path: str) -> None:
    say(bold(f'[background] started {step.name}'))
    with open(path, 'w', encoding='utf-8') as log:
        step.run(log)


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
