"""`python -m cnnlib reproduce` as a person watches it: a line per recipe and per epoch, each
finished row saved to --out at once, --resume, and Ctrl-C (a real SIGINT) keeping the rows
saved and printing the command that runs the rest. Quick runs (--quick: 1 epoch, 1,000
images) on the offline digits, numpy engines (--no-fast) unless a test is about Numba."""

import os
import re
import shlex
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import cnnlib.reproduce as rep
from cnnlib.__main__ import _reproduce_command, build_parser, main
from cnnlib.reproduce import EpochReport, TableFile, load_dataset, run_recipe, run_tutorial_loop

QUICK = ["reproduce", "--quick", "--no-fast"]
EPOCH_LINE = re.compile(
    r"^   (?P<name>[\w-]+) epoch (?P<i>\d+)/(?P<n>\d+): loss \d+\.\d{4}, train acc [01]\.\d{4}"
    r"(?P<val>, val acc [01]\.\d{4})?, elapsed \d+:\d\d, ETA \d+:\d\d$")


def _table(text):
    return [line for line in text.splitlines() if line.startswith("|")]


def test_a_line_per_recipe_start_epoch_and_end_and_quiet_keeps_only_the_table(
        capsys, monkeypatch, tmp_path):
    monkeypatch.setitem(rep.PLAN, "tutorial-1k", (3, 3, 2))  # two quick epochs each
    monkeypatch.setitem(rep.PLAN, "network3", (20, 2, 2))
    assert main([*QUICK, "--only", "tutorial-1k", "--only", "network3"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "-- [1/2] tutorial-1k: 2 epoch(s)" in out and "-- [2/2] network3: 2 epoch(s)" in out
    epochs = [m for m in map(EPOCH_LINE.match, out) if m]
    assert [(m["name"], m["i"], m["n"]) for m in epochs] == [
        ("tutorial-1k", "1", "2"), ("tutorial-1k", "2", "2"),
        ("network3", "1", "2"), ("network3", "2", "2")]
    assert [bool(m["val"]) for m in epochs] == [False, False, True, True]  # network3 holds out
    done = [line for line in out if " done: test accuracy " in line]
    assert [line.split()[0] for line in done] == ["tutorial-1k", "network3"]
    assert out.index(done[0]) < out.index("-- [2/2] network3: 2 epoch(s)")
    assert len(_table("\n".join(out))) == 4

    assert main([*QUICK, "--only", "tutorial-1k", "--quiet"]) == 0
    quiet = capsys.readouterr()
    assert quiet.out.splitlines() == _table(quiet.out) and len(_table(quiet.out)) == 3
    assert quiet.err == ""


def test_the_epoch_reports_change_nothing_and_match_the_histories():
    ds = load_dataset(limit=200, test_limit=100, verbose=False)
    reports = []
    loop = run_tutorial_loop(ds, n_train=150, n_test=100, epochs=2, verbose=False,
                             on_epoch=reports.append)
    plain = run_tutorial_loop(ds, n_train=150, n_test=100, epochs=2, verbose=False)
    assert loop.test_accuracy == plain.test_accuracy and loop.test_loss == plain.test_loss
    assert [(r.epoch, r.epochs) for r in reports] == [(1, 2), (2, 2)]
    assert np.allclose([r.loss for r in reports], plain.history.epoch_loss)
    assert np.allclose([r.train_accuracy for r in reports], plain.history.epoch_accuracy)

    reports.clear()
    solved = run_recipe("network3", ds, epochs=2, fast=False, verbose=False,
                        on_epoch=reports.append)
    solver = solved.history
    assert reports == [EpochReport(i + 1, 2, solver.epoch_loss_history[i],
                                   solver.train_acc_history[i], solver.val_acc_history[i])
                       for i in range(2)]
    assert solved.test_accuracy == run_recipe("network3", ds, epochs=2, fast=False,
                                              verbose=False).test_accuracy


def test_the_fused_tutorial_net_trained_epoch_by_epoch_is_the_one_call_run():
    pytest.importorskip("numba")
    from cnnlib.fast import TutorialNet
    from cnnlib.tutorial.network import tutorial_layers

    ds = load_dataset(limit=300, test_limit=100, verbose=False)
    reports = []
    res = run_recipe("tutorial", ds, epochs=2, fast=True, verbose=False,
                     on_epoch=reports.append)
    net = TutorialNet.from_tutorial(*tutorial_layers(0), dtype=np.float32)
    hist = net.fit(ds.train_images, ds.train_labels, epochs=2, lr=rep.RECIPES["tutorial"].lr,
                   rng=0, progress=False)
    assert [r.epoch for r in reports] == [1, 2]
    assert np.allclose([r.loss for r in reports], hist.epoch_loss)
    assert res.test_accuracy == net.evaluate(ds.test_images, ds.test_labels)["accuracy"]


def test_out_keeps_the_rows_there_appends_new_ones_and_resume_skips_them(capsys, tmp_path):
    out = tmp_path / "table.md"
    assert main([*QUICK, "--only", "tutorial-1k", "--out", str(out), "--quiet"]) == 0
    first = _table(capsys.readouterr().out)
    assert out.read_text().splitlines() == first and len(first) == 3
    out.write_text(out.read_text().rstrip("\n"))  # a file ending without a newline

    assert main([*QUICK, "--only", "tutorial-1k,threelayer", "--out", str(out),
                 "--resume"]) == 0
    run = capsys.readouterr().out
    assert f"-- tutorial-1k (MNIST): already in {out}, skipped (--resume)" in run
    assert "-- [1/1] threelayer: 1 epoch(s)" in run and "-- [1/1] tutorial-1k" not in run
    table = _table(run)
    assert table[:3] == first and [row.split()[1] for row in table[2:]] == [
        "tutorial-1k", "threelayer"]
    assert out.read_text().splitlines() == table  # header once, one line per row

    # everything there: nothing runs, the table is printed again
    assert main([*QUICK, "--only", "threelayer", "--out", str(out), "--resume"]) == 0
    again = capsys.readouterr().out
    assert "nothing to run" in again and _table(again) == table
    # without --resume a row is run again and added after the kept ones
    assert main([*QUICK, "--only", "tutorial-1k", "--out", str(out)]) == 0
    more = capsys.readouterr().out
    assert "already has rows for tutorial-1k" in more
    assert [row.split()[1] for row in _table(more)[2:]] == [
        "tutorial-1k", "threelayer", "tutorial-1k"]


def test_a_file_that_is_not_a_reproduce_table_is_refused_untouched(tmp_path, capsys):
    notes = tmp_path / "notes.md"
    notes.write_text("# my notes\n\nnot a table\n")
    assert main([*QUICK, "--only", "tutorial-1k", "--out", str(notes), "--quiet"]) == 1
    assert "is not a table" in capsys.readouterr().err
    assert notes.read_text() == "# my notes\n\nnot a table\n"
    with pytest.raises(SystemExit) as info:
        main(["reproduce", "--resume"])  # --resume needs the table it reads
    assert info.value.code == 2 and "--resume needs --out" in capsys.readouterr().err


def test_the_resume_command_parses_back_to_the_same_run():
    parser = build_parser()
    argv = ["reproduce", "--quick", "--only", "tutorial-1k", "--only", "lenet5,network3",
            "--out", "my table.md", "--data", "both", "--seed", "3", "--no-fast", "--quiet"]
    args = parser.parse_args(argv)
    command = shlex.split(_reproduce_command(args, args.subparser, resume=True))
    assert command[1:4] == ["-m", "cnnlib", "reproduce"]
    again = parser.parse_args(command[3:])
    expected = dict(vars(args), only=["tutorial-1k,lenet5,network3"], resume=True)
    assert {k: v for k, v in vars(again).items() if k != "subparser"} == \
        {k: v for k, v in expected.items() if k != "subparser"}


def test_ctrl_c_without_out_prints_the_finished_rows_and_an_only_command(monkeypatch, capsys):
    real = rep.run_recipe

    def run(recipe, *args, **kwargs):
        if recipe.name == "threelayer":
            raise KeyboardInterrupt
        return real(recipe, *args, **kwargs)

    monkeypatch.setattr(rep, "run_recipe", run)
    assert main([*QUICK, "--only", "tutorial-1k,threelayer,network3", "--quiet"]) == 130
    got = capsys.readouterr()
    assert [row.split()[1] for row in _table(got.out)[2:]] == ["tutorial-1k"]
    err = got.err.splitlines()
    assert err[0].startswith("interrupted during threelayer: 1 row(s) finished")
    command = err[1].removeprefix("to run the rest: ")
    assert shlex.split(command)[3:] == ["reproduce", "--quick", "--only", "threelayer,network3",
                                        "--no-fast", "--quiet"]


def test_a_real_sigint_keeps_the_saved_rows_and_the_printed_command_runs_the_rest(tmp_path):
    out = tmp_path / "table.md"
    env = dict(os.environ, CNNLIB_OFFLINE="1")
    names = ["tutorial-1k", "threelayer", "network3"]
    cmd = [sys.executable, "-m", "cnnlib", *QUICK, "--only", ",".join(names), "--out", str(out)]
    # SIGINT may be ignored in a background job's children: give this one the default action
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=tmp_path,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while not (out.exists() and len(_table(out.read_text())) >= 3):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, (stdout, stderr)
    assert "Traceback" not in stderr
    saved = [row.split()[1] for row in _table(out.read_text())[2:]]
    assert saved and saved == names[:len(saved)] and len(saved) < len(names)
    err = stderr.strip().splitlines()
    assert re.match(rf"interrupted during {names[len(saved)]}: {re.escape(str(out))} keeps "
                    rf"{len(saved)} row\(s\): {', '.join(saved)}$", err[-2]), err
    assert err[-1].startswith("to run the rest: ")
    resume = shlex.split(err[-1].removeprefix("to run the rest: "))
    assert resume[-1] == "--resume" and resume[0] in ("python", sys.executable)
    resume[0] = sys.executable
    rest = subprocess.run(resume, capture_output=True, text=True, env=env, cwd=tmp_path,
                          timeout=180)
    assert rest.returncode == 0, rest.stderr
    table = _table(out.read_text())
    assert [row.split()[1] for row in table[2:]] == names  # each recipe once, in order
    assert _table(rest.stdout) == table


def test_a_table_file_written_in_chinese_is_read_back_and_a_torn_row_is_named(tmp_path):
    from cnnlib.i18n import using

    ds = load_dataset(limit=200, test_limit=100, verbose=False)
    path = tmp_path / "zh.md"
    with using("zh"):
        row = dict(recipe="lenet5", dataset="mnist", reported=0.987, reported_setting=None,
                   ours=0.5, best_epoch=None, data=ds.short(), epochs=1, engine="numpy",
                   seconds=1.0)
        TableFile(path).append(row)
        text = path.read_text(encoding="utf-8")
        assert text.startswith("| 训练方案 |") and "MNIST 子集" in text
    assert TableFile(path).done() == {("mnist", "lenet5"): "1"}
    with path.open("a", encoding="utf-8") as fh:
        fh.write("| network3 | 98.47% | 12")  # what a kill during a write could leave
    with pytest.raises(rep.DataError, match="line 4 is not a row"):
        TableFile(path)


def test_jobs_trains_recipes_in_parallel_processes_with_the_same_rows(capfd, tmp_path):
    capsys = capfd  # the workers print to the inherited file descriptor
    out = tmp_path / "table.md"
    names = ["tutorial-1k", "threelayer", "network3"]
    assert main([*QUICK, "--only", ",".join(names), "--quiet"]) == 0
    serial = _table(capsys.readouterr().out)
    assert main([*QUICK, "--only", ",".join(names), "--out", str(out), "--jobs", "2"]) == 0
    run = capsys.readouterr().out
    assert "-- 3 recipes on 2 processes, one thread each, the longest first" in run
    # each worker prints its recipes' start, epoch and end lines
    assert sorted(m["name"] for m in map(EPOCH_LINE.match, run.splitlines()) if m) == \
        sorted(names)
    table = _table(run)
    assert [row.split()[1] for row in table[2:]] == names  # printed in --only's order
    saved = _table(out.read_text())
    assert sorted(saved[2:]) == sorted(table[2:])  # saved as they finished, each once

    def cells(rows):  # recipe, reported, ours, data, epochs, engine (not the wall time)
        return [row.split("|")[1:7] for row in rows[2:]]

    assert cells(table) == cells(serial)  # one thread per process: the very same results
    with pytest.raises(SystemExit) as info:
        main([*QUICK, "--jobs", "0"])
    assert info.value.code == 2 and "--jobs must be 1 or more" in capsys.readouterr().err


def test_a_real_sigint_stops_every_job_and_the_rest_runs_with_the_same_jobs(tmp_path):
    out = tmp_path / "table.md"
    env = dict(os.environ, CNNLIB_OFFLINE="1")
    names = ["tutorial-1k", "network3", "threelayer", "lenet5"]
    cmd = [sys.executable, "-m", "cnnlib", *QUICK, "--only", ",".join(names), "--out", str(out),
           "--jobs", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=tmp_path, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while not (out.exists() and len(_table(out.read_text())) >= 3):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the whole group, workers too
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, (stdout, stderr)
    assert "Traceback" not in stderr
    saved = [row.split()[1] for row in _table(out.read_text())[2:]]
    assert saved and len(saved) < len(names) and len(set(saved)) == len(saved)
    err = stderr.strip().splitlines()
    assert re.match(rf"interrupted during [\w-]+: {re.escape(str(out))} keeps "
                    rf"{len(saved)} row\(s\): {', '.join(saved)}$", err[-2]), err
    resume = shlex.split(err[-1].removeprefix("to run the rest: "))
    assert resume[-3:] == ["--jobs", "2", "--resume"]
    resume[0] = sys.executable
    rest = subprocess.run(resume, capture_output=True, text=True, env=env, cwd=tmp_path,
                          timeout=180)
    assert rest.returncode == 0, rest.stderr
    assert sorted(row.split()[1] for row in _table(out.read_text())[2:]) == sorted(names)
