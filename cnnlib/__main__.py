"""Command line: ``python -m cnnlib <command> ...`` (also installed as ``cnnlib``).

    train      train one of the source material's networks and print its test accuracy
    reproduce  run every recipe of the source material and print a comparison table
    generate   (instructors) regenerate the student notebooks: cnnlib.grading generate
    grade      (instructors) autograde submissions: cnnlib.grading autograde
    feedback   (instructors) feedback HTML: cnnlib.grading feedback

Bad arguments print a usage message and exit with status 2; a run that cannot proceed (data
missing, training diverged) prints ``error: ...`` and exits with status 1.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys

from cnnlib.data.catalog import TITLES
from cnnlib.errors import CnnlibError
from cnnlib.i18n import tr
from cnnlib.models import RECIPES
from cnnlib.reproduce import (
    PLAN,
    ReproduceInterrupted,
    TableFile,
    format_table,
    load_dataset,
    reproduce,
    run_recipe,
)
from cnnlib.training import save_model

DATASETS = ("mnist", "fashion")
# Instructor commands handled by cnnlib.grading (imported only when used): ours -> theirs.
DELEGATED = {"generate": "generate", "grade": "autograde", "feedback": "feedback",
             "report": "report", "export": "export"}


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            tr("expected a positive integer, got {text!r}", text=text)) from None
    if value < 1:
        raise argparse.ArgumentTypeError(tr("expected a positive integer, got {value}",
                                            value=value))
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            tr("expected a positive number, got {text!r}", text=text)) from None
    if not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(tr("expected a positive number, got {text}",
                                            text=text))
    return value


def _existing_dir(text: str) -> str:
    path = os.path.expanduser(text)
    if not os.path.isdir(path):
        raise argparse.ArgumentTypeError(tr("no such directory: {path}", path=text))
    return path


def _add_data_args(p: argparse.ArgumentParser, multi=False):
    choices = (*DATASETS, "both") if multi else DATASETS
    p.add_argument("--data", choices=choices, default="mnist",
                   help="dataset (default: mnist; the offline 5,000-digit subset when the full "
                        "set is not available)")
    p.add_argument("--data-dir", type=_existing_dir, metavar="DIR",
                   help="folder with the four IDX files of the dataset")
    p.add_argument("--test-dir", type=_existing_dir, metavar="DIR",
                   help="folder with t10k-images-idx3-ubyte(.gz) and t10k-labels-idx1-ubyte(.gz):"
                        " score on this test set instead")
    p.add_argument("--seed", type=int, default=0, help="seed for init and shuffling (default 0)")
    p.add_argument("--fast", action=argparse.BooleanOptionalAction, default=True,
                   help="use Numba where it is faster: the fused tutorial-net step for the "
                        "tutorial recipe, the fused network3 step for plain-SGD network3, "
                        "otherwise the faster of the Numba layers and numpy, timed on one batch "
                        "(default: --fast; --no-fast: the numpy reference only)")
    p.add_argument("--quiet", action="store_true", help="no progress bars or per-epoch lines")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m cnnlib",
        description="cnnlib: train and reproduce the course's CNNs.",
    )
    sub = parser.add_subparsers(dest="command", metavar="command")
    sub.required = True

    train = sub.add_parser(
        "train", help="train one network and print its test accuracy",
        description="Train one of the source material's networks with its recipe "
                    "(see cnnlib.models.RECIPES) and print 'Test Accuracy: 0.xxxx' last.",
    )
    train.add_argument("--model", required=True, choices=sorted(RECIPES), metavar="MODEL",
                       help="one of: " + ", ".join(sorted(RECIPES)))
    train.add_argument("--epochs", type=_positive_int, help="epochs (default: the recipe's)")
    train.add_argument("--limit", type=_positive_int, metavar="N",
                       help="train on N images (a stratified subset)")
    train.add_argument("--test-limit", type=_positive_int, metavar="N",
                       help="score on N test images (a stratified subset)")
    train.add_argument("--batch-size", type=_positive_int, help="override the recipe's")
    train.add_argument("--lr", type=_positive_float, help="override the recipe's learning rate")
    train.add_argument("--l2", type=_positive_float, metavar="LAMBDA",
                       help="L2 strength (network3 recipes divide it by the number of "
                            "minibatches, as network3 does)")
    train.add_argument("--save", metavar="PATH", help="save the trained model (.npz)")
    _add_data_args(train)
    train.set_defaults(subparser=train)

    rep = sub.add_parser(
        "reproduce", help="run every recipe of the source material and print a table",
        description="Run each recipe of the source material and print a markdown table: "
                    "reported figure, ours, data used, epochs, wall time. While it runs it "
                    "prints a line when a recipe starts and ends and one per epoch (loss, "
                    "accuracy, elapsed time, ETA); --quiet prints the table only.",
        epilog="Interrupting: with --out PATH each row is saved as soon as its recipe "
               "finishes, so Ctrl-C loses only the recipe that was running; it then prints "
               "the rows saved and the command that runs the rest: the same command with "
               "--resume, which skips the recipes PATH already has a row for (same dataset). "
               "Without --out, Ctrl-C prints the finished rows and an --only command for the "
               "rest.",
    )
    rep.add_argument("--quick", action="store_true",
                     help="a short smoke run (1 epoch, 1,000 training images per recipe)")
    rep.add_argument("--only", metavar="NAMES", action="append",
                     help="recipes to run, comma-separated or the option repeated, in that "
                          "order (default: all): " + ", ".join(PLAN))
    rep.add_argument("--out", metavar="PATH",
                     help="append each finished row to the markdown table in PATH at once "
                          "(the header written with the first row); rows already in PATH "
                          "are kept and printed in the final table")
    rep.add_argument("--resume", action="store_true",
                     help="with --out: skip the recipes that already have a row in PATH for "
                          "the same dataset (use the interrupted run's other options)")
    rep.add_argument("--jobs", metavar="N", type=int, default=1,
                     help="train N recipes at once, each in its own process with one thread, "
                          "the longest first (default 1; on 2 cores, 2 halves the wall time)")
    _add_data_args(rep, multi=True)
    rep.set_defaults(subparser=rep)

    for name, theirs in DELEGATED.items():
        # Listed for --help; main() hands these to cnnlib.grading before parsing.
        sub.add_parser(name, help=f"instructors: python -m cnnlib.grading {theirs} ...")
    return parser


def _cmd_train(args, parser) -> int:
    ds = load_dataset(args.data, data_dir=args.data_dir, test_dir=args.test_dir,
                      limit=args.limit, test_limit=args.test_limit, seed=args.seed,
                      verbose=not args.quiet)
    overrides = {}
    if args.batch_size:
        overrides["batch_size"] = args.batch_size
    if args.lr:
        overrides["lr"] = args.lr
        overrides["lr_schedule"] = None
    if args.l2:
        overrides["l2"] = args.l2
    verbose = not args.quiet
    if verbose:
        print(tr("Training {model} on {data}", model=args.model, data=ds.description))
    result = run_recipe(args.model, ds, epochs=args.epochs, seed=args.seed,
                        fast="auto" if args.fast else False,
                        verbose=verbose, **overrides)
    if args.save:
        path = save_model(args.save, result.model,
                          metadata={"recipe": args.model, "data": ds.description,
                                    "test_accuracy": result.test_accuracy})
        print(tr("Saved the model to {path}", path=path))
    if result.test_loss is not None:
        print(tr("Test Loss: {loss:.4f}", loss=result.test_loss))
    print(tr("Trained in {seconds:.1f} s ({engine})", seconds=result.seconds,
             engine=result.engine))
    # the last line, in every language: scripts read it (the tutorial prints it so too)
    print(f"Test Accuracy: {result.test_accuracy:.4f}")
    return 0


def _reproduce_command(args, parser, only=None, resume=None) -> str:
    """The command line of this reproduce run (``only`` / ``resume`` replaced when given):
    what the interrupt message tells a person to run."""
    parts = [_python(), *shlex.split(parser.prog)[1:]]
    if args.quick:
        parts.append("--quick")
    names = only if only is not None else _only_names(args)
    if names:
        parts += ["--only", ",".join(names)]
    if args.out:
        parts += ["--out", args.out]
    if args.data != "mnist":
        parts += ["--data", args.data]
    for flag, value in (("--data-dir", args.data_dir), ("--test-dir", args.test_dir)):
        if value:
            parts += [flag, value]
    if args.seed != 0:
        parts += ["--seed", str(args.seed)]
    if not args.fast:
        parts.append("--no-fast")
    if args.quiet:
        parts.append("--quiet")
    if args.jobs != 1:
        parts += ["--jobs", str(args.jobs)]
    if args.resume if resume is None else resume:
        parts.append("--resume")
    return shlex.join(parts)


def _python() -> str:
    """``python`` when that name runs this interpreter, else this interpreter's path (a
    virtual environment not activated): the command printed must run as it is."""
    found = shutil.which("python")
    if found and os.path.normpath(found) == os.path.normpath(sys.executable):
        return "python"
    return sys.executable or "python"


def _only_names(args) -> list[str] | None:
    if not args.only:
        return None
    names = [n.strip() for text in args.only for n in text.split(",") if n.strip()]
    return list(dict.fromkeys(names)) or None


def _cmd_reproduce(args, parser) -> int:
    only = _only_names(args)
    if only:
        bad = [n for n in only if n not in PLAN]
        if bad:
            parser.error(tr("--only: unknown recipe(s) {unknown}; choose from {choices}",
                            unknown=", ".join(bad), choices=", ".join(PLAN)))
    if args.resume and not args.out:
        parser.error(tr("--resume needs --out PATH (the table whose rows it skips)"))
    if args.jobs < 1:
        parser.error(tr("--jobs must be 1 or more, got {jobs}", jobs=args.jobs))
    datasets = DATASETS if args.data == "both" else (args.data,)
    try:
        reproduce(datasets, data_dir=args.data_dir, test_dir=args.test_dir, quick=args.quick,
                  only=only, seed=args.seed, fast=args.fast, verbose=not args.quiet,
                  out=args.out, resume=args.resume, jobs=args.jobs)
    except ReproduceInterrupted as stop:
        _say_interrupted(stop, args, parser, datasets)
        return 130
    return 0


def _say_interrupted(stop: ReproduceInterrupted, args, parser, datasets) -> None:
    """After Ctrl-C: which rows are saved (read back from the --out file) and the command
    that runs the rest."""
    def label(dataset, name):
        return f"{name} ({TITLES[dataset]})" if len(datasets) > 1 else name

    running = label(*stop.running) if stop.running else None
    err = sys.stderr
    if stop.out is not None:
        try:
            saved = TableFile(stop.out).kept
        except CnnlibError:
            saved = []
        names = ", ".join(line.strip("|").split("|")[0].strip() for line in saved) or "-"
        if running:
            print(tr("interrupted during {recipe}: {path} keeps {count} row(s): {names}",
                     recipe=running, path=stop.out, count=len(saved), names=names), file=err)
        else:
            print(tr("interrupted: {path} keeps {count} row(s): {names}", path=stop.out,
                     count=len(saved), names=names), file=err)
        if stop.remaining:
            print(tr("to run the rest: {command}",
                     command=_reproduce_command(args, parser, resume=True)), file=err)
        return
    if stop.rows:
        print(format_table(stop.rows))
    if running:
        print(tr("interrupted during {recipe}: {count} row(s) finished, printed above (no "
                 "--out file, nothing saved)", recipe=running, count=len(stop.rows)), file=err)
    else:
        print(tr("interrupted: {count} row(s) finished, printed above (no --out file, nothing "
                 "saved)", count=len(stop.rows)), file=err)
    rest = [name for _, name in stop.remaining]
    if rest and len(datasets) == 1:
        print(tr("to run the rest: {command}",
                 command=_reproduce_command(args, parser, only=rest)), file=err)
    elif rest:  # --data both: an --only list cannot say which dataset still needs a recipe
        print(tr("to keep each row as it finishes, run with --out PATH; --resume then skips "
                 "the rows saved"), file=err)


def _cmd_grading(command: str, rest: list[str]) -> int:
    """Run ``python -m cnnlib.grading <command> <rest>``, imported lazily."""
    try:
        import cnnlib.grading as grading  # here only: nbgrader is heavy and instructors-only
    except ImportError as exc:
        print(tr("error: cnnlib.grading is not available ({exc})", exc=exc), file=sys.stderr)
        return 1
    entry = getattr(grading, "main", None)
    if entry is None:
        print(tr("error: cnnlib.grading has no command-line entry point (main)"),
              file=sys.stderr)
        return 1
    result = entry([command, *rest])
    return int(result or 0)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in DELEGATED:
        return _cmd_grading(DELEGATED[argv[0]], argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "train":
            return _cmd_train(args, args.subparser)
        return _cmd_reproduce(args, args.subparser)
    except CnnlibError as exc:
        print(tr("error: {message}", message=exc), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(tr("interrupted"), file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
