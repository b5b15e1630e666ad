"""The grader's sandbox (cnnlib.grading.sandbox) with the real bwrap: what a hostile notebook can
and cannot do from inside, and that every limit stops it and says which.

Skipped, with the reason, where bwrap is missing or does not work (probe() fails)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

import cnnlib
from cnnlib.grading import sandbox
from cnnlib.grading.sandbox import INSIDE_HOME, INSIDE_WORKDIR, Limits, MiB, probe, run
from cnnlib.grading.sandbox_runner import import_nbformat

_PROBE = probe() if sandbox.bwrap_path() else None
needs_bwrap = pytest.mark.skipif(
    _PROBE is None or not _PROBE.ok,
    reason="sandboxing unavailable here: "
    + (_PROBE.message.splitlines()[0] if _PROBE else "bwrap (bubblewrap) is not installed"),
)

REPO = Path(__file__).resolve().parents[1]
PACKAGE = Path(cnnlib.__file__).resolve().parent


def py(code: str, workdir, *, stdin=None, env=None, readonly=(), **limits) -> sandbox.Result:
    """Run Python code in a sandbox; a short wall limit unless the test sets its own."""
    limits.setdefault("wall_seconds", 30.0)
    return run([sys.executable, "-c", textwrap.dedent(code)], workdir=workdir,
               limits=Limits(**limits), stdin=stdin, env=env, readonly=readonly)


def last_json(result: sandbox.Result):
    assert result.returncode == 0, (result.returncode, result.stderr)
    return json.loads(result.stdout.strip().splitlines()[-1])


def processes_with(marker: str, where: str = "cmdline") -> list[int]:
    """Host pids whose command line (or environment: where="environ") contains marker."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / where).read_bytes():
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


# --- no bwrap needed ---------------------------------------------------------------------


def test_probe_without_bwrap_says_how_to_install(monkeypatch):
    monkeypatch.setattr(sandbox, "bwrap_path", lambda: None)
    p = probe()
    assert not p.ok and p.bwrap is None
    assert "apt-get install bubblewrap" in p.message
    assert "kernel.apparmor_restrict_unprivileged_userns=0" in p.message
    assert "bwrap-userns-restrict" in p.message


def test_probe_with_a_broken_bwrap_fails_with_instructions(monkeypatch):
    monkeypatch.setattr(sandbox, "bwrap_path", lambda: "/bin/false")
    p = probe()
    assert not p.ok
    assert "a sandboxed command failed" in p.message and "user namespaces" in p.message


def test_limits_and_arguments_are_checked(tmp_path):
    with pytest.raises(ValueError, match="Limits: memory_bytes must be a positive"):
        Limits(memory_bytes=0)
    with pytest.raises(ValueError, match="Limits: processes must be a whole number"):
        Limits(processes=2.5)
    with pytest.raises(ValueError, match="argv must be a non-empty list"):
        run("echo hi", workdir=tmp_path)
    with pytest.raises(NotADirectoryError, match="workdir"):
        run(["true"], workdir=tmp_path / "missing")


def test_run_without_bwrap_refuses_with_instructions(tmp_path, monkeypatch):
    monkeypatch.setattr(sandbox, "bwrap_path", lambda: None)
    with pytest.raises(sandbox.SandboxUnavailable, match="apt-get install bubblewrap"):
        run(["true"], workdir=tmp_path)


def test_classify_names_each_limit():
    lim = Limits(cpu_seconds=5)
    kw = dict(limits=lim, cpu_seconds=0.1, timed_out=False, output_cut=False)
    assert sandbox.classify(0, "", **kw) == (None, None)
    assert sandbox.classify(-signal.SIGXCPU, "", **kw)[0] == "cpu"
    assert sandbox.classify(-signal.SIGXFSZ, "", **kw)[0] == "file size"
    assert sandbox.classify(1, "MemoryError\n", **kw)[0] == "memory"
    # the words alone, from a command that succeeded, are no verdict
    assert sandbox.classify(0, "MemoryError\n", **kw) == (None, None)
    assert sandbox.classify(-9, "", **{**kw, "timed_out": True})[0] == "wall"


# --- the real sandbox --------------------------------------------------------------------


@needs_bwrap
def test_probe_reports_working_sandbox():
    assert _PROBE.ok and _PROBE.version.startswith("bubblewrap")
    assert _PROBE.mode == ("root" if os.geteuid() == 0 else "user")


@needs_bwrap
def test_well_behaved_command_gets_output_files_and_status(tmp_path):
    (tmp_path / "answer.txt").write_text("41")
    r = py("""
        import json, os, sys
        n = int(open("answer.txt").read()) + 1
        open("made.txt", "w").write(str(n))
        os.makedirs("sub", exist_ok=True)
        open("sub/deep.txt", "w").write("ok")
        print(json.dumps({"n": n, "cwd": os.getcwd(), "uid": os.getuid(),
                          "stdin": sys.stdin.read(), "pid": os.getpid()}))
        """, tmp_path, stdin="from the grader")
    out = last_json(r)
    assert r.ok and r.limit is None and r.reason is None and not r.truncated
    assert out["n"] == 42 and out["cwd"] == INSIDE_WORKDIR
    assert out["stdin"] == "from the grader"
    assert out["pid"] < 10  # its own PID namespace
    assert (tmp_path / "made.txt").read_text() == "42"
    assert (tmp_path / "sub" / "deep.txt").read_text() == "ok"
    assert r.wall_seconds > 0 and r.cpu_seconds > 0
    if os.geteuid() == 0:
        assert out["uid"] != 0  # the command never runs as root
        owner = tmp_path.stat().st_uid
        assert (tmp_path / "made.txt").stat().st_uid == owner  # handed back after the run
        assert (tmp_path / "sub" / "deep.txt").stat().st_uid == owner


@needs_bwrap
@pytest.mark.skipif(os.geteuid() != 0, reason="the workdir changes hands only as root")
def test_handing_the_workdir_back_never_follows_links(tmp_path):
    outside = tmp_path / "outside.txt"  # stands for /etc/shadow and the like
    outside.write_text("host file")
    os.chown(outside, 4321, 4321)
    workdir = tmp_path / "work"
    workdir.mkdir()
    r = py(f"""
        import os
        os.symlink({str(outside)!r}, "link-to-host-file")
        os.mkdir("d")
        os.symlink("/", "d/link-to-root")
        """, workdir)
    assert r.ok, r.stderr
    assert (outside.stat().st_uid, outside.stat().st_gid) == (4321, 4321)
    assert os.lstat(workdir / "link-to-host-file").st_uid == workdir.stat().st_uid == 0
    assert os.stat("/").st_uid == 0


@needs_bwrap
def test_environment_and_package_are_read_only(tmp_path):
    extra = tmp_path.parent / f"bundle-{uuid.uuid4().hex}"
    extra.mkdir()
    (extra / "tests.json").write_text("[1, 2]")
    site = next(p for p in sys.path if p.endswith("site-packages"))
    targets = [
        os.path.join(sys.prefix, "planted.txt"),
        os.path.join(sys.base_prefix, "planted.txt"),
        os.path.join(site, "zz_planted.pth"),
        os.path.join(PACKAGE, "planted.py"),
        os.path.join(PACKAGE, "checks", "__init__.py"),  # overwrite a real module
        str(extra / "planted.txt"),
        "/usr/planted.txt",
        "/etc/planted.txt",
        "/planted.txt",
        "/dev/planted",
    ]
    r = py(f"""
        import json, os
        mounts = {{}}  # mount point -> read-only? (as root the uid alone would refuse writes)
        for line in open("/proc/self/mountinfo"):
            fields = line.split()
            mounts[fields[4]] = "ro" in fields[5].split(",")
        def read_only_mount(path):
            path = os.path.dirname(path)
            best = max((m for m in mounts if path == m or path.startswith(m.rstrip("/") + "/")),
                       key=len)
            return mounts[best]
        outcome = {{}}
        for path in {targets!r}:
            try:
                with open(path, "a") as fh:
                    fh.write("# planted")
                outcome[path] = "written"
            except OSError as e:
                outcome[path] = e.strerror
            outcome[path + " ro"] = read_only_mount(path)
        outcome["bundle"] = open({str(extra / "tests.json")!r}).read()
        outcome["workdir ro"] = read_only_mount(os.path.join(os.getcwd(), "x"))
        outcome["tmp ro"] = read_only_mount("/tmp/x")
        print(json.dumps(outcome))
        """, tmp_path, readonly=[extra])
    out = last_json(r)
    assert out.pop("bundle") == "[1, 2]"  # readonly paths are readable
    assert out.pop("workdir ro") is False and out.pop("tmp ro") is False
    assert all(out[p + " ro"] is True for p in targets), out
    assert all(out[p] != "written" for p in targets), out
    for path in targets:
        if os.path.exists(path):
            assert "# planted" not in Path(path).read_text(errors="replace")
    assert not os.path.exists(os.path.join(site, "zz_planted.pth"))


@needs_bwrap
def test_home_repository_and_course_files_do_not_exist_inside(tmp_path):
    course = tmp_path / "course"
    workdir = course / "autograded" / "alice" / "ps1"
    workdir.mkdir(parents=True)
    for rel in ("gradebook.db", "nbgrader_config.py", "solutions/ps1/a.ipynb",
                "submitted/bob/ps1/a.ipynb"):
        (course / rel).parent.mkdir(parents=True, exist_ok=True)
        (course / rel).write_text("secret")
    tag = uuid.uuid4().hex
    planted = [Path.home() / f".cnnlib-planted-{tag}", REPO / f"cnnlib-planted-{tag}.txt"]
    try:
        for p in planted:
            p.write_text("secret")
        looked_at = [str(p) for p in planted] + [
            str(course / "gradebook.db"), str(course / "solutions"),
            str(course / "submitted" / "bob"), str(REPO / "solutions"),
            str(REPO / "pyproject.toml"), str(Path.home()), "/etc/shadow",
        ]
        r = py(f"""
            import json, os
            seen = {{p: os.path.exists(p) for p in {looked_at!r}}}
            seen["repo listing"] = sorted(os.listdir({str(REPO)!r}))
            seen["home env"] = os.environ["HOME"]
            print(json.dumps(seen))
            """, workdir)
    finally:
        for p in planted:
            p.unlink(missing_ok=True)
    out = last_json(r)
    assert out.pop("home env") == INSIDE_HOME
    listing = out.pop("repo listing")
    # only the package folder of the checkout is there, never solutions/ or the config
    # Only the package folder, and the Python environment when it lives in the checkout (CI's
    # .venv), are bound from the repository: no solutions/, gradebook or submissions.
    allowed = {PACKAGE.name}
    for prefix in {sys.prefix, sys.base_prefix}:
        if Path(prefix).is_relative_to(REPO):
            allowed.add(Path(prefix).relative_to(REPO).parts[0])
    assert set(listing) <= allowed if PACKAGE.parent == REPO else True
    assert PACKAGE.parent != REPO or PACKAGE.name in listing
    home_inside = out.pop(str(Path.home()))
    assert not any(out.values()), out
    if home_inside:  # the home path exists only as the way to a bound environment
        assert any(str(p).startswith(str(Path.home())) for p in (sys.prefix, sys.base_prefix))


@needs_bwrap
def test_grader_environment_variables_are_absent(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNLIB_GRADER_SECRET", "s3cret-token")
    r = py("""
        import json, os
        print(json.dumps(dict(os.environ)))
        """, tmp_path, env={"NBGRADER_EXECUTION": "autograde"})
    inside = last_json(r)
    assert "CNNLIB_GRADER_SECRET" not in inside
    assert "s3cret-token" not in json.dumps(inside)
    assert inside["NBGRADER_EXECUTION"] == "autograde"  # what the caller passes, only that
    assert inside["MPLBACKEND"] == "Agg" and inside["OMP_NUM_THREADS"] == "1"
    assert inside["NUMBA_NUM_THREADS"] == "1" and inside["NUMBA_CACHE_DIR"].startswith("/tmp/")
    expected = set(sandbox.safe_env({"NBGRADER_EXECUTION": "x"}, pythonpath="x")) | {"PWD"}
    assert set(inside) <= expected, set(inside) - expected


@needs_bwrap
def test_cannot_reach_a_server_on_the_hosts_loopback(tmp_path):
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    server.settimeout(0.5)
    port = server.getsockname()[1]
    try:
        r = py(f"""
            import json, socket
            out = {{}}
            try:
                socket.create_connection(("127.0.0.1", {port}), timeout=3)
                out["host"] = "connected"
            except OSError as e:
                out["host"] = type(e).__name__
            # the sandbox's own loopback works (a kernel and its client talk over it)
            s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
            c = socket.create_connection(s.getsockname(), timeout=3)
            out["own loopback"] = "connected"
            try:
                socket.create_connection(("192.0.2.1", 80), timeout=3)  # TEST-NET-1
                out["outside"] = "connected"
            except OSError as e:
                out["outside"] = type(e).__name__
            print(json.dumps(out))
            """, tmp_path)
        out = last_json(r)
        assert out["host"] == "ConnectionRefusedError"
        assert out["own loopback"] == "connected"
        assert out["outside"] != "connected"
        with pytest.raises(TimeoutError):
            server.accept()  # nobody ever knocked
    finally:
        server.close()


@needs_bwrap
def test_cannot_see_or_signal_a_host_process(tmp_path):
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        r = py(f"""
            import json, os, signal
            out = {{"visible": os.path.exists("/proc/{sleeper.pid}"),
                    "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit())}}
            try:
                os.kill({sleeper.pid}, signal.SIGKILL)
                out["kill"] = "sent"
            except OSError as e:
                out["kill"] = type(e).__name__
            print(json.dumps(out))
            """, tmp_path)
        out = last_json(r)
        assert out["visible"] is False
        assert out["kill"] == "ProcessLookupError"
        assert max(out["pids"]) < 10, out["pids"]  # only the sandbox's own few processes
        time.sleep(0.1)
        assert sleeper.poll() is None  # still running
    finally:
        sleeper.kill()
        sleeper.wait()


@needs_bwrap
def test_private_tmp_is_size_capped(tmp_path):
    r = py("""
        import errno
        try:
            with open("/tmp/fill.bin", "wb") as fh:
                for _ in range(32):
                    fh.write(b"0" * (1024 * 1024))
        except OSError as e:
            print(errno.errorcode[e.errno])
        """, tmp_path, tmp_bytes=8 * MiB)
    assert r.stdout.strip() == "ENOSPC"


@needs_bwrap
def test_memory_bomb_hits_the_memory_limit(tmp_path):
    r = py("""
        hoard = []
        while True:
            hoard.append(bytearray(64 * 1024 * 1024))
        """, tmp_path, memory_bytes=768 * MiB)
    assert r.limit == "memory", (r.returncode, r.stderr[-500:])
    assert r.returncode != 0 and "768 MiB" in r.reason


@needs_bwrap
def test_memory_spread_over_processes_hits_the_memory_limit(tmp_path):
    # each process stays under RLIMIT_AS; together they hold 8 x 160 MiB > 768 MiB
    marker = f"spread-{uuid.uuid4().hex}"
    r = py(f"""
        import os, time
        # {marker}
        for _ in range(8):
            if os.fork() == 0:
                hoard = bytearray(160 * 1024 * 1024)
                time.sleep(60)
                os._exit(0)
        time.sleep(60)
        """, tmp_path, memory_bytes=768 * MiB, wall_seconds=30.0)
    assert r.limit == "memory", (r.returncode, r.limit, r.stderr[-500:])
    assert "all its processes together" in r.reason
    assert r.wall_seconds < 20
    assert processes_with(marker) == []


@needs_bwrap
def test_default_memory_limit_leaves_room_for_numba(tmp_path):
    r = py("""
        import numba, numpy as np
        f = numba.njit(lambda x: x * 2.0)
        print(f(np.arange(3.0)).sum())
        """, tmp_path, wall_seconds=120.0)
    assert r.ok, r.stderr[-2000:]
    assert r.stdout.strip() == "6.0"


@needs_bwrap
def test_fork_bomb_is_bounded_and_leaves_nothing(tmp_path):
    marker = f"forkbomb-{uuid.uuid4().hex}"
    r = py(f"""
        import os, time
        # {marker}
        while True:
            if os.fork() == 0:
                time.sleep(600)
                os._exit(0)
        """, tmp_path, processes=32, wall_seconds=30.0)
    assert r.limit == "processes", (r.returncode, r.stderr[-500:])
    assert "32 processes" in r.reason
    assert r.wall_seconds < 25
    assert processes_with(marker) == []


@needs_bwrap
def test_print_flood_is_capped(tmp_path):
    r = py("""
        import sys
        while True:
            print("x" * 1000)
            print("y" * 100, file=sys.stderr)
        """, tmp_path, output_bytes=256 * 1024)
    assert r.limit == "output" and r.truncated
    assert len(r.stdout.encode()) + len(r.stderr.encode()) < 256 * 1024 + 200
    assert "output cut here" in r.stderr
    assert r.wall_seconds < 20


@needs_bwrap
@pytest.mark.parametrize("swallow", [False, True], ids=["error", "error-caught"])
def test_huge_file_hits_the_file_size_limit(tmp_path, swallow):
    r = py(f"""
        chunk = b"0" * (1024 * 1024)
        try:
            with open("scratch.bin", "wb") as fh:
                for _ in range(1024):  # 1 GiB
                    fh.write(chunk)
        except OSError:
            if not {swallow}:
                raise
        """, tmp_path, file_size_bytes=8 * MiB)
    assert r.limit == "file size", (r.returncode, r.stderr[-500:])
    total = sum(p.stat().st_size for p in tmp_path.rglob("*") if p.is_file())
    assert total <= 8 * MiB


@needs_bwrap
@pytest.mark.parametrize("how", ["many files", "many bytes"])
def test_filling_the_workdir_hits_the_disk_limit(tmp_path, how):
    # each file under the file size limit, together over the folder's limits
    r = py(f"""
        import os
        for i in range(100_000):
            with open(f"f{{i}}", "wb") as fh:
                fh.write(b"1" * (1024 * 1024 if {how!r} == "many bytes" else 1))
        """, tmp_path, disk_bytes=32 * MiB, disk_files=500, file_size_bytes=4 * MiB)
    assert r.limit == "disk", (r.returncode, r.stderr[-500:])
    assert "disk limit" in r.reason
    # stopped within a poll (sandbox.DISK_POLL) of crossing it, not after 100,000 files
    assert len(list(tmp_path.iterdir())) < 20_000


@needs_bwrap
def test_cpu_spin_hits_the_cpu_limit(tmp_path):
    r = py("while True:\n    pass\n", tmp_path, cpu_seconds=1, wall_seconds=30.0)
    assert r.limit == "cpu", (r.returncode, r.stderr[-500:])
    assert r.returncode == -signal.SIGXCPU
    assert r.cpu_seconds >= 0.9


@needs_bwrap
def test_sleeper_hits_the_wall_limit(tmp_path):
    marker = f"sleeper-{uuid.uuid4().hex}"
    r = py(f"import time  # {marker}\ntime.sleep(60)\n", tmp_path, wall_seconds=1.5)
    assert r.limit == "wall" and "1.5 s" in r.reason
    assert r.wall_seconds < 6
    assert processes_with(marker) == []


@needs_bwrap
def test_daemonised_grandchild_does_not_outlive_the_run(tmp_path):
    marker = f"daemon-{uuid.uuid4().hex}"
    r = py(f"""
        import os, sys, time
        # {marker}
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                for fd in (0, 1, 2):
                    os.close(fd)
                open("started", "w").close()
                time.sleep(1.0)
                open("survived", "w").close()
                time.sleep(600)
            os._exit(0)
        while not os.path.exists("started"):
            time.sleep(0.01)
        print("parent done")
        """, tmp_path)
    assert r.ok and r.stdout.strip() == "parent done"
    assert (tmp_path / "started").exists()
    assert processes_with(marker) == []
    time.sleep(1.3)
    assert not (tmp_path / "survived").exists()


def _notebook(path: Path) -> None:
    nbformat = import_nbformat()
    from nbformat.v4 import new_code_cell, new_notebook

    nb = new_notebook(
        cells=[
            new_code_cell("import os\nx = 6 * 7\nprint(x)", id="compute"),
            new_code_cell("open('from_kernel.txt', 'w').write(os.environ['HOME'])\n"
                          "print(os.getpid() < 50)", id="write"),
            new_code_cell("1 / 0", id="fails"),
        ],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}},
    )
    nbformat.write(nb, path)


@needs_bwrap
@pytest.mark.slow
@pytest.mark.parametrize("transport", ["ipc", "tcp"])
def test_a_jupyter_kernel_executes_a_notebook_inside(tmp_path, transport):
    nbformat = import_nbformat()
    _notebook(tmp_path / "in.ipynb")
    marker = f"CNNLIB_TEST_RUN=nb-{uuid.uuid4().hex}"  # the kernel inherits the environment
    r = run([sys.executable, "-m", "cnnlib.grading.sandbox_runner", "in.ipynb", "out.ipynb",
             "--transport", transport],
            workdir=tmp_path, limits=Limits(wall_seconds=120.0),
            env={"CNNLIB_TEST_RUN": marker.split("=", 1)[1]})
    assert r.ok, r.stderr[-2000:]
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary == {"cells": 3, "errors": [{"cell": "fails", "ename": "ZeroDivisionError"}]}
    nb = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    assert [c.id for c in nb.cells] == ["compute", "write", "fails"]
    assert nb.cells[0].outputs[0].text == "42\n"
    assert nb.cells[1].outputs[0].text == "True\n"  # the kernel's pid: the sandbox's namespace
    assert (tmp_path / "from_kernel.txt").read_text() == INSIDE_HOME
    assert processes_with(marker, "environ") == []  # the kernel is gone with the sandbox


@needs_bwrap
@pytest.mark.skipif(os.geteuid() != 0, reason="as an ordinary user every test runs this mode")
def test_ordinary_user_mode_gives_the_same_view(tmp_path, monkeypatch):
    # The flags an ordinary user's run gets (a user namespace, nested ones refused), checked
    # here as root; RLIMIT_NPROC is the one thing root is exempt from even in this mode.
    monkeypatch.setattr(sandbox, "mode", lambda: "user")
    monkeypatch.setenv("CNNLIB_GRADER_SECRET", "s3cret-token")
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    try:
        r = py(f"""
            import json, os, socket, subprocess
            out = {{"pid": os.getpid(), "secret": "CNNLIB_GRADER_SECRET" in os.environ,
                    "uid_map": open("/proc/self/uid_map").read().split()}}
            try:
                open({os.path.join(sys.prefix, "planted.txt")!r}, "w")
                out["prefix"] = "written"
            except OSError as e:
                out["prefix"] = e.strerror
            try:
                socket.create_connection(("127.0.0.1", {server.getsockname()[1]}), timeout=3)
                out["host"] = "connected"
            except OSError as e:
                out["host"] = type(e).__name__
            out["nested userns"] = subprocess.run(["unshare", "--user", "true"],
                                                  capture_output=True).returncode
            open("made.txt", "w").write("ok")
            print(json.dumps(out))
            """, tmp_path)
    finally:
        server.close()
    out = last_json(r)
    assert out["pid"] < 10 and not out["secret"]
    assert out["uid_map"] != ["0", "0", "4294967295"]  # a user namespace, not the host's
    assert out["prefix"] == "Read-only file system"
    assert out["host"] == "ConnectionRefusedError"
    assert out["nested userns"] != 0
    assert (tmp_path / "made.txt").read_text() == "ok"


@needs_bwrap
def test_large_stdin_is_fed_while_output_is_read(tmp_path):
    # 4 MiB echoed back piece by piece: both pipes' buffers (64 KiB) fill, so the runner must
    # feed and read together or deadlock until the wall limit.
    r = py("""
        import sys
        while chunk := sys.stdin.buffer.read1(65536):
            sys.stdout.buffer.write(chunk)
        """, tmp_path, stdin=b"z" * (4 * MiB), output_bytes=8 * MiB)
    assert r.ok and r.stdout == "z" * (4 * MiB)


@needs_bwrap
def test_no_nested_user_namespace_no_keyring_no_mount(tmp_path):
    # A nested user namespace would let the command mount a tmpfs of its own (host memory,
    # outside every limit); the kernel keyring is shared by all processes of a uid.
    r = py("""
        import ctypes, json, os, threading
        libc = ctypes.CDLL(None, use_errno=True)
        def errno_of(rc):
            return os.strerror(ctypes.get_errno()) if rc == -1 else "allowed"
        out = {
            "unshare user": errno_of(libc.unshare(0x10000000)),
            "keyctl": errno_of(libc.syscall(250, 0, -3, 0, 0, 0)),  # KEYCTL_GET_KEYRING_ID
            "mount": errno_of(libc.mount(b"x", b"/tmp", b"tmpfs", 0, None)),
        }
        t = threading.Thread(target=lambda: out.update(thread="ran"))
        t.start(); t.join()
        pid = os.fork()
        if pid == 0:
            os._exit(7)
        out["fork"] = os.waitpid(pid, 0)[1] >> 8
        print(json.dumps(out))
        """, tmp_path)
    out = last_json(r)
    if sandbox.seccomp_program() is not None:
        assert out["keyctl"] == "Operation not permitted"
    assert out["unshare user"] != "allowed" and out["mount"] != "allowed"
    assert out["thread"] == "ran" and out["fork"] == 7  # threads and fork still work


@needs_bwrap
def test_concurrent_runs_stay_apart(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    dirs = [tmp_path / f"s{i}" for i in range(3)]
    for i, d in enumerate(dirs):
        d.mkdir()
        (d / "me.txt").write_text(str(i))

    def one(d):
        return py("""
            import json, os
            print(json.dumps({"me": open("me.txt").read(), "uid": os.getuid(),
                              "others": os.listdir("..")}))
            """, d)

    with ThreadPoolExecutor(3) as pool:
        outs = [last_json(r) for r in pool.map(one, dirs)]
    assert [o["me"] for o in outs] == ["0", "1", "2"]
    assert all("s0" not in o["others"] and "s1" not in o["others"] for o in outs)
    if os.geteuid() == 0:  # one uid each: RLIMIT_NPROC counts per uid
        assert len({o["uid"] for o in outs}) == 3
