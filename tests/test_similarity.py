"""cnnlib.grading.similarity: answer cells compared across a class (copydetect).

Plain unit tests on strings and a tiny course folder made in tmp_path; nothing is graded.
The answers are independent implementations of the max-pool backward exercise
(03-maxpool-backprop: first_max_index, maxpool2_backprop, maxpool_backprop) in different
styles, and planted copies of two of them.
"""

from __future__ import annotations

import html
import re

import numpy as np
import pytest

from cnnlib.grading import import_nbformat, similarity
from cnnlib.grading.course import GradingError
from cnnlib.grading.similarity import (
    MIN_TOKENS,
    THRESHOLD,
    answer_code,
    check_course,
    class_answers,
    similar_pairs,
    starter_code,
)

nbformat = import_nbformat()  # without its slow optional import (see cnnlib.grading)

ASSIGNMENT = "03-maxpool-backprop"
EXERCISES = ("first_max_index", "maxpool2_backprop", "maxpool_backprop")
SIGNATURES = {
    "first_max_index":
        'def first_max_index(window):\n'
        '    """window (kh, kw) -> (i, j) of its first maximum in row-major order."""\n',
    "maxpool2_backprop":
        'def maxpool2_backprop(d_L_d_out, last_input):\n'
        '    """d_L_d_out (h // 2, w // 2, f), last_input (h, w, f) -> d_L_d_input (h, w, f)."""\n',
    "maxpool_backprop":
        'def maxpool_backprop(d_L_d_out, last_input, pool_size, stride):\n'
        '    """Any square window and stride (windows may overlap) -> d_L_d_input (h, w, f)."""\n',
}
STARTER_BODY = "    # YOUR CODE HERE\n    raise NotImplementedError()\n"

# --- independent answers, one style each ----------------------------------------------------

# nested for loops, the window cut and its maximum found in two helper functions
LOOPS = {
    "first_max_index": """\
    best = int(np.argmax(window))
    row, col = divmod(best, window.shape[1])
    return row, col
""",
    "maxpool2_backprop": """\
    grad = np.zeros(last_input.shape)
    out_h, out_w, n_filters = d_L_d_out.shape
    for r in range(out_h):
        for c in range(out_w):
            for k in range(n_filters):
                patch = last_input[2 * r:2 * r + 2, 2 * c:2 * c + 2, k]
                a, b = first_max_index(patch)
                grad[2 * r + a, 2 * c + b, k] = d_L_d_out[r, c, k]
    return grad
""",
    "maxpool_backprop": """\
    grad = np.zeros(last_input.shape)
    out_h, out_w, n_filters = d_L_d_out.shape
    for r in range(out_h):
        for c in range(out_w):
            for k in range(n_filters):
                a, b, top, left = locate_max(last_input, r, c, k, pool_size, stride)
                grad[top + a, left + b, k] += d_L_d_out[r, c, k]
    return grad


def window_at(x, r, c, k, size, step):
    top, left = r * step, c * step
    return x[top:top + size, left:left + size, k], top, left


def locate_max(x, r, c, k, size, step):
    patch, top, left = window_at(x, r, c, k, size, step)
    a, b = first_max_index(patch)
    return a, b, top, left
""",
}

# while loops throughout, the maximum found by a scan
WHILE = {
    "first_max_index": """\
    n_rows, n_cols = window.shape
    bi = bj = 0
    i = 0
    while i < n_rows:
        j = 0
        while j < n_cols:
            if window[i, j] > window[bi, bj]:
                bi, bj = i, j
            j += 1
        i += 1
    return bi, bj
""",
    "maxpool2_backprop": """\
    h, w, depth = last_input.shape
    result = np.zeros((h, w, depth))
    ch = 0
    while ch < depth:
        y = 0
        while y + 2 <= h:
            x = 0
            while x + 2 <= w:
                dy, dx = first_max_index(last_input[y:y + 2, x:x + 2, ch])
                result[y + dy, x + dx, ch] = d_L_d_out[y // 2, x // 2, ch]
                x += 2
            y += 2
        ch += 1
    return result
""",
    "maxpool_backprop": """\
    rows_out, cols_out, depth = d_L_d_out.shape
    result = np.zeros_like(last_input, dtype=np.float64)
    ch = 0
    while ch < depth:
        p = 0
        while p < rows_out:
            q = 0
            while q < cols_out:
                y, x = p * stride, q * stride
                dy, dx = first_max_index(last_input[y:y + pool_size, x:x + pool_size, ch])
                result[y + dy, x + dx, ch] = result[y + dy, x + dx, ch] + d_L_d_out[p, q, ch]
                q += 1
            p += 1
        ch += 1
    return result
""",
}

# vectorised: blocks by reshape, windows by sliding_window_view, gradients put by np.add.at
ADD_AT = {
    "first_max_index": """\
    flat = window.ravel()
    where = int(np.flatnonzero(flat == flat.max())[0])
    return where // window.shape[1], where % window.shape[1]
""",
    "maxpool2_backprop": """\
    hh, ww, nf = d_L_d_out.shape
    blocks = last_input[:2 * hh, :2 * ww].reshape(hh, 2, ww, 2, nf)
    blocks = blocks.transpose(0, 2, 4, 1, 3).reshape(hh, ww, nf, 4)
    winner = blocks.argmax(axis=-1)
    ys = 2 * np.arange(hh)[:, None, None] + winner // 2
    xs = 2 * np.arange(ww)[None, :, None] + winner % 2
    zs = np.broadcast_to(np.arange(nf), winner.shape)
    out = np.zeros(last_input.shape)
    out[ys, xs, zs] = d_L_d_out
    return out
""",
    "maxpool_backprop": """\
    from numpy.lib.stride_tricks import sliding_window_view

    hh, ww, nf = d_L_d_out.shape
    views = sliding_window_view(last_input, (pool_size, pool_size), axis=(0, 1))
    views = views[::stride, ::stride][:hh, :ww].reshape(hh, ww, nf, -1)
    winner = views.argmax(axis=-1)
    ys = stride * np.arange(hh)[:, None, None] + winner // pool_size
    xs = stride * np.arange(ww)[None, :, None] + winner % pool_size
    zs = np.broadcast_to(np.arange(nf), winner.shape)
    out = np.zeros(last_input.shape)
    np.add.at(out, (ys, xs, zs), d_L_d_out)
    return out
""",
}

# one helper for both: every channel of a window at once, a one-hot mask spread by einsum
EINSUM = {
    "first_max_index": """\
    return tuple(int(v) for v in np.unravel_index(window.argmax(), window.shape))
""",
    "maxpool2_backprop": """\
    return maxpool_any(d_L_d_out, last_input, 2, 2)


def maxpool_any(d_out, x, size, step):
    n_out_r, n_out_c, channels = d_out.shape
    eye = np.eye(size * size)
    dx = np.zeros(x.shape)
    for a in range(n_out_r):
        for b in range(n_out_c):
            rows = slice(a * step, a * step + size)
            cols = slice(b * step, b * step + size)
            onehot = eye[x[rows, cols].reshape(-1, channels).argmax(axis=0)]
            spread = np.einsum("cs,c->sc", onehot, d_out[a, b])
            dx[rows, cols] += spread.reshape(size, size, channels)
    return dx
""",
    "maxpool_backprop": """\
    return maxpool_any(d_L_d_out, last_input, pool_size, stride)
""",
}

# channel loop outermost, the first maximum picked by np.argwhere
ARGWHERE = {
    "first_max_index": """\
    hits = np.argwhere(window == np.max(window))
    return int(hits[0][0]), int(hits[0][1])
""",
    "maxpool2_backprop": """\
    d_in = np.zeros_like(last_input, dtype=float)
    for f in range(last_input.shape[2]):
        for i in range(0, last_input.shape[0] - 1, 2):
            for j in range(0, last_input.shape[1] - 1, 2):
                sub = last_input[i:i + 2, j:j + 2, f]
                u, v = first_max_index(sub)
                d_in[i + u, j + v, f] = d_L_d_out[i // 2, j // 2, f]
    return d_in
""",
    "maxpool_backprop": """\
    n_i, n_j, n_f = d_L_d_out.shape
    d_in = np.zeros_like(last_input, dtype=float)
    for f in range(n_f):
        for i in range(n_i):
            for j in range(n_j):
                r0, c0 = i * stride, j * stride
                sub = last_input[r0:r0 + pool_size, c0:c0 + pool_size, f]
                u, v = first_max_index(sub)
                d_in[r0 + u, c0 + v, f] += d_L_d_out[i, j, f]
    return d_in
""",
}

# the plainest loops, np.unravel_index inline: what many students will write
PLAIN = {
    "first_max_index": """\
    i, j = np.unravel_index(np.argmax(window), window.shape)
    return int(i), int(j)
""",
    "maxpool2_backprop": """\
    d_input = np.zeros(last_input.shape)
    for i in range(d_L_d_out.shape[0]):
        for j in range(d_L_d_out.shape[1]):
            for f in range(d_L_d_out.shape[2]):
                window = last_input[i * 2:i * 2 + 2, j * 2:j * 2 + 2, f]
                u, v = np.unravel_index(np.argmax(window), window.shape)
                d_input[i * 2 + u, j * 2 + v, f] = d_L_d_out[i, j, f]
    return d_input
""",
    "maxpool_backprop": """\
    d_input = np.zeros(last_input.shape)
    for i in range(d_L_d_out.shape[0]):
        for j in range(d_L_d_out.shape[1]):
            for f in range(d_L_d_out.shape[2]):
                window = last_input[i * stride:i * stride + pool_size,
                                    j * stride:j * stride + pool_size, f]
                u, v = np.unravel_index(np.argmax(window), window.shape)
                d_input[i * stride + u, j * stride + v, f] += d_L_d_out[i, j, f]
    return d_input
""",
}

# --- planted copies -------------------------------------------------------------------------

# LOOPS with every name changed, independent statements swapped (the shape line and the
# zeros line, the two offsets) and its two helper functions defined in the other order
COPY_OF_LOOPS = {
    "first_max_index": """\
    m = int(np.argmax(window))
    i, j = divmod(m, window.shape[1])
    return i, j
""",
    "maxpool2_backprop": """\
    H, W, F = d_L_d_out.shape
    dx = np.zeros(last_input.shape)
    for y in range(H):
        for x in range(W):
            for ch in range(F):
                win = last_input[2 * y:2 * y + 2, 2 * x:2 * x + 2, ch]
                p, q = first_max_index(win)
                dx[2 * y + p, 2 * x + q, ch] = d_L_d_out[y, x, ch]
    return dx
""",
    "maxpool_backprop": """\
    H, W, F = d_L_d_out.shape
    dx = np.zeros(last_input.shape)
    for y in range(H):
        for x in range(W):
            for ch in range(F):
                p, q, row0, col0 = find_peak(last_input, y, x, ch, pool_size, stride)
                dx[row0 + p, col0 + q, ch] += d_L_d_out[y, x, ch]
    return dx


def find_peak(img, y, x, ch, n, s):
    win, row0, col0 = cut(img, y, x, ch, n, s)
    p, q = first_max_index(win)
    return p, q, row0, col0


def cut(img, y, x, ch, n, s):
    col0, row0 = x * s, y * s
    return img[row0:row0 + n, col0:col0 + n, ch], row0, col0
""",
}

# PLAIN disguised harder: renamed, loops nested in another order, zeros_like, short aliases
COPY_OF_PLAIN = {
    "first_max_index": """\
    r, c = np.unravel_index(np.argmax(window), window.shape)
    return int(r), int(c)
""",
    "maxpool2_backprop": """\
    out = np.zeros_like(last_input, dtype=float)
    for ch in range(d_L_d_out.shape[2]):
        for r in range(d_L_d_out.shape[0]):
            for c in range(d_L_d_out.shape[1]):
                win = last_input[r * 2:r * 2 + 2, c * 2:c * 2 + 2, ch]
                a, b = np.unravel_index(np.argmax(win), win.shape)
                out[r * 2 + a, c * 2 + b, ch] = d_L_d_out[r, c, ch]
    return out
""",
    "maxpool_backprop": """\
    s, p = stride, pool_size
    out = np.zeros_like(last_input, dtype=float)
    for ch in range(d_L_d_out.shape[2]):
        for r in range(d_L_d_out.shape[0]):
            for c in range(d_L_d_out.shape[1]):
                win = last_input[r * s:r * s + p, c * s:c * s + p, ch]
                a, b = np.unravel_index(np.argmax(win), win.shape)
                out[r * s + a, c * s + b, ch] += d_L_d_out[r, c, ch]
    return out
""",
}

INDEPENDENT = {"loops": LOOPS, "while": WHILE, "add_at": ADD_AT, "einsum": EINSUM,
               "argwhere": ARGWHERE, "plain": PLAIN}
NBGRADER = {"grade": False, "locked": False, "schema_version": 3}


def notebook(bodies: dict[str, str] | None = None):
    """The exercise notebook as a student hands it in: `bodies` {grade_id: code below the
    signature} (the starter's `raise NotImplementedError()` for the others), with the
    notebook's other cells (imports, tests, prose), which are no answer."""
    bodies = bodies or {}
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_markdown_cell("# Max-pool backward"))
    nb.cells.append(nbformat.v4.new_code_cell(
        "import numpy as np", metadata={"nbgrader": {**NBGRADER, "locked": True,
                                                     "solution": False, "grade_id": "imports"}}))
    for gid in EXERCISES:
        nb.cells.append(nbformat.v4.new_code_cell(
            SIGNATURES[gid] + bodies.get(gid, STARTER_BODY),
            metadata={"nbgrader": {**NBGRADER, "solution": True, "grade_id": gid}}))
        nb.cells.append(nbformat.v4.new_code_cell(
            f"assert {gid} is not None", metadata={"nbgrader": {
                **NBGRADER, "grade": True, "locked": True, "solution": False,
                "grade_id": f"test_{gid}", "points": 1}}))
    return nb


def answer(bodies: dict[str, str] | None = None) -> str:
    return answer_code(notebook(bodies))


STARTER = answer()


def names(pairs) -> set[frozenset[str]]:
    return {frozenset((p.student_a, p.student_b)) for p in pairs}


def own_lines(code: str) -> set[str]:
    """The lines of an answer that are not blank and not lines of the starter."""
    return {line.strip() for line in code.splitlines()} - {line.strip() for line in
                                                            STARTER.splitlines()} - {""}


def run(code: str, name: str):
    namespace = {"np": np}
    exec(code, namespace)
    return namespace[name]


# --- the answers themselves -----------------------------------------------------------------

def test_answers_are_real_solutions():
    """Every answer here solves the exercise (checked against a direct loop), so the tests
    compare realistic work, not made-up text."""
    def reference(d, x, size, step):
        out = np.zeros(x.shape)
        for i in range(d.shape[0]):
            for j in range(d.shape[1]):
                for f in range(d.shape[2]):
                    w = x[i * step:i * step + size, j * step:j * step + size, f]
                    u, v = np.unravel_index(np.argmax(w), w.shape)
                    out[i * step + u, j * step + v, f] += d[i, j, f]
        return out

    rng = np.random.default_rng(3)
    x = rng.integers(0, 4, size=(6, 8, 3)).astype(float)  # ties: the first maximum wins
    d2, d3 = rng.normal(size=(3, 4, 3)), rng.normal(size=(2, 3, 3))
    for style in [*INDEPENDENT.values(), COPY_OF_LOOPS, COPY_OF_PLAIN]:
        code = answer(style)
        assert run(code, "first_max_index")(np.array([[1, 5, 5], [5, 0, 2.0]])) == (0, 1)
        np.testing.assert_allclose(run(code, "maxpool2_backprop")(d2, x),
                                   reference(d2, x, 2, 2))
        np.testing.assert_allclose(run(code, "maxpool_backprop")(d3, x, 3, 2),
                                   reference(d3, x, 3, 2))


def test_answer_code_joins_answer_cells_in_order_under_their_grade_ids():
    code = answer(LOOPS)
    heads = re.findall(r"^# --- (.*)$", code, flags=re.M)
    assert heads == list(EXERCISES)
    assert "import numpy" not in code and "assert " not in code  # not answer cells
    assert "def window_at(" in code and "raise NotImplementedError" not in code
    assert STARTER.count("raise NotImplementedError()") == len(EXERCISES)  # the same cells
    nb = notebook(LOOPS)
    nb.cells[2].metadata.nbgrader.grade_id = "first\nimport os"  # a student edited the id
    assert answer_code(nb).startswith("# --- first import os\n")


# --- what is found and what is not ----------------------------------------------------------

def test_planted_copies_found_and_independent_answers_not():
    answers = {name: answer(style) for name, style in INDEPENDENT.items()}
    answers["copy_of_loops"] = answer(COPY_OF_LOOPS)
    answers["copy_of_plain"] = answer(COPY_OF_PLAIN)
    # the copy is not the same text: names, statement order and helper order all differ
    assert answers["copy_of_loops"].index("def find_peak") \
        < answers["copy_of_loops"].index("def cut")
    assert answers["loops"].index("def window_at") < answers["loops"].index("def locate_max")
    assert own_lines(answers["copy_of_loops"]).isdisjoint(own_lines(answers["loops"]))

    pairs = similar_pairs(answers, STARTER, assignment=ASSIGNMENT)
    assert names(pairs) == {frozenset(("loops", "copy_of_loops")),
                            frozenset(("plain", "copy_of_plain"))}
    for p in pairs:
        assert p.score >= 0.8 > THRESHOLD
        assert p.score == max(p.similarity_a, p.similarity_b)
        assert p.assignment == ASSIGNMENT and p.overlap_tokens > MIN_TOKENS
        assert p.code_a == answers[p.student_a] and p.code_b == answers[p.student_b]
        assert p.slices_a and p.slices_b
    assert [p.score for p in pairs] == sorted((p.score for p in pairs), reverse=True)

    # independent styles stay clear of the threshold, not just under it
    everything = similar_pairs({n: answers[n] for n in INDEPENDENT}, STARTER, threshold=0.0)
    assert max(p.score for p in everything) < THRESHOLD - 0.1


def test_short_answer_copied_whole_into_a_long_one_shows():
    """score is the larger similarity: one exercise copied into a complete answer counts
    fully for the short side, however much else the long one has."""
    short = answer({"maxpool2_backprop": LOOPS["maxpool2_backprop"]})
    pairs = similar_pairs({"short": short, "long": answer(COPY_OF_LOOPS),
                           "other": answer(ADD_AT)}, STARTER)
    assert names(pairs) == {frozenset(("short", "long"))}
    (p,) = pairs
    sim = {p.student_a: p.similarity_a, p.student_b: p.similarity_b}
    assert sim["short"] >= 0.8 and sim["long"] < THRESHOLD


def test_blank_and_starter_only_submissions_never_paired():
    untouched = STARTER + "# I ran out of time\n"
    reformatted = answer({gid: "    # YOUR CODE HERE\n\n    raise  NotImplementedError( )\n"
                          for gid in EXERCISES})  # the starter, spaced differently
    tiny = answer({"first_max_index": PLAIN["first_max_index"]})  # too little own code
    answers = {"blank1": untouched, "blank2": STARTER, "blank3": reformatted,
               "empty1": "", "empty2": "# --- first_max_index\n",
               "tiny1": tiny, "tiny2": tiny,
               "loops": answer(LOOPS), "add_at": answer(ADD_AT)}
    assert all({p.student_a, p.student_b} == {"loops", "add_at"}
               for p in similar_pairs(answers, STARTER, threshold=0.0))
    assert similar_pairs(answers, STARTER) == []
    # a submission identical to the starter is not "copied from" the starter either
    assert similar_pairs({"starter": STARTER, "blank": STARTER, "loops": answer(LOOPS)},
                         STARTER, threshold=0.0) == []


def test_code_in_most_answers_is_the_class_idiom_not_a_copy():
    """A k-gram more than COMMON_MIN answers share (here one cell all twelve wrote the same)
    is nobody's own: only the pair that also shares its own code is reported."""
    def own(i: int) -> str:  # code that differs from everyone else's every few tokens
        return "".join(f"    t{j} = np.full(({i}, {j}), {i * 31 + j}) * {j * 7 + i} + {i}\n"
                       for j in range(6)) + "    return t0\n"

    answers = {f"s{i:02d}": answer({"first_max_index": own(i),
                                    "maxpool2_backprop": PLAIN["maxpool2_backprop"],
                                    "maxpool_backprop": PLAIN["maxpool_backprop"]})
               for i in range(12)}
    answers["s12"] = answers["s11"]
    assert len(similar_pairs(answers, STARTER, common=None)) == 13 * 12 // 2
    pairs = similar_pairs(answers, STARTER)
    assert names(pairs) == {frozenset(("s11", "s12"))}
    (p,) = pairs
    marked = "".join(p.code_a[s:e] for s, e in p.slices_a)
    assert "np.full" in marked and "np.unravel_index" not in marked  # common code unmarked


def test_prefilter_changes_nothing(monkeypatch):
    """Pairs are scored from set intersections first; compare_files for every pair gives
    the same result."""
    answers = {name: answer(style) for name, style in INDEPENDENT.items()}
    answers["copy_of_loops"] = answer(COPY_OF_LOOPS)
    answers["half"] = answer({"maxpool_backprop": ARGWHERE["maxpool_backprop"],
                              "maxpool2_backprop": ARGWHERE["maxpool2_backprop"]})
    fast = similar_pairs(answers, STARTER, threshold=0.2)
    monkeypatch.setattr(similarity, "_score", lambda *args: 1.0)
    slow = similar_pairs(answers, STARTER, threshold=0.2)
    assert len(fast) >= 3
    assert [(p.student_a, p.student_b, p.score) for p in fast] == \
        [(p.student_a, p.student_b, p.score) for p in slow]


def test_starter_kgrams_removed_but_repeated_own_code_kept():
    """copydetect 0.5.0's own boilerplate removal (np.intersect1d(assume_unique=True)) also
    drops k-grams the student repeats; ours drops exactly the starter's."""
    # first_max_index left as the starter has it; the two loop nests repeat phrases
    code = answer({gid: ARGWHERE[gid] for gid in EXERCISES[1:]})
    full = similarity._fingerprint(code, similarity.K, similarity.WINDOW)
    boiler = frozenset(similarity._fingerprint(STARTER, similarity.K, similarity.WINDOW).hashes)
    assert any(len(idx) > 1 for idx in full.hash_idx.values())
    kept = similarity._fingerprint(code, similarity.K, similarity.WINDOW, boiler)
    assert kept.hashes == full.hashes - boiler
    assert all(list(kept.hash_idx[h]) == list(full.hash_idx[h]) for h in kept.hashes)
    assert kept.token_coverage < full.token_coverage


# --- the side-by-side view ------------------------------------------------------------------

def test_html_escapes_student_code_and_marks_copied_spans():
    nasty = dict(LOOPS, first_max_index=(
        '    label = "</pre><script>alert(1)</script>" if window.size < 2 else "&"\n'
        + LOOPS["first_max_index"]))
    answers = {"a": answer(nasty), "b": answer(dict(COPY_OF_LOOPS,
                                                    first_max_index=nasty["first_max_index"]))}
    (p,) = similar_pairs(answers, STARTER)
    for which, code, spans in (("a", p.code_a, p.slices_a), ("b", p.code_b, p.slices_b)):
        out = p.highlighted_html(which)
        assert "<script>" not in out and "</pre>" not in out
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in out
        assert re.sub(r"</?mark>", "", out) == html.escape(code)
        marked = [html.unescape(m) for m in re.findall(r"<mark>(.*?)</mark>", out, flags=re.S)]
        assert marked == [code[s:e] for s, e in spans]
        assert any("<script>" in m for m in marked)  # the copied line, escaped inside <mark>
        assert all(0 <= s < e <= len(code) for s, e in spans)
    with pytest.raises(ValueError):
        p.highlighted_html("alice")


# --- a tiny course folder -------------------------------------------------------------------

def test_class_answers_and_check_course_on_a_tiny_course(tmp_path):
    def write(path, nb):
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, path)

    nbname = f"{ASSIGNMENT}.ipynb"
    write(tmp_path / "notebooks" / ASSIGNMENT / nbname, notebook())
    graded = tmp_path / "autograded"
    write(graded / "alice" / ASSIGNMENT / nbname, notebook(LOOPS))
    write(graded / "bob" / ASSIGNMENT / nbname, notebook(COPY_OF_LOOPS))
    write(graded / "carol" / ASSIGNMENT / nbname, notebook(ADD_AT))
    # a second notebook of the same assignment: read too, after the first by name
    extra = nbformat.v4.new_notebook()
    extra.cells.append(nbformat.v4.new_code_cell(
        "def extra():\n    return 1\n",
        metadata={"nbgrader": {**NBGRADER, "solution": True, "grade_id": "zz_extra"}}))
    write(graded / "carol" / ASSIGNMENT / "zz-more.ipynb", extra)
    # truncated in transfer: not JSON
    text = (graded / "alice" / ASSIGNMENT / nbname).read_text()
    (graded / "dave" / ASSIGNMENT).mkdir(parents=True)
    (graded / "dave" / ASSIGNMENT / nbname).write_text(text[: len(text) // 2])
    # a link to a classmate's notebook is not read (it would be a perfect "copy")
    (graded / "erin" / ASSIGNMENT).mkdir(parents=True)
    (graded / "erin" / ASSIGNMENT / nbname).symlink_to(graded / "alice" / ASSIGNMENT / nbname)
    (graded / "frank" / "another-assignment").mkdir(parents=True)  # not in this assignment

    answers, skipped = class_answers(tmp_path, ASSIGNMENT)
    assert sorted(answers) == ["alice", "bob", "carol"]
    assert sorted(skipped) == ["dave", "erin"]
    assert nbname in skipped["dave"] and "JSON" in skipped["dave"]
    assert "symbolic link" in skipped["erin"]
    assert answers["alice"] == answer(LOOPS)
    assert answers["carol"] == answer(ADD_AT) + "# --- zz_extra\ndef extra():\n    return 1\n"
    assert starter_code(tmp_path, ASSIGNMENT) == STARTER
    assert class_answers(tmp_path, ASSIGNMENT, folder="submitted") == ({}, {})

    result = check_course(tmp_path, [ASSIGNMENT])
    assert names(result.pairs[ASSIGNMENT]) == {frozenset(("alice", "bob"))}
    assert result.skipped[ASSIGNMENT] == skipped
    assert result.seconds > 0
    with pytest.raises(GradingError, match="released notebook"):
        check_course(tmp_path, ["04-conv-backprop"])
