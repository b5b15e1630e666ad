"""Answer cells compared across a class: which pairs of students handed in much the same code.

For one assignment, every student's answer cells (code cells nbgrader marks `solution`) are
joined into one text, fingerprinted once with copydetect, and compared pair by pair. A pair is
reported when enough of one student's own code is found in the other's; the report shows both
texts side by side with the shared spans marked.

The output is evidence for a person to judge, never a penalty: nothing here changes a grade.
Two students may write the same few lines independently (the exercise and its hints leave
little room), share a helper the course showed them, or have worked together as allowed. A
high score only says where to look.

How code is compared (copydetect: k-gram fingerprints, as in winnowing, Schleimer et al. 2003):

- Code is tokenized and filtered: every identifier becomes one letter (`V`, `F`), strings `S`;
  comments and whitespace go. Renamed variables and reformatted code compare equal.
  copydetect counts the characters of this filtered text as "tokens": an identifier counts 1,
  `for` 3, `(` 1; `x = np.zeros(a.shape)` is 10 tokens, `V=V.V(V.V)`.
- `k` (K = 25): shared code counts only in runs of at least k tokens (two or three short
  statements); a run that long counts in full. Reordering lines or helper functions loses
  only the pieces shorter than k between the cuts. A smaller k lets in the phrases every loop
  solution of an exercise needs (`for i in range(h): for j in range(w): ...`, the window
  slice): on the max-pool answers of tests/test_similarity.py the highest score between two
  independent complete answers was 0.62 at k = 12, 0.52 at 15, 0.38 at 20 and 25, 0.32 at
  30, while the planted copies (renamed, statements and helpers reordered, loops nested
  differently) scored 0.86-0.97 up to k = 25 and 0.86-0.91 beyond. 25 is the smallest k that
  keeps independent answers well apart (it is also copydetect's default); a larger one
  mostly loses copies edited every few lines.
- `window` (WINDOW = 1): winnowing keeps only the smallest hash of each `window` consecutive
  k-grams, to save memory on large corpora. Answers here are a few hundred tokens, so all are
  kept. That also makes scores repeatable: copydetect hashes with Python's `hash()`, salted
  per process, and with window 4 or 6 a pair's score moved by up to 0.06 from run to run.
- `threshold` (THRESHOLD = 0.6): a pair is reported when at least this fraction of one
  student's own tokens is found in the other's (`Pair.score`). Independent complete answers
  scored at most 0.47 in all trials, copies at least 0.86; in a class of 100 where each style
  was shared by some 15 students (so its phrases counted as common, below), copies still
  scored 0.74-0.81 and independent answers at most 0.22. The weak spot is a small class and a
  partial answer (one exercise of three done): there the forced phrases alone reached 0.59
  and 0.73 against independent loop answers, and such a pair can be reported.

What is no one's own code:

- the released starter code: its lines (signatures, docstrings, `# YOUR CODE HERE`,
  `raise NotImplementedError()`) are blanked in every answer before fingerprinting, and any
  starter k-gram left is dropped. Two students who handed in the untouched starter share
  nothing; neither do two answers at the seam between an answer and an untouched cell.
- the class's idiom: a k-gram more than COMMON_MIN answers (or COMMON_SHARE of the class)
  have, as MOSS's -m option does. It only acts in classes larger than COMMON_MIN.
- Answers with fewer than MIN_TOKENS own tokens left are not compared at all.

Student files are untrusted: a notebook that cannot be read is skipped and said why, the
report's HTML escapes every character of student code.
"""

from __future__ import annotations

import html
import io
import os
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

from copydetect import CodeFingerprint, compare_files
from copydetect.utils import get_token_coverage

from cnnlib.grading import import_nbformat
from cnnlib.grading.course import (
    MAX_NOTEBOOK_BYTES,
    RELEASE_DIR,
    GradingError,
    Refused,
    read_regular_file,
)

# before markup, below, imports nbformat: import_nbformat spares it a slow optional import
nbformat = import_nbformat()

from cnnlib.grading.markup import cell_source, grade_meta  # noqa: E402

# k, window and threshold: what they mean and why these values, in the module docstring
K = 25
WINDOW = 1
THRESHOLD = 0.6
# An answer with less own code than this (about eight short numpy statements, e.g. only the
# two-line `first_max_index` of the max-pool exercise) is not compared: there are only a
# few ways to write it, so a match says nothing, and `Pair.score` (the larger side) would
# report any tiny answer as "contained" in many longer ones.
MIN_TOKENS = 100
# A k-gram more than max(COMMON_MIN, COMMON_SHARE x class size) answers have is the class's
# idiom (the loop nest and window slice every loop solution needs), no one's own: as MOSS
# does with its -m option (default 10). A group larger than that sharing one text (a leaked
# solution copied by a dozen) is missed; `similar_pairs(common=None)` keeps everything.
COMMON_SHARE = 0.1
COMMON_MIN = 10

CELL_MARK = "# --- "


def answer_code(nb) -> str:
    """The answer cells of one notebook in cell order, each after a line `# --- <grade_id>`."""
    parts = []
    for cell in nb.cells:
        meta = grade_meta(cell)
        if cell.get("cell_type") != "code" or not isinstance(meta, dict) \
                or not meta.get("solution"):
            continue
        # one line whatever the notebook holds: a grade id is student-editable text
        gid = " ".join(str(meta.get("grade_id", "?")).split())
        src = cell_source(cell)
        end = "" if src.endswith("\n") else "\n"
        parts.append(f"{CELL_MARK}{gid}\n{src}{end}")
    return "".join(parts)


def _read_notebook(path: Path):
    """A notebook as nbformat reads it; never follows a link (a link to a classmate's
    notebook would be a perfect "copy"); raises on anything unreadable."""
    data = read_regular_file(path, path.name, MAX_NOTEBOOK_BYTES)
    if data is None:
        raise Refused(f"{path.name} is gone")
    if len(data) > MAX_NOTEBOOK_BYTES:
        raise Refused(f"{path.name} grew beyond {MAX_NOTEBOOK_BYTES} bytes while read")
    return nbformat.reads(data.decode("utf-8"), as_version=4)


def _why(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__


def _folder_code(folder: Path) -> tuple[list[str], list[str]]:
    """([answer code of each readable notebook in `folder`, by name], [why each unreadable
    one was skipped])."""
    code, problems = [], []
    for path in sorted(folder.glob("*.ipynb")):
        try:
            code.append(answer_code(_read_notebook(path)))
        # Student files are hostile input: whatever fails reading one is reported, and the
        # check goes on with the others.
        except Exception as exc:
            problems.append(f"{path.name}: {_why(exc)}")
    return code, problems


def class_answers(course_root: str | os.PathLike, assignment: str,
                  folder: str = "autograded") -> tuple[dict[str, str], dict[str, str]]:
    """({student: answer code}, {student: why notebooks were skipped}) for one assignment.

    Reads `<course_root>/<folder>/<student>/<assignment>/*.ipynb` (all notebooks, sorted by
    name, concatenated). A student with some unreadable notebooks is in both dicts; one with
    none readable (or none at all in the assignment folder) only in the second.
    """
    base = Path(course_root) / folder
    answers: dict[str, str] = {}
    skipped: dict[str, str] = {}
    students = sorted(p for p in base.iterdir() if p.is_dir()) if base.is_dir() else []
    for sdir in students:
        adir = sdir / assignment
        if adir.is_symlink() or not adir.is_dir():
            continue
        code, problems = _folder_code(adir)
        if code:
            answers[sdir.name] = "".join(code)
        if problems:
            skipped[sdir.name] = "; ".join(problems)
        elif not code:
            skipped[sdir.name] = f"no notebook in {folder}/{sdir.name}/{assignment}"
    return answers, skipped


def starter_code(course_root: str | os.PathLike, assignment: str) -> str:
    """The answer cells of the released notebooks (`notebooks/<assignment>/*.ipynb`): the
    starter code every student was given. Raises GradingError when there is none: without
    it the skeleton everyone was given would count as code two students share."""
    folder = Path(course_root) / RELEASE_DIR / assignment
    paths = sorted(folder.glob("*.ipynb"))
    if not paths:
        raise GradingError(f"no released notebook in {folder}: run `generate` first, the "
                           "similarity check needs the starter code students were given")
    return "".join(answer_code(nbformat.read(p, as_version=4)) for p in paths)


# --- comparing -----------------------------------------------------------------------------

def _spans(slices) -> tuple[tuple[int, int], ...]:
    """copydetect's 2xN [start, end) array as sorted, merged (start, end) pairs."""
    if len(slices) < 2 or len(slices[0]) == 0:
        return ()
    merged: list[list[int]] = []
    starts, ends = (int(v) for v in slices[0]), (int(v) for v in slices[1])
    for s, e in sorted(zip(starts, ends, strict=True)):
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    return tuple((s, e) for s, e in merged)


@dataclass
class Pair:
    """Two students' answers to one assignment with much code in common.

    similarity_a / similarity_b: the fraction (0..1) of each one's own tokens (the starter
    and the class's common phrases left out) found in the other's answer. score: the larger
    of the two, so a short answer copied whole into a longer one shows (the smaller would
    hide it under the copier's other code). overlap_tokens: a's tokens found in b.
    slices_a / slices_b: the shared spans, [start, end) offsets into code_a / code_b.
    """

    assignment: str
    student_a: str
    student_b: str
    similarity_a: float
    similarity_b: float
    score: float
    overlap_tokens: int
    code_a: str
    code_b: str
    slices_a: tuple[tuple[int, int], ...] = ()
    slices_b: tuple[tuple[int, int], ...] = ()

    def highlighted_html(self, which: str) -> str:
        """Student `which` ("a" or "b")'s code as HTML text for a <pre>: every character
        escaped, the shared spans inside <mark>...</mark>."""
        if which not in ("a", "b"):
            raise ValueError(f"which must be 'a' or 'b', not {which!r}")
        code, spans = (self.code_a, self.slices_a) if which == "a" else \
            (self.code_b, self.slices_b)
        out, pos = [], 0
        for start, end in spans:
            start, end = max(start, pos), min(end, len(code))
            if start >= end:
                continue
            out.append(html.escape(code[pos:start]))
            out.append(f"<mark>{html.escape(code[start:end])}</mark>")
            pos = end
        out.append(html.escape(code[pos:]))
        return "".join(out)


def _skeleton_lines(starter: str) -> set[str]:
    return {line.strip() for line in starter.split("\n") if line.strip()}


def _blank_starter_lines(code: str, skeleton: set[str]) -> str:
    """`code` with each line that is also a line of the starter turned into a comment of the
    same length (offsets into the text stay those of `code`).

    A line opening or closing a multi-line string is kept: blanking one end but not the
    other would turn the code after it into a string and hide it from the comparison.
    """
    lines = code.split("\n")
    for i, line in enumerate(lines):
        text = line.strip()
        if text in skeleton and line.count('"""') % 2 == 0 and line.count("'''") % 2 == 0:
            lines[i] = "#" + " " * (len(line) - 1)
    return "\n".join(lines)


def _fingerprint(code: str, k: int, window: int,
                 boilerplate: frozenset[int] = frozenset()) -> CodeFingerprint:
    """copydetect's fingerprint of `code`, the `boilerplate` k-grams taken out.

    Not by CodeFingerprint(boilerplate=...): copydetect 0.5.0 removes those with
    np.intersect1d(assume_unique=True) over a hash list that repeats wherever a phrase
    repeats, and so also forgets where a student's own repeated k-grams occur (those places
    then go unmarked and uncounted).
    """
    fp = CodeFingerprint("answer.py", k, window, fp=io.StringIO(code), language="python")
    return _drop(fp, boilerplate, k)


def _drop(fp: CodeFingerprint, hashes: frozenset[int], k: int) -> CodeFingerprint:
    """`fp` without the k-grams `hashes`, its token count (token_coverage) made anew."""
    if hashes and not fp.hashes.isdisjoint(hashes):
        fp.hash_idx = {h: idx for h, idx in fp.hash_idx.items() if h not in hashes}
        fp.hashes = set(fp.hash_idx)
        fp.token_coverage = get_token_coverage(fp.hash_idx, k, len(fp.filtered_code))
    return fp


def _common(fps: dict[str, CodeFingerprint], share: float) -> frozenset[int]:
    """The k-grams found in more than max(COMMON_MIN, share x class size) answers."""
    seen = Counter(h for fp in fps.values() for h in fp.hashes)
    limit = max(COMMON_MIN, share * len(fps))
    return frozenset(h for h, n in seen.items() if n > limit)


@dataclass
class _Print:
    fp: CodeFingerprint
    hashes: set[int]
    starts: dict[int, list[int]]  # each fingerprint: where its k-grams start (filtered code)
    tokens: float  # copydetect's token_coverage: own tokens that take part in comparing


def _overlap(p: _Print, shared: set[int], k: int) -> int:
    """How many of p's tokens lie in a k-gram the other answer has too: what compare_files
    counts (the union of those k-grams), found without building its arrays."""
    starts = sorted(i for h in shared for i in p.starts[h])
    return k + sum(min(k, b - a) for a, b in pairwise(starts))


def _score(a: _Print, b: _Print, k: int) -> float:
    """The pair's score (larger similarity), from a set intersection and a sort: cheap next
    to compare_files, which then runs only for the pairs reported."""
    shared = a.hashes & b.hashes
    if not shared:
        return 0.0
    return max(_overlap(a, shared, k) / a.tokens, _overlap(b, shared, k) / b.tokens)


def similar_pairs(answers: dict[str, str], starter: str = "", threshold: float = THRESHOLD,
                  assignment: str = "", k: int = K, window: int = WINDOW,
                  common: float | None = COMMON_SHARE) -> list[Pair]:
    """Every pair of students whose answers score at least `threshold`, highest first.

    `answers` maps student to answer code (`class_answers`), `starter` is the released
    starter code (`starter_code`): its lines and k-grams are no one's own, nor (unless
    `common` is None) a k-gram more than max(COMMON_MIN, common x class size) answers
    have. Answers with fewer than MIN_TOKENS own tokens left are not compared, so blank or
    starter-only submissions are never paired.
    """
    skeleton = _skeleton_lines(starter)
    boiler = frozenset(_fingerprint(starter, k, window).hashes) if starter.strip() \
        else frozenset()
    fps = {student: _fingerprint(_blank_starter_lines(answers[student], skeleton), k, window,
                                 boiler) for student in sorted(answers)}
    if common is not None:
        frequent = _common(fps, common)
        fps = {student: _drop(fp, frequent, k) for student, fp in fps.items()}
    prints: dict[str, _Print] = {}
    for student, fp in fps.items():
        if fp.token_coverage < MIN_TOKENS:
            continue
        starts = {int(h): [int(i) for i in idx] for h, idx in fp.hash_idx.items()}
        prints[student] = _Print(fp, set(starts), starts, float(fp.token_coverage))
    names = list(prints)
    pairs: list[Pair] = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            pa, pb = prints[a], prints[b]
            if _score(pa, pb, k) < threshold:
                continue
            overlap, (sim_a, sim_b), (slices_a, slices_b) = compare_files(pa.fp, pb.fp)
            sim_a, sim_b = min(float(sim_a), 1.0), min(float(sim_b), 1.0)
            score = max(sim_a, sim_b)
            if score < threshold:
                continue
            pairs.append(Pair(assignment, a, b, sim_a, sim_b, score, int(overlap),
                              answers[a], answers[b], _spans(slices_a), _spans(slices_b)))
    pairs.sort(key=lambda p: (-p.score, -p.overlap_tokens, p.student_a, p.student_b))
    return pairs


@dataclass
class SimilarityResult:
    """What `check_course` found: {assignment: pairs (highest score first)}, {assignment:
    {student: why skipped}}, and how long it took."""

    pairs: dict[str, list[Pair]] = field(default_factory=dict)
    skipped: dict[str, dict[str, str]] = field(default_factory=dict)
    seconds: float = 0.0


def check_course(course_root: str | os.PathLike, assignments: Sequence[str],
                 folder: str = "autograded", threshold: float = THRESHOLD,
                 common: float | None = COMMON_SHARE) -> SimilarityResult:
    """Similar pairs of every assignment in `assignments`, from `<course_root>/<folder>`
    (autograded/ after grading, submitted/ before), for the class report.

    Unreadable student notebooks are reported in `skipped`; an assignment without released
    notebooks (no starter code to leave out) raises GradingError.
    """
    start = time.perf_counter()
    result = SimilarityResult()
    for assignment in assignments:
        starter = starter_code(course_root, assignment)
        answers, skipped = class_answers(course_root, assignment, folder)
        result.pairs[assignment] = similar_pairs(answers, starter, threshold, assignment,
                                                 common=common)
        result.skipped[assignment] = skipped
    result.seconds = time.perf_counter() - start
    return result
