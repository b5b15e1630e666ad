"""`python -m cnnlib`: argument errors (exit 2), real train runs, reproduce, delegation."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest

from cnnlib.__main__ import main
from cnnlib.data import load_mnist
from cnnlib.data.idx import write_idx
from cnnlib.training import load_model

ACCURACY_LINE = re.compile(r"^Test Accuracy: (0\.\d{4}|1\.0000)$")


@pytest.mark.parametrize("argv", [
    [],
    ["frobnicate"],
    ["train"],
    ["train", "--model", "vgg16"],
    ["train", "--model", "tutorial", "--epochs", "0"],
    ["train", "--model", "tutorial", "--epochs", "three"],
    ["train", "--model", "tutorial", "--limit", "-5"],
    ["train", "--model", "tutorial", "--lr", "-0.1"],
    ["train", "--model", "tutorial", "--data", "cifar10"],
    ["train", "--model", "tutorial", "--data-dir", "/no/such/folder"],
    ["train", "--model", "tutorial", "--test-dir", "/no/such/folder"],
    ["reproduce", "--data", "imagenet"],
    ["reproduce", "--only", "s1,alexnet"],
])
def test_bad_arguments_give_a_usage_error_and_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "usage:" in err and "error:" in err


def test_the_module_runs_and_its_last_line_is_the_test_accuracy():
    env = dict(os.environ, CNNLIB_OFFLINE="1")
    cmd = [sys.executable, "-m", "cnnlib", "train", "--model", "tutorial", "--epochs", "1",
           "--limit", "300", "--test-limit", "200", "--no-fast"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    match = ACCURACY_LINE.match(lines[-1])
    assert match, lines[-3:]
    assert float(match.group(1)) > 0.3  # 300 images, one epoch: well above chance (0.1)
    assert "Traceback" not in proc.stderr

    bad = subprocess.run([sys.executable, "-m", "cnnlib", "train", "--model", "nope"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert bad.returncode == 2 and "invalid choice: 'nope'" in bad.stderr


def test_train_scores_on_a_test_dir_and_saves_the_model(tmp_path, capsys):
    digits = load_mnist(verbose=False)
    test_dir = tmp_path / "official"
    test_dir.mkdir()
    images, labels = digits.test_images[:150], digits.test_labels[:150]
    write_idx(test_dir / "t10k-images-idx3-ubyte.gz", images)
    write_idx(test_dir / "t10k-labels-idx1-ubyte.gz", labels.astype(np.uint8))
    saved = tmp_path / "net.npz"
    code = main(["train", "--model", "network3", "--epochs", "2", "--limit", "200",
                 "--test-dir", str(test_dir), "--no-fast", "--quiet", "--save", str(saved)])
    assert code == 0
    out = capsys.readouterr().out.strip().splitlines()
    acc = float(ACCURACY_LINE.match(out[-1]).group(1))
    # The saved model scores exactly that on the IDX test files it was given.
    model = load_model(saved)
    assert "official test set" in model.metadata["data"] and "150" in model.metadata["data"]
    preds = model.predict(images[:, None] / 255.0).argmax(axis=1)
    assert round(float(np.mean(preds == labels)), 4) == acc


def test_fashion_without_data_is_an_error_not_a_crash(tmp_path, capsys, monkeypatch):
    # An empty data dir: the loader explains what is missing; the CLI exits 1 with it.
    empty = tmp_path / "empty"
    empty.mkdir()
    code = main(["train", "--model", "tutorial", "--data", "fashion", "--data-dir", str(empty),
                 "--quiet"])
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err


def test_reproduce_quick_prints_the_table(capsys, tmp_path):
    code = main(["reproduce", "--quick", "--only", "tutorial-1k,network3", "--no-fast",
                 "--quiet", "--out", str(tmp_path / "table.md")])
    assert code == 0
    out = capsys.readouterr().out
    table = [line for line in out.splitlines() if line.startswith("|")]
    assert table[0].startswith("| recipe | source: reported")
    assert len(table) == 4
    assert table[2].startswith("| tutorial-1k | 78.00%")
    assert table[3].startswith("| network3 | 98.47%")
    for row in table[2:]:
        assert re.search(r"\| \d+\.\d{2}% ", row) and re.search(r"\| \d+\.\d s \|$", row)
    assert (tmp_path / "table.md").read_text().splitlines() == table


@pytest.mark.parametrize("ours, theirs", [("generate", "generate"), ("grade", "autograde")])
def test_instructor_commands_delegate_to_cnnlib_grading(ours, theirs, capsys):
    with pytest.raises(SystemExit) as info:
        main([ours, "--help"])
    assert info.value.code == 0
    assert f"cnnlib.grading {theirs}" in capsys.readouterr().out


def test_compare_layer_engines_times_both_without_touching_the_model():
    from cnnlib import models
    from cnnlib.training.engine import compare_layer_engines

    model = models.network3(dropout=0.3, seed=0, dtype=np.float32)
    before = {k: v.copy() for k, v in model.params.items()}
    dropout = next(layer for layer in model.layers if type(layer).__name__ == "Dropout")
    rng_state = dropout.rng.bit_generator.state
    X = np.random.default_rng(0).random((10, 1, 28, 28), dtype=np.float32)
    use_fast, text = compare_layer_engines(model, X, np.arange(10), batch_size=10)
    assert isinstance(use_fast, bool)
    assert re.fullmatch(r"[\d.]+ vs [\d.]+ ms/batch", text)
    assert model.training  # mode restored
    assert dropout.rng.bit_generator.state == rng_state  # no dropout masks drawn
    for key, arr in model.params.items():
        assert np.array_equal(arr, before[key])
