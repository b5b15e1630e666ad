"""The answer-key guard (cnnlib.checks.guard): every road to a guarded function trips while
armed, nothing changes while unarmed, and a replaced wrapper is put back and reported.

Each test builds its own small package on disk and its own AnswerKeyGuard, so the real
modules and the shared GUARD are not touched (except the one test on cnnlib.data).
"""

from __future__ import annotations

import importlib
import sys

import numpy as np
import pytest

from cnnlib.checks.guard import AnswerKeyGuard, AnswerKeyUsed, parse_spec, resolve

CORE = '''
def solve(x):
    """The answer key."""
    return 2 * x


def helper(x):
    return solve(x) + 1


class Layer:
    def backward(self, d):
        return 3 * d

    @staticmethod
    def shape(n):
        return (n, n)
'''


@pytest.fixture
def pkg(tmp_path, monkeypatch):
    """A fresh package ``akpkg_<n>`` with ``core`` (imported by the package) and ``later``
    (not imported until a test imports it); its name is returned."""
    name = f"akpkg_{tmp_path.name.replace('-', '_')}"
    root = tmp_path / name
    root.mkdir()
    (root / "__init__.py").write_text("from .core import Layer, solve\n")
    (root / "core.py").write_text(CORE)
    (root / "later.py").write_text("def shortcut(x):\n    return x - 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    importlib.import_module(name)
    yield name
    for mod in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        del sys.modules[mod]


@pytest.fixture
def guard():
    g = AnswerKeyGuard()
    yield g
    if g._finder in sys.meta_path:
        sys.meta_path.remove(g._finder)


def test_direct_call_trips_only_while_armed(pkg, guard):
    core = sys.modules[f"{pkg}.core"]
    spec = f"{pkg}.core:solve"
    assert guard.install([spec]) == [spec]
    assert core.solve(4) == 8 and core.helper(4) == 9        # unarmed: the original
    with guard.arm([spec]) as trips, pytest.raises(AnswerKeyUsed) as info:
        core.solve(4)
    assert trips == [spec] and guard.tripped == [spec]
    assert "solve" in str(info.value) and "numpy" in str(info.value)
    with guard.arm([spec]), pytest.raises(AnswerKeyUsed):
        core.helper(1)                                       # reached through another function
    assert core.solve(4) == 8                                # disarmed again


def test_nothing_trips_when_unarmed_or_armed_for_something_else(pkg, guard):
    core = sys.modules[f"{pkg}.core"]
    guard.install([f"{pkg}.core:solve", f"{pkg}.core:Layer.backward"])
    with guard.arm([f"{pkg}.core:Layer.backward"]) as trips:
        assert core.solve(1) == 2
    assert core.Layer().backward(2) == 6
    assert trips == [] and guard.tripped == []


def test_importlib_and_getattr_find_the_wrapper(pkg, guard):
    spec = f"{pkg}.core:solve"
    guard.install([spec])
    with guard.arm([spec]) as trips:
        fn = importlib.import_module(f"{pkg}.core").solve
        with pytest.raises(AnswerKeyUsed):
            fn(3)
    assert trips == [spec]


def test_re_exported_name_and_names_bound_before_install(pkg, guard):
    package = sys.modules[pkg]
    spec = f"{pkg}.core:solve"
    earlier = type(sys)("ak_student_cell")        # like a notebook's __main__: bound before
    earlier.solve = package.solve
    sys.modules["ak_student_cell"] = earlier
    try:
        guard.install([spec])
        assert package.solve is sys.modules[f"{pkg}.core"].solve      # the package's too
        with guard.arm([spec]) as trips:
            for fn in (package.solve, earlier.solve):
                with pytest.raises(AnswerKeyUsed):
                    fn(1)
        assert trips == [spec]
    finally:
        del sys.modules["ak_student_cell"]


def test_method_of_an_object_made_before_and_of_a_subclass(pkg, guard):
    core = sys.modules[f"{pkg}.core"]
    made_before = core.Layer()

    class Student(core.Layer):
        pass

    spec = f"{pkg}.core:Layer.backward"
    guard.install([spec])
    assert made_before.backward(1) == 3 and Student().backward(1) == 3
    with guard.arm([spec]) as trips:
        for obj in (made_before, Student()):
            with pytest.raises(AnswerKeyUsed):
                obj.backward(1)
    assert trips == [spec]
    # a static method keeps being one
    static = f"{pkg}.core:Layer.shape"
    guard.install([static])
    assert core.Layer.shape(2) == (2, 2) and core.Layer().shape(3) == (3, 3)
    with guard.arm([static]), pytest.raises(AnswerKeyUsed):
        core.Layer.shape(2)


def test_a_caught_trip_is_still_recorded(pkg, guard):
    core = sys.modules[f"{pkg}.core"]
    spec = f"{pkg}.core:solve"
    guard.install([spec])

    def sneaky(x):
        try:
            return core.solve(x)
        except Exception:
            return 2 * x

    with guard.arm([spec]) as trips:
        assert sneaky(5) == 10
    assert trips == [spec]


def test_call_returns_value_error_and_trips(pkg, guard):
    core = sys.modules[f"{pkg}.core"]
    spec = f"{pkg}.core:solve"
    guard.install([spec])
    assert guard.call([spec], lambda x: x + 1, 1) == (2, None, [])
    value, error, trips = guard.call([spec], core.helper, 1)
    assert value is None and isinstance(error, AnswerKeyUsed) and trips == [spec]
    assert guard.armed() == []


def test_module_imported_later_and_reloaded_is_wrapped(pkg, guard):
    spec = f"{pkg}.later:shortcut"
    guard.install([spec])                     # not imported yet: wrapped on import
    later = importlib.import_module(f"{pkg}.later")
    assert later.shortcut(3) == 2
    with guard.arm([spec]), pytest.raises(AnswerKeyUsed):
        later.shortcut(3)
    importlib.reload(later)                   # fresh function objects: wrapped again
    assert later.shortcut(3) == 2
    with guard.arm([spec]) as trips, pytest.raises(AnswerKeyUsed):
        later.shortcut(3)
    assert trips == [spec] and guard.tampered == []


def test_reinstall_puts_back_a_replaced_wrapper(pkg, guard):
    core = sys.modules[f"{pkg}.core"]
    spec, method = f"{pkg}.core:solve", f"{pkg}.core:Layer.backward"
    guard.install([spec, method])
    assert guard.reinstall() == []
    saved = core.solve.__closure__                    # the student digs out the original...
    original = next(c.cell_contents for c in saved if callable(c.cell_contents)
                    and getattr(c.cell_contents, "__name__", "") == "solve")
    core.solve = original                             # ...and puts it back in the module
    core.Layer.backward = lambda self, d: 3 * d       # and replaces the method
    assert sorted(guard.reinstall()) == sorted([spec, method])
    assert sorted(guard.tampered) == sorted([spec, method])
    with guard.arm([spec, method]) as trips:
        for call in (lambda: core.solve(1), lambda: core.Layer().backward(1)):
            with pytest.raises(AnswerKeyUsed):
                call()
    assert sorted(trips) == sorted([spec, method])
    # arm() repairs by itself
    core.solve = original
    with guard.arm([spec]), pytest.raises(AnswerKeyUsed):
        core.solve(1)


def test_the_original_reached_around_its_wrapper_trips(pkg, guard):
    core = sys.modules[f"{pkg}.core"]
    spec = f"{pkg}.core:solve"
    guard.install([spec])
    original = next(c.cell_contents for c in core.solve.__closure__
                    if getattr(c.cell_contents, "__name__", "") == "solve")
    copy = type(original)(original.__code__, {})           # even a copy of the function
    with guard.arm([spec]) as trips:
        assert original(2) == 4 and copy(3) == 6            # not stopped...
    assert trips == [spec]                                  # ...but recorded
    assert sys.getprofile() is None
    with guard.arm([f"{pkg}.core:Layer.backward"]) as other:
        assert original(2) == 4                             # not armed: no trip
    assert other == []


def test_install_is_idempotent(pkg, guard):
    core = sys.modules[f"{pkg}.core"]
    spec = f"{pkg}.core:solve"
    guard.install([spec])
    wrapper = core.solve
    assert guard.install([spec, spec]) == []
    assert core.solve is wrapper
    with guard.arm([spec]) as trips, pytest.raises(AnswerKeyUsed):
        core.solve(1)
    assert trips == [spec] and guard.tripped == [spec]     # one wrapper, one trip


def test_bad_specs_are_refused_clearly():
    for bad in ("cnnlib.layers.pool.MaxPool2D", "a:b:c", ":f", "m:", "m:a..b"):
        with pytest.raises(ValueError, match="module:attr.path"):
            parse_spec(bad)
    with pytest.raises(LookupError, match="nonexistent"):
        resolve("cnnlib.layers.pool:MaxPool2D.nonexistent")
    with pytest.raises(LookupError, match="cannot import"):
        resolve("cnnlib.no_such_module:f")


def test_a_re_exported_cnnlib_function(guard):
    """``cnnlib.data.preprocess`` is ``cnnlib.data.scaling.preprocess``: both trip."""
    import cnnlib.data
    import cnnlib.data.scaling

    spec = "cnnlib.data.scaling:preprocess"
    guard.install([spec])
    pixels = np.array([0, 255], dtype=np.uint8)
    assert np.allclose(cnnlib.data.preprocess(pixels), [-0.5, 0.5])
    with guard.arm([spec]) as trips:
        for fn in (cnnlib.data.preprocess, cnnlib.data.scaling.preprocess):
            with pytest.raises(AnswerKeyUsed):
                fn(pixels)
    assert trips == [spec]
    assert cnnlib.data.preprocess is cnnlib.data.scaling.preprocess


# -- the answer keys of the course's exercises ---------------------------------------------------

def _table():
    from cnnlib.checks.hidden import exercises

    return exercises()


def test_every_exercise_has_an_answer_key_or_a_reason():
    import inspect

    table = _table()
    assert len(table) == 31
    for name, (module, ex) in table.items():
        if ex.answer_key:
            continue
        source = inspect.getsource(module)
        row = source[source.index(f'Exercise("{name}"'):]
        row = row[:row.index("visible=")]
        assert "#" in row, f"{name}: an empty answer_key needs a comment in the table saying why"


def test_every_answer_key_spec_resolves():
    for name, (_, ex) in _table().items():
        assert len(set(ex.answer_key)) == len(ex.answer_key), f"{name}: a spec twice"
        for spec in ex.answer_key:
            target = resolve(spec)                       # imports the module if needed
            assert callable(getattr(target.value, "__func__", target.value)), spec


def test_every_reference_of_a_case_is_in_the_answer_key():
    """The checks' own reference answers have the exercise's signature: shut them too."""
    from functools import partial

    from cnnlib.checks.cases import Case

    for name, (_, ex) in _table().items():
        for case in (*ex.visible, *ex.hidden):
            if not isinstance(case, Case) or isinstance(case.reference, partial):
                continue
            ref = case.reference
            spec = getattr(ref, "answer_key_spec", None) or f"{ref.__module__}:{ref.__qualname__}"
            assert spec in ex.answer_key, f"{name}: its case {case.label!r} uses {spec}"


def test_importing_the_hidden_runner_installs_the_course_guard():
    import cnnlib.checks.hidden  # noqa: F401 - the import is what is tested
    import cnnlib.checks.reference as ref
    from cnnlib.checks.guard import GUARD
    from cnnlib.layers.pool import MaxPool2D
    from cnnlib.tutorial.layers import MaxPool2

    for fn in (ref.conv_forward, vars(MaxPool2D)["backward"], vars(MaxPool2)["backprop"]):
        assert getattr(fn, "answer_key_spec", None) in GUARD.installed()
    assert GUARD.armed() == []
