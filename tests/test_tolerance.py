"""The tolerance policy (cnnlib/checks/tolerance.py): correct answers written another valid way
pass the visible check and the hidden tests; a near miss is reported with digits that differ.

The variants are the course's own solutions, computed in float32 (what a student who keeps
the MNIST pixels as float32 hands in), and cross-entropy written -log(p + 1e-7) as Deep
Learning from Scratch does. Each runs in a fresh Python (tests/known_wrong.run_isolated), as
the notebook's cells would: setup, the answer, then the check cell or the hidden-test cell.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from known_wrong import cell_source, run_isolated, setup_source, solution_source  # noqa: E402

from cnnlib.checks import check_conv_filter_gradient, tolerance  # noqa: E402

FLOAT32 = [("02-softmax-backprop", "d_out_d_t"), ("02-softmax-backprop", "chain_rule"),
           ("04-conv-backprop", "conv_filter_gradient"),
           ("04-conv-backprop", "conv_input_gradient")]


def in_float32(notebook: str, grade_id: str) -> str:
    """The solution, fed and answering float32 arrays."""
    return solution_source(notebook, grade_id) + f'''

_float64_{grade_id} = {grade_id}


def _f32(x):
    return x.astype(np.float32) if isinstance(x, np.ndarray) else x


def {grade_id}(*args):
    out = _float64_{grade_id}(*(_f32(a) for a in args))
    return tuple(map(_f32, out)) if isinstance(out, tuple) else _f32(out)
'''


VARIANTS = [(nb, gid, "float32", in_float32(nb, gid)) for nb, gid in FLOAT32] + [
    ("01-forward", "cross_entropy", "-log(p + 1e-7)",
     "def cross_entropy(probs, label):\n    return -np.log(probs[label] + 1e-7)\n"),
    ("01-forward", "cross_entropy", "-log(p + 1e-12)",
     "def cross_entropy(probs, label):\n    return -np.log(probs[label] + 1e-12)\n"),
]


def test_correct_variants_pass_visible_and_hidden_tests():
    jobs = []
    for nb, gid, _, source in VARIANTS:
        for test in ("check", "hidden"):
            jobs.append([setup_source(nb), source, cell_source(nb, f"{gid}-{test}")])
    results = run_isolated(jobs)
    failed = [f"{gid} ({how}), {'visible' if i % 2 == 0 else 'hidden'}: {res['error']}"
              for i, ((_, gid, how, _), res) in enumerate(
                  zip([v for v in VARIANTS for _ in range(2)], results, strict=True))
              if not res["ok"] or res["stderr"]]
    assert not failed, "\n".join(failed)


def test_a_float32_answer_that_is_really_wrong_still_fails():
    """float32's wider rule is no loophole: a mistake of one part in 10,000 fails."""
    def off(d_L_d_out, last_input):
        h, w, nf = d_L_d_out.shape
        out = np.zeros((nf, 3, 3), dtype=np.float32)
        for i in range(h):
            for j in range(w):
                for f in range(nf):
                    out[f] += d_L_d_out[i, j, f] * last_input[i:i + 3, j:j + 3]
        return (out * (1 + 1e-4)).astype(np.float32)

    result = check_conv_filter_gradient(off, raise_on_fail=False, verbose=False)
    assert not result.ok
    assert "float32 precision" in result.report()


@pytest.mark.parametrize("a, b", [(0.0242613, 0.02426130098), (2.11479, 2.1147901),
                                  (-5.67352, -5.673519), (1.0, 1.0 + 2e-16)])
def test_differing_values_are_printed_with_digits_that_differ(a, b):
    shown_a, shown_b = tolerance.digits(a, b)
    assert shown_a != shown_b
    assert float(shown_a) == pytest.approx(a, rel=1e-15, abs=0)


def test_float64_near_miss_names_the_rule_and_prints_distinct_values():
    def near(d_L_d_out, last_input):
        h, w, nf = d_L_d_out.shape
        out = np.zeros((nf, 3, 3))
        for i in range(h):
            for j in range(w):
                for f in range(nf):
                    out[f] += d_L_d_out[i, j, f] * last_input[i:i + 3, j:j + 3]
        return out * (1 + 5e-7)

    report = check_conv_filter_gradient(near, raise_on_fail=False, verbose=False).report()
    line = next(ln for ln in report.splitlines() if "yours" in ln)
    yours, expected = line.split("yours ")[1].split(", expected ")
    assert yours.strip() != expected.strip(), line
    assert "values must agree to 1e-07" in report
