"""Run one untrusted command (a student's notebook) in a bubblewrap sandbox, with limits.

    >>> from cnnlib.grading.sandbox import Limits, probe, run
    >>> probe().ok                                   # bwrap present and working here?
    True
    >>> r = run([sys.executable, "-c", "print(6 * 7)"], workdir=folder, limits=Limits())
    >>> r.returncode, r.stdout, r.limit
    (0, '42\\n', None)

What the sandboxed command sees (a private filesystem view made by `bwrap`):
- read-only: the system (/usr and the /bin, /lib... links), a few /etc files the C library and
  Python need (passwd, group and hosts are made up), the Python environment (sys.prefix,
  sys.base_prefix) and the folder of the imported cnnlib package, plus any `readonly` paths
  the caller names; the root and /dev themselves are read-only too;
- writable: `workdir` (the submission's private copy) at /submission, its current folder,
  and a private, size-capped /tmp and /dev/shm (HOME is /tmp/home);
- absent: the grader's home, the course folder (of a checkout only the package folder and the
  venv are bound), the gradebook, solutions/, other submissions, the grader's environment
  variables (the environment is cleared; see `safe_env`), the network (a new network
  namespace with only its own loopback), every process outside (a new PID namespace).
A seccomp filter (`seccomp_program`, x86-64) refuses new user namespaces, mounts, the kernel
keyring, bpf, perf_event_open, userfaultfd and io_uring. Everything started inside ends with
the run: the launcher (below) kills and reaps every leftover when the command exits, and when
bwrap's PID 1 exits (or this runner kills the sandbox for a limit) the kernel kills whatever
remains of the PID namespace, daemons included.

Limits (`Limits`): address space, CPU seconds, largest file, process count and open files are
rlimits, set by a tiny launcher inside the sandbox that forks the command and stays as its
parent to report its exact status and CPU time; output size is enforced by the reader here,
wall time and the workdir's disk use by this runner. `Result.limit` names the limit that
stopped the run (one of LIMIT_NAMES) and `Result.reason` says it in words for feedback and
the CSV.

Root and ordinary users (`mode()`):
- an ordinary user runs bwrap in a new user namespace (`--unshare-user --disable-userns`);
  RLIMIT_NPROC then counts only that namespace's processes (Linux >= 5.14 counts per user
  namespace).
- root: processes of uid 0 are exempt from RLIMIT_NPROC, even inside a user namespace (seen
  here: 44 processes ran under a limit of 20), so a fork bomb would be unbounded. As root,
  bwrap therefore runs privileged (no user namespace, every capability dropped but the three
  the launcher needs) and the command runs as an unused uid (`_sandbox_uid`); the workdir is
  handed to that uid for the run and back afterwards.
Where user namespaces are blocked (Ubuntu 24.04's AppArmor default), `probe()` says how to
enable them.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import platform
import re
import selectors
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import cnnlib
from cnnlib.errors import CnnlibError

INSIDE_WORKDIR = "/submission"
"""Where `workdir` appears inside the sandbox (also the command's current folder): the same
for every submission. (The host paths of the bound folders can still be read from
/proc/1/cmdline and /proc/self/mountinfo: names only, nothing beside them is reachable.)"""

INSIDE_HOME = "/tmp/home"
"""HOME inside: a fresh folder in the private /tmp, so no IPython startup file, Jupyter config
or kernelspec of the grader's (or of an earlier run) is ever read."""

SEED_MOUNTS = "/seed"  # read-only binds of `run(seeds=...)`, copied from there at start
# Numba's and matplotlib's cache folders inside (NUMBA_CACHE_DIR, MPLCONFIGDIR): the package
# folder is read-only; both may start from grading.prebuilt's copies
NUMBA_CACHE_INSIDE = "/tmp/numba-cache"
MPLCONFIG_INSIDE = "/tmp/matplotlib"

MiB = 1024 * 1024
GiB = 1024 * MiB

# Seconds between two looks at the workdir's disk use: a loop making one-byte files makes
# ~50,000 a second on a fast disk (28,638 were seen within a 0.5 s poll), so a file bomb is
# stopped near its limit; a workdir of a few files is scanned in microseconds.
DISK_POLL = 0.1

LIMIT_NAMES = ("memory", "cpu", "wall", "output", "file size", "processes", "disk")
"""The values `Result.limit` takes (or None)."""


class SandboxUnavailable(CnnlibError, RuntimeError):
    """bwrap is missing or cannot make a sandbox here; the message says how to enable it."""


@dataclass(frozen=True)
class Limits:
    """Resource limits for one sandboxed run. All sizes in bytes, all times in seconds."""

    # RLIMIT_AS per process (address space: the one memory limit the kernel enforces without
    # cgroups), and the same bound on the anonymous memory resident in all the sandbox's
    # processes together, polled four times a second (RLIMIT_AS alone would allow it once per
    # process). `import numba` fails below ~512 MiB of address space (llvmlite reserves it);
    # a kernel with numpy and numba peaks near 470 MiB, nbclient beside it: 2 GiB is ample.
    memory_bytes: int = 2 * GiB
    # RLIMIT_NPROC: processes *and threads* of the sandbox's uid. A kernel plus nbclient use
    # about 20 threads (zmq, heartbeat, iopub, control); 128 leaves room and stops fork bombs.
    processes: int = 128
    # RLIMIT_CPU per process (SIGXCPU, then SIGKILL one second later): a whole notebook of
    # this course runs in seconds; minutes of CPU mean a runaway loop.
    cpu_seconds: int = 240
    # Killed by this runner after this long, whatever it is doing (sleeping, blocked, spinning
    # in several processes): nbgrader's per-cell timeout is 30 s, a notebook has ~10 cells.
    wall_seconds: float = 300.0
    # RLIMIT_FSIZE: the largest file the command may write. An executed notebook with plots is
    # a few MiB; the course's saved parameters are far smaller; 1 GB scratch files are not.
    file_size_bytes: int = 64 * MiB
    # stdout + stderr kept (the command is killed when it writes more): a print flood must not
    # fill the grader's memory or the feedback. PrairieLearn caps its results at 1 MB too.
    output_bytes: int = 1 * MiB
    # The private /tmp (and /dev/shm) are RAM-backed tmpfs: capped so they cannot eat the
    # host's memory outside RLIMIT_AS. Numba's cache and the kernel's runtime files are small.
    tmp_bytes: int = 256 * MiB
    # RLIMIT_NOFILE: zmq sockets and notebooks need few; bounds descriptor exhaustion.
    open_files: int = 1024
    # The workdir is on the grader's disk and RLIMIT_FSIZE bounds one file only: its total
    # (blocks in use) and number of entries are checked twice a second and at the end. A
    # submission with its executed notebook is a few MiB and a few files.
    disk_bytes: int = 512 * MiB
    disk_files: int = 10_000

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ValueError(
                    f"Limits: {f.name} must be a positive number, got {value!r}"
                )
            if f.name != "wall_seconds" and not isinstance(value, int):
                raise ValueError(
                    f"Limits: {f.name} must be a whole number, got {value!r}"
                )


@dataclass(frozen=True)
class Result:
    """What one sandboxed run did.

    returncode: the command's exit status; -N when signal N killed it (-9 when this runner
        killed the sandbox for the wall or output limit).
    stdout, stderr: captured text (UTF-8, undecodable bytes replaced), cut at
        `Limits.output_bytes` in total with TRUNCATION_MARK appended.
    wall_seconds, cpu_seconds: elapsed time, and user + system CPU of the processes reaped.
    limit: which limit stopped it (one of LIMIT_NAMES) or None; reason: that, in words.
    """

    returncode: int
    stdout: str
    stderr: str
    wall_seconds: float
    cpu_seconds: float
    limit: str | None = None
    reason: str | None = None
    truncated: bool = False
    peak_bytes: int = 0  # the largest resident set of one of its processes (0: unknown)

    @property
    def ok(self) -> bool:
        """True when the command exited 0 without hitting a limit."""
        return self.returncode == 0 and self.limit is None


@dataclass(frozen=True)
class ProbeResult:
    """Whether sandboxing works on this machine (`probe()`), and if not, how to enable it."""

    ok: bool
    bwrap: str | None
    version: str | None
    mode: str
    message: str


TRUNCATION_MARK = "\n[... output cut here by the grader's sandbox: more than {n} bytes ...]\n"

ENABLE_HELP = """\
Sandboxed grading needs bubblewrap (bwrap) and Linux user namespaces.
- Install bubblewrap from your package manager:
    Debian/Ubuntu: sudo apt-get install bubblewrap
    Fedora/RHEL:   sudo dnf install bubblewrap
    Arch:          sudo pacman -S bubblewrap
- Ubuntu 24.04 blocks unprivileged user namespaces with AppArmor. Either give bwrap an
  AppArmor profile that allows them (Ubuntu 25.04 and later ship `bwrap-userns-restrict`;
  on 24.04 copy it from /usr/share/apparmor/extra-profiles/ into /etc/apparmor.d/ if present,
  or write /etc/apparmor.d/bwrap with
      abi <abi/4.0>,
      include <tunables/global>
      profile bwrap /usr/bin/bwrap flags=(unconfined) { userns, }
  then `sudo systemctl reload apparmor`), or lift the restriction for the whole machine:
      sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0
  (add it to /etc/sysctl.d/ to keep it after a reboot).
- Elsewhere check that `sysctl user.max_user_namespaces` is above 0 (and on old Debian
  kernels `sysctl kernel.unprivileged_userns_clone` is 1).
Then check with:  python -c "from cnnlib.grading.sandbox import probe; print(probe().message)"
"""

# The launcher runs inside the sandbox as `python -I -S -c LAUNCHER CONFIG ARGV...`: isolated
# mode and no site-packages, so no .pth file or environment variable runs code before it.
# It forks the command (the child sets the rlimits, drops to the sandbox uid when bwrap ran as
# root, makes HOME and execs argv) and stays as its parent: a child subreaper, so orphans come
# back to it; when the command ends it kills and reaps everything left, then reports the exact
# wait status and CPU time through `report_fd`, which the command never inherits. bwrap itself
# only gives 128 + N for a signal and no CPU time (its outer process does not reap PID 1).
_LAUNCHER = r"""
import ctypes, json, os, resource, sys
cfg = json.loads(sys.argv[1])
argv = sys.argv[2:]
report = cfg["report_fd"]
os.set_inheritable(report, False)
try:
    ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
except (OSError, AttributeError):
    pass
pid = os.fork()
if pid != 0:  # no ptrace, no /proc/<pid>/fd from the command (same uid in user mode)
    ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0
if pid == 0:
    try:
        os.close(report)
        for name, soft, hard in cfg["rlimits"]:
            resource.setrlimit(getattr(resource, name), (soft, hard))
        if cfg["uid"] is not None:
            os.setgroups([])
            os.setgid(cfg["gid"])
            os.setuid(cfg["uid"])
            if os.getuid() != cfg["uid"] or os.geteuid() != cfg["uid"]:
                raise OSError("could not drop privileges")
        os.umask(0o022)
        for d in cfg["mkdirs"]:
            os.makedirs(d, exist_ok=True)
        if cfg["seeds"]:
            import shutil
        for src, dst in cfg["seeds"]:  # private, writable copies of read-only folders
            shutil.copytree(src, dst, dirs_exist_ok=True)
        os.chdir(cfg["chdir"])
        os.execvp(argv[0], argv)
    except BaseException as e:
        os.write(2, f"sandbox: cannot run {argv[0]!r}: {e}\n".encode())
    os._exit(127)
_, status, _ = os.wait4(pid, 0)
# The command is done: end everything else it started (daemons too) and reap it all here, so
# nothing outlives the report and its CPU time counts. kill(-1) spares PID 1 and this process;
# every other process of the sandbox descends from here, orphans become children here.
while True:
    try:
        os.kill(-1, 9)
    except OSError:
        pass
    try:
        while True:
            os.wait()
    except ChildProcessError:
        break
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
os.write(report, json.dumps({"status": status, "cpu": ru.ru_utime + ru.ru_stime,
                             "maxrss": ru.ru_maxrss * 1024}).encode())
os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))
"""

# /etc entries the C library, Python and matplotlib read, bound read-only when present.
# Everything else of /etc (credentials, the grader's jupyter/ipython config) stays out.
_ETC_ENTRIES = (
    "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "alternatives",
    "nsswitch.conf", "protocols", "services", "mime.types", "fonts",
)
_SYSTEM_ROOTS = ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32")

_uid_counter = itertools.count()

# --- seccomp: a few system calls refused inside (a classic BPF program, built here) ----------
# Refused with EPERM: new user namespaces (unshare/clone with CLONE_NEWUSER: as root the
# dropped uid could otherwise make one, mount a tmpfs there and fill the host's memory),
# joining namespaces, mounting, the kernel keyring (not namespaced: an ordinary user's keys
# would be readable), bpf, perf_event_open, userfaultfd and io_uring (kernel attack surface no
# notebook needs). clone3 gets ENOSYS: its flags are out of a filter's reach, and glibc then
# falls back to clone. Other ABIs on the same machine (i386, x32) are refused entirely.
# Syscall numbers from <asm/unistd_64.h>; other machines run without the filter.
_CLONE_NEWUSER = 0x10000000
_SECCOMP_X86_64 = {
    "arch": 0xC000003E,  # AUDIT_ARCH_X86_64
    "x32_bit": 0x40000000,
    "clone": 56, "unshare": 272, "clone3": 435,
    "denied": {
        "keyctl": 250, "add_key": 248, "request_key": 249, "bpf": 321,
        "perf_event_open": 298, "userfaultfd": 323, "mount": 165, "umount2": 166,
        "pivot_root": 155, "open_tree": 428, "move_mount": 429, "fsopen": 430,
        "fsconfig": 431, "fsmount": 432, "mount_setattr": 442, "setns": 308,
        "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
    },
}


def seccomp_program(machine: str | None = None) -> bytes | None:
    """The seccomp filter (struct sock_filter[] bytes) for this machine, or None."""
    if (machine or platform.machine()) != "x86_64":
        return None
    t = _SECCOMP_X86_64
    ld_abs, jeq, jge, jset, ret = 0x20, 0x15, 0x35, 0x45, 0x06  # BPF_LD|W|ABS, BPF_JMP|...|K
    allow, eperm, enosys = 0x7FFF0000, 0x00050000 | 1, 0x00050000 | 38
    prog: list[tuple] = []  # (code, jump-if-true label, jump-if-false label, k)
    prog.append((ld_abs, None, None, 4))  # seccomp_data.arch
    prog.append((jeq, None, "deny", t["arch"]))
    prog.append((ld_abs, None, None, 0))  # seccomp_data.nr
    prog.append((jge, "deny", None, t["x32_bit"]))
    for nr in t["denied"].values():
        prog.append((jeq, "deny", None, nr))
    prog.append((jeq, "nosys", None, t["clone3"]))
    prog.append((jeq, "flags", None, t["clone"]))
    prog.append((jeq, "flags", None, t["unshare"]))
    labels = {"allow": len(prog)}
    prog.append((ret, None, None, allow))
    labels["flags"] = len(prog)
    prog.append((ld_abs, None, None, 16))  # low half of seccomp_data.args[0] (little-endian)
    prog.append((jset, "deny", None, _CLONE_NEWUSER))
    prog.append((ret, None, None, allow))  # (BPF jumps only forward: a second "allow")
    labels["nosys"] = len(prog)
    prog.append((ret, None, None, enosys))
    labels["deny"] = len(prog)
    prog.append((ret, None, None, eperm))
    out = b""
    for i, (code, jt, jf, k) in enumerate(prog):
        jt = labels[jt] - i - 1 if jt else 0
        jf = labels[jf] - i - 1 if jf else 0
        out += struct.pack("=HBBI", code, jt, jf, k)
    return out


def mode() -> str:
    """"root" when this process is root (bwrap privileged + uid drop), else "user"."""
    return "root" if os.geteuid() == 0 else "user"


def bwrap_path() -> str | None:
    """The bwrap program to use, or None when it is not installed."""
    return shutil.which("bwrap") or (
        "/usr/bin/bwrap" if os.access("/usr/bin/bwrap", os.X_OK) else None
    )


@functools.lru_cache(maxsize=4)
def _bwrap_help(path: str) -> str:
    try:
        return subprocess.run([path, "--help"], capture_output=True, text=True,
                              timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def _has_option(bwrap: str, option: str) -> bool:
    """Whether this bwrap knows `option` (--disable-userns: 0.8.0; --size: 0.7.0)."""
    return f" {option} " in _bwrap_help(bwrap)


def _sandbox_uid() -> int:
    """An unused uid for one root-mode run, distinct per grader process and per call.

    RLIMIT_NPROC counts every process of a uid on the machine, so concurrent sandboxes must
    not share one. Far above real accounts (< 65,534) and the usual subuid ranges (100,000 +
    65,536 per user); the span keeps it below 2**31.
    """
    return 1_100_000_000 + (os.getpid() * 64 + next(_uid_counter) % 64) % 900_000_000


def safe_env(extra: Mapping[str, str] | None = None, *, pythonpath: str | None = None) -> dict:
    """The whole environment inside the sandbox: nothing is inherited from the grader."""
    bindir = os.path.dirname(sys.executable)
    env = {
        "PATH": f"{bindir}:/usr/local/bin:/usr/bin:/bin",
        "HOME": INSIDE_HOME,
        "USER": "student",
        "LOGNAME": "student",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TMPDIR": "/tmp",
        "MPLBACKEND": "Agg",  # no display inside
        # One thread each: parallel grading with several BLAS/Numba threads per job gave
        # timeouts under contention, and every thread costs RLIMIT_NPROC and address space.
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "NUMBA_NUM_THREADS": "1",
        "NUMBA_CACHE_DIR": NUMBA_CACHE_INSIDE,
        "MPLCONFIGDIR": MPLCONFIG_INSIDE,
        # glibc reserves 64 MiB of address space per malloc arena (one per thread): two
        # arenas keep RLIMIT_AS about memory actually used.
        "MALLOC_ARENA_MAX": "2",
        "PYTHONDONTWRITEBYTECODE": "1",  # the environment is read-only anyway
        "PYTHONUNBUFFERED": "1",  # output up to a kill is kept
        "JUPYTER_PLATFORM_DIRS": "1",  # silences jupyter_core's migration warning on stderr
    }
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    for key, value in (extra or {}).items():
        if not isinstance(key, str) or not key or "=" in key or not isinstance(value, str):
            raise ValueError(
                f"sandbox.run: env must map names to strings, got {key!r}: {value!r}"
            )
        env[key] = value
    return env


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _python_paths() -> tuple[list[str], str | None]:
    """Read-only paths of the Python environment, and a PYTHONPATH entry for cnnlib if needed.

    The folder of the imported cnnlib package is bound alone (not its parent, which is the
    repository root with solutions/ in a development checkout); when it lies outside the
    environment, its parent goes on PYTHONPATH inside, where that parent holds only cnnlib.
    """
    paths = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix]
    package = os.path.dirname(os.path.abspath(cnnlib.__file__))
    paths.append(package)
    in_env = any(
        _inside(os.path.realpath(package), os.path.realpath(p)) for p in paths[:4]
    )
    return paths, None if in_env else os.path.dirname(package)


def _ancestors(path: str) -> list[str]:
    parts = Path(path).parts[1:-1]
    return ["/" + "/".join(parts[: i + 1]) for i in range(len(parts))]


def build_command(
    argv: Sequence[str],
    *,
    workdir: str,
    limits: Limits,
    env: Mapping[str, str] | None,
    readonly: Sequence[str | os.PathLike],
    etc_dir: str,
    sandbox_uid: int | None,
    report_fd: int,
    info_fd: int | None = None,
    seccomp_fd: int | None = None,
    seeds: Mapping[str, str | os.PathLike] | None = None,
) -> list[str]:
    """The bwrap command line for one run (see the module docstring for the view it makes)."""
    bwrap = bwrap_path()
    if bwrap is None:
        raise SandboxUnavailable("sandbox: bwrap (bubblewrap) is not installed.\n" + ENABLE_HELP)
    cmd = [
        bwrap,
        "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts",
        "--unshare-cgroup-try",
        "--hostname", "sandbox",
        "--new-session",  # no terminal to inject keystrokes into (TIOCSTI)
        "--die-with-parent",
        "--clearenv",
    ]
    if info_fd is not None:  # bwrap writes {"child-pid": PID 1 of the sandbox, ...} there
        cmd += ["--info-fd", str(info_fd)]
    if seccomp_fd is not None:  # bwrap reads the filter, closes the fd, applies it at exec
        cmd += ["--seccomp", str(seccomp_fd)]
    if sandbox_uid is None:
        # Ordinary user: a user namespace is what makes bwrap work at all; nested ones are
        # refused (less kernel surface, and no fresh RLIMIT_NPROC count).
        cmd += ["--unshare-user"]
        if _has_option(bwrap, "--disable-userns"):
            cmd += ["--disable-userns"]
    else:
        # Root: keep only what the launcher needs to drop to the sandbox uid.
        # (CAP_KILL: the launcher, still uid 0, ends the leftovers of the dropped uid.)
        cmd += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID",
                "--cap-add", "CAP_KILL"]

    for name in _SYSTEM_ROOTS:
        host = "/" + name
        if os.path.islink(host):
            cmd += ["--symlink", os.readlink(host), host]
        elif os.path.isdir(host):
            cmd += ["--ro-bind", host, host]
    cmd += ["--perms", "0755", "--dir", "/etc"]  # bwrap would make it 0700 (see below)
    for name in _ETC_ENTRIES:
        host = "/etc/" + name
        if os.path.lexists(host):
            cmd += ["--ro-bind", host, host]
    for name in ("passwd", "group", "hosts"):
        cmd += ["--ro-bind", os.path.join(etc_dir, name), "/etc/" + name]
    cmd += ["--proc", "/proc", "--dev", "/dev"]
    size = ["--size", str(limits.tmp_bytes)] if _has_option(bwrap, "--size") else []
    cmd += ["--perms", "1777", *size, "--tmpfs", "/tmp"]
    cmd += ["--perms", "1777", *size, "--tmpfs", "/dev/shm"]

    python_paths, pythonpath = _python_paths()
    wanted: list[str] = []
    for p in [*python_paths, *(os.fspath(r) for r in readonly)]:
        p = os.path.abspath(p)
        if not os.path.exists(p):
            if p in python_paths:
                continue
            raise FileNotFoundError(f"sandbox.run: readonly path {p!r} does not exist")
        for candidate in (os.path.realpath(p), p):
            if candidate not in wanted:
                wanted.append(candidate)
    bound = [f"/{n}" for n in _SYSTEM_ROOTS if os.path.isdir(f"/{n}")]
    made: set[str] = set()
    for dest in sorted(wanted, key=len):  # parents before children
        if any(_inside(dest, b) for b in bound):
            continue  # already visible through a parent bind (e.g. a prefix under /usr)
        if _inside(dest, INSIDE_WORKDIR) or _inside(dest, "/proc") or _inside(dest, "/dev"):
            raise ValueError(f"sandbox.run: cannot bind {dest!r}: it clashes with the sandbox")
        for parent in _ancestors(dest):
            if parent not in made and not any(_inside(parent, b) for b in bound):
                # bwrap makes missing parents 0700 root-owned: the dropped uid could not
                # traverse them. 0755 empty folders reveal only the names on the way.
                cmd += ["--perms", "0755", "--dir", parent]
                made.add(parent)
        cmd += ["--ro-bind", os.path.realpath(dest), dest]
        bound.append(dest)

    # No --chdir: as root, bwrap changes folder after dropping its capabilities, before the
    # launcher has become the uid that owns the workdir; the launcher does it.
    cmd += ["--bind", workdir, INSIDE_WORKDIR]
    copies = []
    if seeds:
        cmd += ["--perms", "0755", "--dir", SEED_MOUNTS]
    for i, (dest, host) in enumerate(sorted((seeds or {}).items())):
        host = os.path.realpath(os.fspath(host))
        if not os.path.isdir(host):
            raise FileNotFoundError(f"sandbox.run: seed folder {host!r} does not exist")
        if not (_inside(dest, "/tmp") or _inside(dest, INSIDE_HOME)) or ".." in dest:
            raise ValueError(f"sandbox.run: a seed goes under /tmp or {INSIDE_HOME}, "
                             f"not {dest!r}")
        cmd += ["--ro-bind", host, f"{SEED_MOUNTS}/{i}"]
        copies.append([f"{SEED_MOUNTS}/{i}", dest])
    # The root and /dev are tmpfs folders bwrap made: read-only too, so nothing can be put
    # there (an ordinary user owns them inside its user namespace, and they have no size cap).
    # Not recursive: /tmp, /dev/shm, /dev/null... and the workdir stay as mounted.
    cmd += ["--remount-ro", "/dev", "--remount-ro", "/"]
    for key, value in safe_env(env, pythonpath=pythonpath).items():
        cmd += ["--setenv", key, value]

    soft_cpu = limits.cpu_seconds
    config = {
        "rlimits": [
            ["RLIMIT_AS", limits.memory_bytes, limits.memory_bytes],
            # SIGXCPU at the limit; SIGKILL a second later if that signal is ignored
            ["RLIMIT_CPU", soft_cpu, soft_cpu + 1],
            ["RLIMIT_FSIZE", limits.file_size_bytes, limits.file_size_bytes],
            ["RLIMIT_NPROC", limits.processes, limits.processes],
            ["RLIMIT_NOFILE", limits.open_files, limits.open_files],
            ["RLIMIT_CORE", 0, 0],  # no core dumps into the workdir
        ],
        "uid": sandbox_uid,
        "gid": sandbox_uid,
        "mkdirs": [INSIDE_HOME, NUMBA_CACHE_INSIDE, MPLCONFIG_INSIDE],
        "seeds": copies,
        "chdir": INSIDE_WORKDIR,
        "report_fd": report_fd,
    }
    cmd += ["--", sys.executable, "-I", "-S", "-c", _LAUNCHER, json.dumps(config), *argv]
    return cmd


def _write_etc(etc_dir: str, uid: int, gid: int) -> None:
    """Minimal passwd/group/hosts for the sandbox (the host's list its accounts)."""
    files = {
        "passwd": f"root:x:0:0:root:/root:/usr/sbin/nologin\n"
        f"student:x:{uid}:{gid}:student:{INSIDE_HOME}:/bin/sh\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
        "group": f"root:x:0:\nstudent:x:{gid}:\nnogroup:x:65534:\n",
        "hosts": "127.0.0.1 localhost sandbox\n::1 localhost\n",
    }
    for name, text in files.items():
        path = os.path.join(etc_dir, name)
        with open(path, "w") as fh:
            fh.write(text)
        os.chmod(path, 0o644)


def _chown_tree(root: str, uid: int, gid: int) -> None:
    """lchown root and everything under it (never following symlinks)."""
    os.lchown(root, uid, gid)
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            try:
                os.lchown(os.path.join(dirpath, name), uid, gid)
            except FileNotFoundError:
                pass


_MEMORY_SIGNS = re.compile(
    r"MemoryError|Cannot allocate memory|std::bad_alloc|out of memory|Unable to allocate",
    re.IGNORECASE,
)
_PROCESS_SIGNS = re.compile(
    r"Resource temporarily unavailable|can't start new thread|fork: retry|"
    r"Cannot fork|BlockingIOError",
)
_FSIZE_SIGNS = re.compile(r"File too large|\[Errno 27\]")


def _fmt_bytes(n: int) -> str:
    return f"{n / GiB:g} GiB" if n >= GiB else f"{n / MiB:g} MiB"


def classify(
    returncode: int,
    stderr: str,
    *,
    limits: Limits,
    cpu_seconds: float,
    timed_out: bool,
    output_cut: bool,
    largest_file: int = 0,
    disk_full: bool = False,
    memory_full: bool = False,
) -> tuple[str | None, str | None]:
    """(limit, reason) for a finished run; (None, None) when no limit stopped it.

    Certain verdicts first (this runner killed it for wall time or output; the kernel's
    SIGXCPU/SIGXFSZ), then what the command's errors say (an rlimit makes a system call fail
    and the program reports it: MemoryError, EAGAIN from fork, EFBIG).
    """
    if timed_out:
        return "wall", (
            f"stopped after {limits.wall_seconds:g} s of wall-clock time (the sandbox's time "
            "limit): look for an endless loop, a long sleep or a wait for input."
        )
    if output_cut:
        return "output", (
            f"stopped after printing more than {_fmt_bytes(limits.output_bytes)}: "
            "print less (for example not inside a training loop)."
        )
    if memory_full:
        return "memory", (
            f"used more than {_fmt_bytes(limits.memory_bytes)} of memory in all its processes "
            "together (the sandbox's memory limit); use smaller arrays or fewer copies."
        )
    if disk_full:
        return "disk", (
            f"wrote more than {_fmt_bytes(limits.disk_bytes)} or {limits.disk_files} files "
            "in its folder, or made a folder there unreadable (the sandbox's disk limit)."
        )
    cpu_hit = returncode == -signal.SIGXCPU or (
        returncode == -signal.SIGKILL and cpu_seconds >= limits.cpu_seconds
    )
    if cpu_hit:
        return "cpu", (
            f"stopped after {limits.cpu_seconds} s of CPU time (the sandbox's CPU limit): "
            "look for an endless or far too long loop."
        )
    failed = returncode != 0
    if returncode == -signal.SIGXFSZ or largest_file >= limits.file_size_bytes or (
        failed and _FSIZE_SIGNS.search(stderr)
    ):
        return "file size", (
            f"tried to write a file larger than {_fmt_bytes(limits.file_size_bytes)} "
            "(the sandbox's file size limit)."
        )
    if failed and _PROCESS_SIGNS.search(stderr):
        return "processes", (
            f"tried to start more than {limits.processes} processes or threads "
            "(the sandbox's limit)."
        )
    if failed and _MEMORY_SIGNS.search(stderr):
        return "memory", (
            f"ran out of memory: more than {_fmt_bytes(limits.memory_bytes)} "
            "(the sandbox's memory limit); use smaller arrays or fewer copies."
        )
    return None, None


def _usage(root: str, limits: Limits) -> tuple[int, int, int]:
    """(bytes in use, entries, largest file size) under root; stops counting past a limit.

    A folder the grader cannot read (an ordinary user's command can chmod its own folders to
    000) counts as over the limit: what it holds cannot be measured.
    """
    used = entries = largest = 0
    stack = [root]
    while stack:
        try:
            it = os.scandir(stack.pop())
        except PermissionError:
            return limits.disk_bytes + 1, entries, largest
        except OSError:
            continue  # removed meanwhile
        with it:
            for entry in it:
                entries += 1
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                used += st.st_blocks * 512
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                else:
                    largest = max(largest, st.st_size)
                if used > limits.disk_bytes or entries > limits.disk_files:
                    return used, entries, largest
    return used, entries, largest


def _resident(pid1: int) -> int:
    """Anonymous resident bytes (RssAnon) of pid1 and all its descendants.

    Every process of the sandbox descends from bwrap's PID 1 (orphans go to the launcher, a
    subreaper), so its children files name them all: only the sandbox's processes are read.
    """
    total = 0
    stack, seen = [pid1], set()
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            with open(f"/proc/{pid}/status") as fh:
                for line in fh:
                    if line.startswith("RssAnon:"):
                        total += int(line.split()[1]) * 1024
                        break
            for tid in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{tid}/children") as fh:
                    stack.extend(int(c) for c in fh.read().split())
        except (OSError, ValueError):
            continue  # gone meanwhile
    return total


def _over_disk(usage: tuple[int, int, int], limits: Limits) -> bool:
    return usage[0] > limits.disk_bytes or usage[1] > limits.disk_files


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # bwrap; --die-with-parent takes the rest
    except ProcessLookupError:
        pass


def run(
    argv: Sequence[str],
    *,
    workdir: str | os.PathLike,
    limits: Limits | None = None,
    env: Mapping[str, str] | None = None,
    readonly: Sequence[str | os.PathLike] = (),
    stdin: bytes | str | None = None,
    stop: threading.Event | None = None,
    seeds: Mapping[str, str | os.PathLike] | None = None,
) -> Result:
    """Run argv in a fresh sandbox whose only writable host folder is `workdir`.

    argv: the command, resolved inside the sandbox (PATH has the environment's bin/ first;
        `sys.executable` works as is). Relative paths are relative to `workdir`, which is the
        current directory inside (at INSIDE_WORKDIR).
    env: extra environment variables, on top of `safe_env()`; nothing else is inherited.
    readonly: extra host paths made visible read-only at the same path.
    stdin: bytes (or text, UTF-8) fed to the command; None gives it an empty stdin.
    stop: an event another thread sets to end the run at once (the grader does when the
        command stops answering); the result then counts as over the wall limit.
    seeds: {folder inside (under /tmp or HOME): host folder}: each host folder is copied
        there before the command starts, a private copy the command may change (the
        grader's prebuilt caches: :mod:`cnnlib.grading.prebuilt`); the host folder
        itself is never writable.
    """
    if isinstance(argv, (str, bytes)) or not argv or not all(isinstance(a, str) for a in argv):
        raise ValueError(f"sandbox.run: argv must be a non-empty list of strings, got {argv!r}")
    limits = limits or Limits()
    if not isinstance(limits, Limits):
        raise TypeError(f"sandbox.run: limits must be a Limits, got {type(limits).__name__}")
    workdir = os.path.realpath(os.fspath(workdir))
    if not os.path.isdir(workdir):
        raise NotADirectoryError(f"sandbox.run: workdir {workdir!r} is not a folder")

    uid = _sandbox_uid() if mode() == "root" else None
    inside_uid, inside_gid = (uid, uid) if uid is not None else (os.getuid(), os.getgid())
    st = os.stat(workdir)
    etc_dir = tempfile.mkdtemp(prefix="cnnlib-sandbox-etc-")
    if stdin is not None and not isinstance(stdin, (bytes, str)):
        raise TypeError(f"sandbox.run: stdin must be bytes, str or None, got "
                        f"{type(stdin).__name__}")
    data = stdin.encode() if isinstance(stdin, str) else stdin
    report_r, report_w = os.pipe()
    info_r, info_w = os.pipe()
    # Descriptors still to close here; _supervise closes the write ends once bwrap has them
    # and takes them off (closing a number twice could close another thread's file).
    open_fds = {report_r, report_w, info_r, info_w}
    program = seccomp_program()
    seccomp_file = tempfile.TemporaryFile()
    if program is not None:
        seccomp_file.write(program)
        seccomp_file.flush()
        seccomp_file.seek(0)
    try:
        _write_etc(etc_dir, inside_uid, inside_gid)
        cmd = build_command(
            argv, workdir=workdir, limits=limits, env=env, readonly=readonly,
            etc_dir=etc_dir, sandbox_uid=uid, report_fd=report_w, info_fd=info_w,
            seccomp_fd=seccomp_file.fileno() if program is not None else None, seeds=seeds,
        )
        if uid is not None:
            _chown_tree(workdir, uid, uid)
        try:
            return _supervise(cmd, data, limits, workdir, (report_r, report_w),
                              (info_r, info_w), seccomp_file.fileno(), open_fds, stop)
        finally:
            if uid is not None:
                _chown_tree(workdir, st.st_uid, st.st_gid)
    finally:
        for fd in open_fds:
            os.close(fd)
        seccomp_file.close()
        shutil.rmtree(etc_dir, ignore_errors=True)


def _supervise(
    cmd: list[str], data: bytes | None, limits: Limits, workdir: str,
    report: tuple[int, int], info: tuple[int, int], seccomp_fd: int, open_fds: set[int],
    stop: threading.Event | None = None,
) -> Result:
    """Start bwrap, feed its stdin, read its output under the caps, enforce wall time, reap."""
    start = time.monotonic()
    proc = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL if data is None else subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True, close_fds=True, pass_fds=(report[1], info[1], seccomp_fd),
    )
    for fd in (report[1], info[1]):  # bwrap and the launcher hold the only write ends now
        os.close(fd)
        open_fds.discard(fd)
    info_text = b""
    pid1 = None  # a pidfd of the sandbox's PID 1: when it has exited, so has all inside
    pid1_pid = None
    chunks: dict[str, list[bytes]] = {"stdout": [], "stderr": []}
    kept = 0
    output_cut = timed_out = False
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ, "stdout")
    sel.register(proc.stderr, selectors.EVENT_READ, "stderr")
    sel.register(info[0], selectors.EVENT_READ, "info")
    fed = 0
    if data is not None:
        os.set_blocking(proc.stdin.fileno(), False)
        sel.register(proc.stdin, selectors.EVENT_WRITE, "stdin")
    pidfd = os.pidfd_open(proc.pid) if hasattr(os, "pidfd_open") else None
    if pidfd is not None:
        sel.register(pidfd, selectors.EVENT_READ, "exit")
    status = rusage = None
    deadline = start + limits.wall_seconds
    open_streams = 2
    disk_full = memory_full = False
    next_disk_check = start + DISK_POLL
    next_memory_check = start + 0.25
    try:
        while open_streams or status is None:
            now = time.monotonic()
            stopped = stop is not None and stop.is_set()
            if (now >= deadline or stopped) and status is None and not timed_out:
                timed_out = True
                _kill(proc)
            if status is not None and now >= deadline + 5:
                break  # exited, yet a pipe stays open: give up reading it
            if status is None and now >= next_disk_check and not disk_full:
                next_disk_check = now + DISK_POLL
                if _over_disk(_usage(workdir, limits), limits):
                    disk_full = True
                    _kill(proc)
            if status is None and pid1_pid and now >= next_memory_check and not memory_full:
                next_memory_check = now + 0.25
                if _resident(pid1_pid) > limits.memory_bytes:
                    memory_full = True
                    _kill(proc)
            wait = max(0.0, deadline - now) if status is None else 0.5
            if pidfd is None:
                wait = min(wait, 0.05)
            for key, _ in sel.select(timeout=min(wait, DISK_POLL)):
                if key.data == "exit":
                    sel.unregister(pidfd)
                    continue
                if key.data == "info":
                    got = os.read(info[0], 4096)
                    info_text += got
                    if not got or len(info_text) > 65536:
                        sel.unregister(info[0])
                        pid1, pid1_pid = _pidfd_of_pid1(info_text)
                    continue
                if key.data == "stdin":
                    try:
                        fed += os.write(key.fd, data[fed:fed + 65536])
                    except (BlockingIOError, InterruptedError):
                        continue
                    except OSError:  # the command closed its stdin or ended
                        fed = len(data)
                    if fed >= len(data):
                        sel.unregister(proc.stdin)
                        proc.stdin.close()
                    continue
                got = os.read(key.fd, 65536)
                if not got:
                    sel.unregister(key.fileobj)
                    open_streams -= 1
                    continue
                room = limits.output_bytes - kept
                if room > 0:
                    chunks[key.data].append(got[:room])
                    kept += min(room, len(got))
                if len(got) > room and not output_cut:
                    output_cut = True
                    _kill(proc)
            if status is None:
                pid, st, ru = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    status, rusage = st, ru
    finally:
        if status is None:
            _kill(proc)
            _, status, rusage = os.wait4(proc.pid, 0)
        proc.returncode = 0  # reaped here (wait4, for its CPU time); stops Popen's own wait
        sel.close()
        if pidfd is not None:
            os.close(pidfd)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None and not stream.closed:
                try:
                    stream.close()
                except OSError:
                    pass  # stdin with unfed data after the command ended
    if pid1 is not None:  # bwrap can exit just before its PID 1 has ended the namespace
        selectors_wait = selectors.DefaultSelector()
        selectors_wait.register(pid1, selectors.EVENT_READ)
        selectors_wait.select(timeout=5.0)
        selectors_wait.close()
        os.close(pid1)
    wall = time.monotonic() - start

    report = _read_report(report[0])
    peak = 0
    if report is not None:  # the launcher saw the command end
        status, cpu, peak = report["status"], report["cpu"], int(report.get("maxrss", 0))
    else:  # killed by us, the launcher killed, or bwrap failed before the launcher ran
        cpu = rusage.ru_utime + rusage.ru_stime
    if os.WIFSIGNALED(status):
        returncode = -os.WTERMSIG(status)
    else:
        returncode = os.WEXITSTATUS(status)
        if report is None and 128 < returncode < 128 + 65:
            returncode = 128 - returncode  # bwrap's way of saying "signal N"
    text = {k: b"".join(v).decode("utf-8", "replace") for k, v in chunks.items()}
    if output_cut:
        text["stderr"] += TRUNCATION_MARK.format(n=limits.output_bytes)
    usage = _usage(workdir, limits)
    limit, reason = classify(
        returncode, text["stderr"], limits=limits, cpu_seconds=cpu,
        timed_out=timed_out, output_cut=output_cut, largest_file=usage[2],
        disk_full=disk_full or _over_disk(usage, limits), memory_full=memory_full,
    )
    return Result(
        returncode=returncode, stdout=text["stdout"], stderr=text["stderr"],
        wall_seconds=wall, cpu_seconds=cpu, limit=limit, reason=reason, truncated=output_cut,
        peak_bytes=peak,
    )


def _pidfd_of_pid1(info_text: bytes) -> tuple[int | None, int | None]:
    """(pidfd, pid) of the sandbox's PID 1 from bwrap's --info-fd JSON; None if gone."""
    try:
        pid = int(json.loads(info_text)["child-pid"])
        return os.pidfd_open(pid), pid
    except (ValueError, KeyError, TypeError, OSError, AttributeError):
        return None, None  # already gone, or no pidfd_open (Linux < 5.3)


def _read_report(fd: int) -> dict | None:
    """The launcher's {"status": wait status, "cpu": seconds, "maxrss": bytes}, or None if
    it wrote none."""
    os.set_blocking(fd, False)
    try:
        data = os.read(fd, 4096)
    except BlockingIOError:
        return None
    try:
        report = json.loads(data)
        return {"status": int(report["status"]), "cpu": float(report["cpu"]),
                "maxrss": int(report.get("maxrss", 0))}
    except (ValueError, KeyError, TypeError):
        return None


def probe() -> ProbeResult:
    """Check that sandboxing works here: bwrap found, and a trivial sandboxed command runs."""
    path = bwrap_path()
    how = mode()
    if path is None:
        return ProbeResult(False, None, None, how, "bwrap (bubblewrap) is not installed.\n"
                           + ENABLE_HELP)
    try:
        version = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=10
        ).stdout.strip() or None
    except (OSError, subprocess.SubprocessError) as e:
        return ProbeResult(False, path, None, how, f"cannot run {path}: {e}\n" + ENABLE_HELP)
    with tempfile.TemporaryDirectory(prefix="cnnlib-sandbox-probe-") as tmp:
        try:
            r = run(
                [sys.executable, "-I", "-c", "import os; print('sandboxed', os.getpid())"],
                workdir=tmp, limits=Limits(wall_seconds=30.0),
            )
        except OSError as e:
            return ProbeResult(False, path, version, how, f"cannot start bwrap: {e}\n"
                               + ENABLE_HELP)
    # A new PID namespace: bwrap's reaper is PID 1, the launcher 2, the command 3.
    words = r.stdout.split()
    if r.returncode == 0 and len(words) == 2 and words[0] == "sandboxed" and int(words[1]) < 10:
        return ProbeResult(True, path, version, how, f"sandboxing works ({version}, {how} mode)")
    detail = (r.stderr or r.stdout).strip() or f"exit status {r.returncode}"
    return ProbeResult(False, path, version, how,
                       f"bwrap is installed but a sandboxed command failed: {detail}\n"
                       + ENABLE_HELP)


__all__ = [
    "INSIDE_HOME", "INSIDE_WORKDIR", "LIMIT_NAMES", "Limits", "ProbeResult", "Result",
    "SandboxUnavailable", "classify", "mode", "probe", "run", "safe_env", "seccomp_program",
]
