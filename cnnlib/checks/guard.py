"""Keep the answer key shut: functions an exercise's answer must not call, refused while armed.

A *spec* names one function or method as ``"module:attr.path"``:
``"cnnlib.layers.pool:MaxPool2D.backward"``, ``"cnnlib.fast.pool:maxpool2d_backward"``,
``"scipy.signal:correlate2d"``. ``GUARD.install(specs)`` replaces each target with a thin
wrapper. Unarmed, the wrapper calls the original unchanged (the layers, the training loops and
the checks' own reference answers keep working). While the wrapper's spec is *armed*
(``with GUARD.arm(specs): ...``, which the checks do around the call of a student's function
only), reaching it records the trip in ``GUARD.tripped`` and raises :class:`AnswerKeyUsed`,
whose message names the function and says to write the exercise with numpy. A student's
``except`` cannot hide a trip: the record is kept either way. While armed, a profile hook
(``sys.setprofile``, only if no profiler is running) also records a trip when an armed
original's *code* starts running, however it was reached (an original dug out of a wrapper's
closure, or held by a table); that call is not stopped, but the answer fails all the same.

Where the wrapper goes, so that every road to the original meets it:

- a module-level function: in its module and in every already-imported module whose globals
  hold the same object (a package re-exporting it, ``from x import f`` in a notebook, whose
  ``__main__`` is in ``sys.modules`` too); so ``importlib.import_module(...)`` plus
  ``getattr`` finds the wrapper;
- a method: on the class that defines it, so objects made earlier and instances of
  subclasses that inherit it are covered;
- a module not imported yet: when it is imported (or re-executed by ``importlib.reload``), an
  import hook wraps its targets right after the module's code has run, before anyone can
  bind them.

``GUARD.reinstall()`` puts back any wrapper that was replaced by something else (a student
assigning ``MaxPool2D.backward = ...`` or restoring a saved original) and returns the specs it
repaired; ``GUARD.tampered`` keeps them. Installing is idempotent.

What this is not: a wall. Code in the same interpreter can still find an original through
introspection (closures, the import machinery, this module's own tables). It stops the one-line
"wrapper around the reference" and tells an honest student at once; the trusted grader, which
runs student code in a sandbox, installs the same guard there and reports trips and tampering
as a 0 with a reason.

Imports only the standard library and :mod:`cnnlib.i18n` (which imports only the standard
library; it runs next to student code in the grader's driver): the message of
:class:`AnswerKeyUsed` is in the language in force.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.abc
import sys
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from cnnlib.i18n import tr

__all__ = ["GUARD", "AnswerKeyGuard", "AnswerKeyUsed", "parse_spec", "resolve"]


class AnswerKeyUsed(Exception):
    """An exercise's answer reached a function it must compute itself (see the message)."""

    def __init__(self, spec: str):
        self.spec = spec
        module, path = parse_spec(spec)
        super().__init__(tr(
            "your answer called {path} (from {module}), which computes this exercise for "
            "you. Write the exercise yourself with numpy, step by step, as the notebook "
            "explains; cnnlib's own {path} is the answer key the checks compare with.",
            path=path, module=module))


def parse_spec(spec: str) -> tuple[str, str]:
    """``"module:attr.path"`` -> ``("module", "attr.path")``; a clear error otherwise."""
    if not isinstance(spec, str) or spec.count(":") != 1:
        raise ValueError(f"answer-key spec {spec!r}: expected 'module:attr.path', "
                         f"e.g. 'cnnlib.layers.pool:MaxPool2D.backward'")
    module, path = spec.split(":")
    if not module or not path or "" in path.split("."):
        raise ValueError(f"answer-key spec {spec!r}: expected 'module:attr.path'")
    return module, path


@dataclass(frozen=True)
class _Target:
    """Where one spec lives: ``owner`` (a module or a class) holds it as ``name``."""

    owner: object
    name: str
    value: object          # what ``owner.__dict__[name]`` holds now (function or descriptor)


def resolve(spec: str, import_module: bool = True) -> _Target:
    """Find the object a spec names. Raises ``LookupError`` naming the spec when it does not
    resolve (``import_module=False``: only among modules imported already)."""
    module_name, path = parse_spec(spec)
    if import_module:
        try:
            module = importlib.import_module(module_name)
        except ImportError as e:
            raise LookupError(f"answer-key spec {spec!r}: cannot import {module_name}: {e}")\
                from None
    elif module_name in sys.modules:
        module = sys.modules[module_name]
    else:
        raise LookupError(f"answer-key spec {spec!r}: {module_name} is not imported")
    owner, parts = module, path.split(".")
    for part in parts[:-1]:
        try:
            owner = getattr(owner, part)
        except AttributeError:
            raise LookupError(f"answer-key spec {spec!r}: {part!r} not found") from None
    name = parts[-1]
    if isinstance(owner, type):
        for klass in owner.__mro__:           # the class that defines it
            if name in vars(klass):
                return _Target(klass, name, vars(klass)[name])
        raise LookupError(f"answer-key spec {spec!r}: {owner.__name__} has no {name!r}")
    if not hasattr(owner, name):
        raise LookupError(f"answer-key spec {spec!r}: {name!r} not found")
    return _Target(owner, name, getattr(owner, name))


def _function_of(value):
    """The callable inside a class attribute (staticmethod/classmethod) and a re-wrapper."""
    if isinstance(value, staticmethod):
        return value.__func__, staticmethod
    if isinstance(value, classmethod):
        return value.__func__, classmethod
    return value, None


class AnswerKeyGuard:
    """Install wrappers, arm them per exercise, record trips and tampering (see the module)."""

    def __init__(self):
        self._armed: Counter[str] = Counter()
        self._lock = threading.RLock()
        self._wrappers: dict[int, object] = {}        # id(wrapper) -> wrapper (ours)
        self._installed: dict[str, _Target] = {}      # spec -> where its wrapper sits
        self._pending: dict[str, set[str]] = {}       # module name -> specs of that module
        self._originals: dict[int, tuple] = {}        # id(original) -> (original, wrapper)
        self._sessions: list[list[str]] = []          # open arm() blocks' trip lists
        self._codes: dict[object, str] = {}           # an original's code object -> its spec
        self._profiling = False                       # our profile hook is on (see arm)
        self.tripped: list[str] = []
        self.tampered: list[str] = []
        self._finder = _WrapOnImport(self)

    # -- installing ---------------------------------------------------------------------------
    def install(self, specs: Iterable[str]) -> list[str]:
        """Wrap every spec (idempotent); return those newly wrapped now. Targets in modules
        not imported yet are wrapped when they are imported."""
        with self._lock:
            specs = list(dict.fromkeys(specs))
            for spec in specs:
                parse_spec(spec)
            new = []
            for spec in specs:
                module_name, _ = parse_spec(spec)
                self._pending.setdefault(module_name, set()).add(spec)
                if spec in self._installed:           # a replaced wrapper: see reinstall()
                    continue
                if module_name in sys.modules and self._wrap(spec, resolve(spec, False)):
                    new.append(spec)
            if self._finder not in sys.meta_path:
                sys.meta_path.insert(0, self._finder)
            if new:
                self._rebind()
            return new

    def reinstall(self) -> list[str]:
        """Put back every wrapper that something replaced; return (and record in
        ``tampered``) the specs that had been replaced."""
        with self._lock:
            repaired = []
            for spec, target in list(self._installed.items()):
                current = self._current(spec)
                if current is not None and self._is_ours(current):
                    continue
                setattr(target.owner, target.name, target.value)
                repaired.append(spec)
            if repaired:
                self.tampered.extend(s for s in repaired if s not in self.tampered)
                self._rebind()
            return repaired

    def installed(self) -> list[str]:
        return sorted(self._installed)

    def _current(self, spec: str):
        target = self._installed.get(spec)
        if target is None:
            return None
        if isinstance(target.owner, type):
            return vars(target.owner).get(target.name)
        return getattr(target.owner, target.name, None)

    def _is_ours(self, value) -> bool:
        return id(value) in self._wrappers and self._wrappers[id(value)] is value

    def _wrap(self, spec: str, target: _Target) -> bool:
        """Wrap ``target`` unless it is a wrapper already; True when it wrapped."""
        if self._is_ours(target.value):
            self._installed[spec] = target
            return False
        original, rewrap = _function_of(target.value)
        if not callable(original):
            raise TypeError(f"answer-key spec {spec!r} names {type(original).__name__}, "
                            f"not a function or method")
        wrapper = self._make_wrapper(spec, original)
        code = getattr(original, "__code__", None)    # (a Numba dispatcher has none)
        if code is not None:
            self._codes[code] = spec
        value = rewrap(wrapper) if rewrap else wrapper
        self._wrappers[id(value)] = value
        self._originals[id(target.value)] = (target.value, value)
        setattr(target.owner, target.name, value)
        self._installed[spec] = _Target(target.owner, target.name, value)
        return True

    def _make_wrapper(self, spec: str, original):
        guard = self

        def answer_key_guard(*args, **kwargs):
            if guard._armed[spec]:
                guard._trip(spec)
                raise AnswerKeyUsed(spec)
            return original(*args, **kwargs)

        for attr in ("__name__", "__qualname__", "__doc__", "__module__"):
            with contextlib.suppress(AttributeError, TypeError):
                setattr(answer_key_guard, attr, getattr(original, attr))
        answer_key_guard.answer_key_spec = spec
        return answer_key_guard

    def _rebind(self) -> None:
        """Replace every module global bound to an original by its wrapper."""
        swaps = self._originals
        if not swaps:
            return
        for module in list(sys.modules.values()):
            try:
                namespace = vars(module)
            except TypeError:
                continue
            try:
                items = list(namespace.items())
            except Exception:  # an odd module object: nothing of ours can be bound there
                continue
            for key, value in items:
                hit = swaps.get(id(value))
                if hit is not None and hit[0] is value:
                    with contextlib.suppress(Exception):
                        namespace[key] = hit[1]

    def _module_executed(self, module_name: str) -> None:
        """The import hook: ``module_name`` ran (import or reload); wrap its targets now."""
        with self._lock:
            wrapped = False
            for spec in sorted(self._pending.get(module_name, ())):
                try:
                    target = resolve(spec, import_module=False)
                except LookupError:
                    continue                # the spec's test reports it; never break imports
                wrapped = self._wrap(spec, target) or wrapped
            if wrapped:
                self._rebind()

    # -- arming -------------------------------------------------------------------------------
    @contextlib.contextmanager
    def arm(self, specs: Iterable[str]) -> Iterator[list[str]]:
        """While the block runs, reaching any of ``specs`` trips; yields the list of specs
        reached inside this block. Installs what is not installed and repairs tampering
        first (see ``reinstall``)."""
        specs = list(dict.fromkeys(specs))
        self.install(specs)
        self.reinstall()
        trips: list[str] = []
        with self._lock:
            self._armed.update(specs)
            self._sessions.append(trips)
            hooked = not self._profiling and sys.getprofile() is None
            if hooked:
                self._profiling = True
                sys.setprofile(self._profile)
        try:
            yield trips
        finally:
            with self._lock:
                if hooked:
                    sys.setprofile(None)
                    self._profiling = False
                self._armed.subtract(specs)
                self._armed += Counter()          # drop zero counts
                self._sessions.remove(trips)

    def _profile(self, frame, event, arg):
        """While armed: an armed original whose code starts running was reached around its
        wrapper (an original dug out of a closure, a table holding it): a trip too."""
        if event == "call":
            spec = self._codes.get(frame.f_code)
            if spec is not None and self._armed[spec]:
                self._trip(spec)

    def call(self, specs: Iterable[str], fn, *args, **kwargs):
        """Run ``fn(*args, **kwargs)`` with ``specs`` armed: ``(value, exception, trips)``,
        ``value`` None when it raised, ``exception`` None when it returned, ``trips`` the specs
        reached (a grader's driver sends these back with the answer)."""
        with self.arm(specs) as trips:
            try:
                return fn(*args, **kwargs), None, list(trips)
            except Exception as e:  # the caller judges it; a trip is in trips either way
                return None, e, list(trips)

    def _trip(self, spec: str) -> None:
        with self._lock:
            self.tripped.append(spec)
            for trips in self._sessions:
                if spec not in trips:
                    trips.append(spec)

    def armed(self) -> list[str]:
        return sorted(s for s, n in self._armed.items() if n > 0)


class _WrapOnImport(importlib.abc.MetaPathFinder):
    """Finds nothing itself: for a guarded module it wraps the real loader so that the
    guard's targets are wrapped right after the module's code ran (import or reload)."""

    def __init__(self, guard: AnswerKeyGuard):
        self.guard = guard

    def find_spec(self, fullname, path, target=None):
        if fullname not in self.guard._pending:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None and not isinstance(spec.loader, _GuardedLoader) \
                and hasattr(spec.loader, "exec_module"):
            spec.loader = _GuardedLoader(spec.loader, self.guard)
        return spec


class _GuardedLoader(importlib.abc.Loader):
    """The real loader, plus the guard's wrapping after ``exec_module``."""

    def __init__(self, loader, guard: AnswerKeyGuard):
        self._loader = loader
        self._guard = guard

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        self._guard._module_executed(module.__name__)

    def __getattr__(self, name):               # get_source, get_filename, ... as the real one
        return getattr(self._loader, name)


# The one guard of this interpreter: the checks and the grader's driver use it.
GUARD = AnswerKeyGuard()
