"""The class report written out: static HTML pages, CSV and JSON (``python -m cnnlib.grading
report``).

One folder (``report/`` by default) holding

- ``index.html``: the overview, one row per assignment (graded, mean and median score, the
  most frequent mistake, flagged students, similar pairs), linking to
- ``<assignment>.html``: the score distribution of each exercise (a matplotlib figure), the
  named mistakes with the share of the graded class that made each and the hint the
  students read, the flagged students and why, the slowest exercises, the pairs of similar
  answers side by side;
- ``report.json``: all of it as data; ``exercises.csv``, ``mistakes.csv``, ``flagged.csv``,
  ``similarity.csv``, ``scores.csv``: the tables.

Every page stands alone: figures are embedded PNGs and the style is inline, so the folder
can be opened from disk or mailed, with no server and nothing fetched. Student text (hints
are ours, but flags quote file names and answer cells are the students') is HTML-escaped by
Jinja2's autoescape; no script is written.
"""

from __future__ import annotations

import base64
import csv
import io
import json
from pathlib import Path

from jinja2 import Environment

from cnnlib.grading.class_report import AssignmentReport, ClassReport, pair_summary

__all__ = ["MAX_PAIRS_SHOWN", "write_report"]

MAX_PAIRS_SHOWN = 10  # side-by-side views per page (the most similar); all in similarity.csv
SLOWEST_SHOWN = 10

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 72em; color: #222; }
h1, h2, h3 { font-weight: 600; } table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #f2f2f2; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.bar { background: #c0392b; height: 0.8em; display: inline-block; }
.pair { display: grid; grid-template-columns: 1fr 1fr; gap: 1em; margin-bottom: 2em; }
pre { background: #f8f8f8; padding: 0.6em; overflow-x: auto; font-size: 0.85em; }
mark { background: #ffe08a; } .muted { color: #777; } img { max-width: 100%; }
"""

INDEX = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Class report: {{ course }}</title>
<style>{{ style }}</style></head><body>
<h1>Class report</h1>
<p class="muted">Course {{ course }} &middot; made {{ made_at }} in {{ "%.1f"|format(seconds) }} s
from the grading ledger and the trusted grader's verdicts.</p>
<table id="overview">
<tr><th>assignment</th><th>students</th><th>graded</th><th>not gradable</th>
<th>not submitted</th><th>mean</th><th>median</th><th>most frequent mistake</th>
<th>flagged</th><th>similar pairs</th></tr>
{% for a in assignments %}
<tr><td><a href="{{ a.page }}">{{ a.name }}</a></td><td class="num">{{ a.students }}</td>
<td class="num">{{ a.graded }}</td><td class="num">{{ a.failed }}</td>
<td class="num">{{ a.not_submitted }}</td>
<td class="num">{{ a.mean }}</td><td class="num">{{ a.median }}</td>
<td>{{ a.top_mistake }}</td><td class="num">{{ a.flagged }}</td>
<td class="num">{{ a.pair_count }}</td></tr>
{% endfor %}
</table>
{% if figure %}<h2>Scores per assignment</h2>
<img id="overview-figure" alt="score distribution of every assignment" src="{{ figure }}">
{% endif %}
<p class="muted">Data: report.json, exercises.csv, mistakes.csv, flagged.csv,
similarity.csv, scores.csv.</p>
</body></html>
"""

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ a.name }}: class report</title>
<style>{{ style }}</style></head><body>
<p><a href="index.html">&larr; all assignments</a></p>
<h1>{{ a.name }}</h1>
<p>{{ a.students }} students: {{ a.graded }} graded, {{ a.failed }} not gradable,
{{ a.not_submitted }} not submitted. Mean score {{ a.mean }} of {{ a.max_score }},
median {{ a.median }}.</p>

<h2>Scores per exercise</h2>
{% if a.figure %}<img id="score-figure" alt="score distribution per exercise"
 src="{{ a.figure }}">{% endif %}
<table id="exercises">
<tr><th>exercise</th><th>points</th><th>mean</th><th>full marks</th><th>zero</th>
<th>not answered</th><th>wrong answers' relative error (median)</th>
<th>median test time</th></tr>
{% for e in a.exercises %}
<tr><td>{{ e.name }}</td><td class="num">{{ e.points }}</td><td class="num">{{ e.mean }}</td>
<td class="num">{{ e.full }}</td><td class="num">{{ e.zero }}</td>
<td class="num">{{ e.unanswered }}</td><td class="num">{{ e.rel }}</td>
<td class="num">{{ e.seconds }}</td></tr>
{% endfor %}
</table>

<h2>What the class got wrong</h2>
{% if a.mistakes %}
{% if a.mistake_figure %}<img id="mistake-figure" alt="share of the class per mistake"
 src="{{ a.mistake_figure }}">{% endif %}
<table id="mistakes">
<tr><th>exercise</th><th>mistake</th><th>students</th><th>share of the graded class</th>
<th>what the hint told them</th></tr>
{% for m in a.mistakes %}
<tr><td>{{ m.exercise }}</td><td>{{ m.hint }}</td><td class="num">{{ m.count }}</td>
<td class="num"><span class="bar" style="width: {{ m.width }}em"></span> {{ m.share }}</td>
<td>{{ m.text }}</td></tr>
{% endfor %}
</table>
{% else %}<p id="mistakes">No wrong answers among the graded submissions.</p>{% endif %}

<h2>Flagged submissions</h2>
{% if a.flags %}
<table id="flagged"><tr><th>student</th><th>why</th><th>details</th></tr>
{% for f in a.flags %}<tr><td>{{ f.student }}</td><td>{{ f.kind }}</td>
<td>{{ f.reason }}</td></tr>{% endfor %}
</table>
{% else %}<p id="flagged">Nothing flagged.</p>{% endif %}

<h2>Slowest exercises</h2>
<table id="slowest"><tr><th>exercise</th><th>median seconds</th><th>slowest student</th>
<th>seconds</th></tr>
{% for s in a.slowest %}<tr><td>{{ s.exercise }}</td><td class="num">{{ s.median }}</td>
<td>{{ s.student }}</td><td class="num">{{ s.max }}</td></tr>{% endfor %}
</table>

<h2>Similar answers</h2>
<p class="muted">Answer cells compared across the class with copydetect (identifiers and
layout ignored, the released starter code left out). A pair here is evidence for a person
to look at, never a verdict: short exercises have few ways to be right.</p>
{% if a.pairs %}
<table id="similar"><tr><th>student</th><th>student</th><th>similarity</th>
<th>of the first's answer</th><th>of the second's</th></tr>
{% for p in a.pairs %}<tr><td>{{ p.student_a }}</td><td>{{ p.student_b }}</td>
<td class="num">{{ p.score }}</td><td class="num">{{ p.sim_a }}</td>
<td class="num">{{ p.sim_b }}</td></tr>{% endfor %}
</table>
{% if a.more_pairs %}<p>{{ a.more_pairs }} more pairs in similarity.csv.</p>{% endif %}
{% for p in a.shown %}
<h3>{{ p.student_a }} and {{ p.student_b }} ({{ p.score }})</h3>
<div class="pair"><div><pre>{{ p.html_a }}</pre></div><div><pre>{{ p.html_b }}</pre></div></div>
{% endfor %}
{% else %}<p id="similar">No pair above the threshold.</p>{% endif %}
{% if a.skipped %}<p class="muted">Not compared: {% for s, why in a.skipped.items() %}{{ s }}
({{ why }}){% if not loop.last %}, {% endif %}{% endfor %}.</p>{% endif %}
</body></html>
"""


def _png(fig) -> str:
    """A matplotlib figure as a data: URI (the page then needs no other file)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def score_figure(a: AssignmentReport) -> str | None:
    """One small bar chart per exercise: how many graded students got each score."""
    if not a.exercises or not a.graded:
        return None
    plt = _plt()
    from matplotlib.ticker import MaxNLocator

    cols = min(4, len(a.exercises))
    rows = -(-len(a.exercises) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.4 * rows), squeeze=False)
    for ax, ex in zip(axes.flat, a.exercises, strict=False):
        values = sorted(set(ex.scores.values()) | {0.0, ex.max_points})
        counts = [sum(1 for s in ex.scores.values() if s == v) for v in values]
        ax.bar([f"{v:g}" for v in values], counts, color="#2e86c1")
        ax.set_title(ex.name, fontsize=9)
        ax.set_xlabel(f"points (of {ex.max_points:g})", fontsize=8)
        ax.set_ylabel("students", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # students come whole
    for ax in list(axes.flat)[len(a.exercises):]:
        ax.axis("off")
    fig.tight_layout()
    uri = _png(fig)
    plt.close(fig)
    return uri


def mistake_figure(a: AssignmentReport, top: int = 12) -> str | None:
    """The most frequent mistakes as horizontal bars: share of the graded class."""
    shown = a.mistakes[:top]
    if not shown:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(shown) + 0.8))
    labels = [f"{m.exercise}: {m.hint}" for m in shown][::-1]
    ax.barh(labels, [100 * m.share for m in shown][::-1], color="#c0392b")
    ax.set_xlabel("% of the graded class")
    ax.set_xlim(0, 100)
    ax.tick_params(labelsize=8)
    fig.tight_layout()
    uri = _png(fig)
    plt.close(fig)
    return uri


def overview_figure(report: ClassReport) -> str | None:
    """Each assignment's scores (as % of its maximum) side by side, as box plots."""
    data = [(a.name, [100 * a.scores[s] / a.max_score for s in a.graded
                      if a.scores.get(s) is not None and a.max_score])
            for a in report.assignments]
    data = [(n, v) for n, v in data if v]
    if not data:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(4, 1.3 * len(data)), 3))
    ax.boxplot([v for _, v in data])
    ax.set_xticks(range(1, len(data) + 1), [n for n, _ in data], rotation=30, ha="right",
                  fontsize=8)
    ax.set_ylabel("score, % of maximum")
    ax.set_ylim(-5, 105)
    fig.tight_layout()
    uri = _png(fig)
    plt.close(fig)
    return uri


def _fmt(x) -> str:
    return "-" if x is None else f"{x:.3g}" if isinstance(x, float) else str(x)


def _page_of(name: str) -> str:
    return f"{name}.html"


def _assignment_view(a: AssignmentReport, figures: bool) -> dict:
    slowest = []
    for ex in sorted(a.exercises, key=lambda e: -e.median_seconds)[:SLOWEST_SHOWN]:
        if not ex.seconds:
            continue
        slowest.append({"exercise": ex.name, "median": f"{ex.median_seconds:.2f}",
                        "max": f"{ex.max_seconds:.2f}", "student": ex.slowest_student})
    pairs = [dict(pair_summary(p), score=f"{p.score:.0%}", sim_a=f"{p.similarity_a:.0%}",
                  sim_b=f"{p.similarity_b:.0%}") for p in a.similar]
    shown = [{"student_a": p.student_a, "student_b": p.student_b, "score": f"{p.score:.0%}",
              "html_a": _markup(p.highlighted_html("a")),
              "html_b": _markup(p.highlighted_html("b"))}
             for p in a.similar[:MAX_PAIRS_SHOWN]]
    top = a.mistakes[0] if a.mistakes else None
    return {
        "name": a.name, "page": _page_of(a.name), "students": len(a.statuses),
        "graded": len(a.graded), "failed": a.count("autograde_failed"),
        "not_submitted": a.count("not_submitted"), "max_score": f"{a.max_score:g}",
        "mean": _fmt(a.mean_score), "median": _fmt(a.median_score),
        "top_mistake": f"{top.exercise}: {top.hint} ({top.share:.0%})" if top else "-",
        "flagged": len(a.flagged_students()),
        "exercises": [{"name": e.name, "points": f"{e.max_points:g}", "mean": f"{e.mean:.2f}",
                       "full": e.full_marks, "zero": e.zero,
                       "unanswered": len(e.not_answered),
                       "rel": "-" if e.wrong_median_rel_error is None
                       else f"{e.wrong_median_rel_error:.2g}",
                       "seconds": f"{e.median_seconds:.2f} s"} for e in a.exercises],
        "mistakes": [{"exercise": m.exercise, "hint": m.hint, "count": len(m.students),
                      "share": f"{m.share:.0%}", "width": round(8 * m.share, 2),
                      "text": m.text} for m in a.mistakes],
        "flags": a.flags, "slowest": slowest, "pairs": pairs[:200], "shown": shown,
        "more_pairs": max(0, len(pairs) - 200), "pair_count": len(pairs),
        "skipped": a.similarity_skipped,
        "figure": score_figure(a) if figures else None,
        "mistake_figure": mistake_figure(a) if figures else None,
    }


def _markup(html_text: str):
    """Already-escaped HTML from similarity.Pair.highlighted_html, passed through as is."""
    from markupsafe import Markup

    return Markup(html_text)  # noqa: S704 - every piece was escaped by similarity.py


def _write_csv(path: Path, header: list[str], rows) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def write_tables(report: ClassReport, out: Path) -> None:
    """report.json and the CSV tables."""
    (out / "report.json").write_text(json.dumps(report.as_dict(), indent=1, sort_keys=True),
                                     encoding="utf-8")
    _write_csv(out / "exercises.csv",
               ["assignment", "exercise", "max_points", "graded", "mean", "full_marks", "zero",
                "not_answered", "wrong_median_rel_error", "median_seconds", "max_seconds"],
               [(a.name, e.name, f"{e.max_points:g}", len(e.scores), round(e.mean, 4),
                 e.full_marks, e.zero, len(e.not_answered),
                 "" if e.wrong_median_rel_error is None else f"{e.wrong_median_rel_error:.3g}",
                 round(e.median_seconds, 4),
                 round(e.max_seconds, 4))
                for a in report.assignments for e in a.exercises])
    _write_csv(out / "mistakes.csv",
               ["assignment", "exercise", "mistake", "students", "share", "student_ids",
                "hint"],
               [(a.name, m.exercise, m.hint, len(m.students), round(m.share, 4),
                 " ".join(m.students), m.text) for a in report.assignments for m in a.mistakes])
    _write_csv(out / "flagged.csv", ["assignment", "student_id", "why", "details"],
               [(a.name, f.student, f.kind, f.reason) for a in report.assignments
                for f in a.flags])
    _write_csv(out / "similarity.csv",
               ["assignment", "student_a", "student_b", "score", "similarity_a",
                "similarity_b", "overlap_tokens"],
               [(a.name, *pair_summary(p).values()) for a in report.assignments
                for p in a.similar])
    _write_csv(out / "scores.csv", ["assignment", "student_id", "status", "score", "max_score"],
               [(a.name, s, a.statuses[s], "" if a.scores.get(s) is None else
                 f"{a.scores[s]:g}", f"{a.max_score:g}") for a in report.assignments
                for s in sorted(a.statuses)])


def write_report(report: ClassReport, out, figures: bool = True) -> Path:
    """Write the pages and tables of ``report`` into the folder ``out``; returns index.html."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    env = Environment(autoescape=True)
    views = [_assignment_view(a, figures) for a in report.assignments]
    for view in views:
        html = env.from_string(PAGE).render(a=view, style=STYLE)
        (out / view["page"]).write_text(html, encoding="utf-8")
    index = out / "index.html"
    index.write_text(env.from_string(INDEX).render(
        assignments=views, course=report.root.name, made_at=report.made_at,
        seconds=report.seconds, style=STYLE,
        figure=overview_figure(report) if figures else None), encoding="utf-8")
    write_tables(report, out)
    return index
