"""nbgrader configuration for the cnn-from-scratch course.

nbgrader reads this file from the current directory, so run nbgrader (and
`python -m cnnlib.grading ...`) from the repository root. Layout (nbgrader's names -> ours):

    source    -> solutions/<assignment>/<notebook>.ipynb   instructor versions (nbgrader markup)
    release   -> notebooks/<assignment>/<notebook>.ipynb   student versions, generated only
    submitted -> submitted/<student>/<assignment>/...       collected work (gitignored)
    autograded, feedback, gradebook.db                      grading state (gitignored)

See docs/instructors.md for the whole workflow.
"""

import os

from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
from nbgrader.preprocessors import GetGrades

from cnnlib.grading.redaction import (
    ClearHiddenTestsInTestCells,
    RedactGraderDetails,
    RedactHiddenTestOutputs,
    SanitizeStudentHTML,
)

c = get_config()  # noqa: F821  (provided by traitlets when it executes this file)

_here = os.path.dirname(os.path.abspath(__file__))

# --- course layout ---------------------------------------------------------------------------
# The course id names the course in the gradebook and in the JupyterHub exchange.
c.CourseDirectory.course_id = "cnn-from-scratch"
c.CourseDirectory.root = _here
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "notebooks"
c.CourseDirectory.submitted_directory = "submitted"
c.CourseDirectory.autograded_directory = "autograded"
c.CourseDirectory.feedback_directory = "feedback"
# The gradebook lives beside this file (gitignored), whatever the current directory is.
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(_here, "gradebook.db")
# Files beside a source notebook are copied to students, to autograded/ and to feedback/:
# keep caches, checkpoints, scratch output and data files out of all of them.
c.CourseDirectory.ignore = [
    ".ipynb_checkpoints",
    "__pycache__",
    "*.pyc",
    "feedback",
    "*.npz",
    "*.npy",
    "*.pkl",
    "*-ubyte",
    "*-ubyte.gz",
    "*.bak",
    "*.orig",
    "*~",
    ".DS_Store",
]

# --- executing notebooks (autograde, validate) -----------------------------------------------
# Per cell, in seconds. Test cells run < 2 s and training cells shrink while NBGRADER_EXECUTION
# is set, so a correct cell never needs more than a few seconds; 60 s leaves a wide margin for a
# slow but honest answer while an infinite loop costs at most one minute per cell.
c.Execute.timeout = 60
c.ExecutePreprocessor.timeout = 60
# An interrupted infinite loop scores that cell 0 and the run goes on with the next cell.
c.Execute.interrupt_on_timeout = True

# --- autograding -----------------------------------------------------------------------------
# A test cell the student deleted (or whose metadata they stripped) is put back and graded,
# instead of leaving the notebook waiting for manual grading.
c.OverwriteCells.add_missing_cells = True

# --- feedback --------------------------------------------------------------------------------
# nbgrader's feedback shows every cell's source and outputs. Hidden tests must stay hidden:
# first redact outputs of hidden-test cells that could quote hidden lines (tracebacks, echoed
# source), then drop the hidden regions from the test cells' sources (only the instructor's
# test cells: marker text in a student's comment is the student's). The grader's paths and
# environment values are replaced by placeholders, and everything a student could have
# written (their markdown, every output) goes through nbconvert's HTML sanitiser: no student
# <script> runs in a feedback page.
c.GenerateFeedback.preprocessors = [
    GetGrades,
    RedactHiddenTestOutputs,
    ClearHiddenTestsInTestCells,
    RedactGraderDetails,
    SanitizeStudentHTML,
    CSSHTMLHeaderPreprocessor,
]
c.RedactGraderDetails.course_root = _here
c.SanitizeStudentHTML.solutions_directory = os.path.join(_here, "solutions")
# The template's own switch: HTML outputs cleaned, JavaScript and widget outputs not emitted.
# (nbgrader's feedback template renders markdown cells without it: SanitizeStudentHTML.)
c.HTMLExporter.sanitize_html = True

# --- who decides the points ------------------------------------------------------------------
# nbgrader's own Execute step runs the tests in the student's kernel, which can forge them
# (hooks, patched checks, swallowed errors). TrustedGrade (cnnlib/grading/trusted.py) runs the
# student's cells in a bubblewrap sandbox and every grade cell here, in the grader's process,
# calling the student's functions in the sandbox; the other steps are nbgrader's, in its order.
from nbconvert.preprocessors import ClearMetadataPreprocessor  # noqa: E402
from nbgrader.preprocessors import (  # noqa: E402
    AssignLatePenalties,
    CheckCellMetadata,
    IgnorePattern,
    LimitOutput,
    SaveAutoGrades,
)

from cnnlib.grading.trusted import TrustedGrade  # noqa: E402

c.Autograde.autograde_preprocessors = [
    TrustedGrade,
    IgnorePattern,
    ClearMetadataPreprocessor,
    LimitOutput,
    SaveAutoGrades,
    AssignLatePenalties,
    CheckCellMetadata,
]
# The same per-cell limit as nbgrader's Execute above, for the student's cells.
c.TrustedGrade.cell_timeout = 60
