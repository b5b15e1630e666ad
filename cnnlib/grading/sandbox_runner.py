"""Execute one notebook with nbclient, kernel and client in this process's sandbox.

    python -m cnnlib.grading.sandbox_runner IN.ipynb OUT.ipynb [--timeout 30] [--transport ipc|tcp]

Meant to run inside `cnnlib.grading.sandbox.run`: the kernel is started here, so it inherits the
sandbox (its namespaces and limits). Every cell runs, errors included (allow_errors), the
executed notebook is written to OUT, and one JSON line on stdout summarises the run:
{"cells": N, "errors": [{"cell": id, "ename": name}, ...]}. What the notebook's outputs are
worth is for the grader outside to judge, never for this process.

Transport: "ipc" (the default: Unix sockets as files in a private temporary folder, no
network at all, and no "running over TCP without encryption" warning on stderr) or "tcp"
(loopback; inside the sandbox's own network namespace nothing else listens there).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

from cnnlib.grading import import_nbformat


def execute(src: str, dst: str, *, timeout: float = 30.0, transport: str = "ipc",
            kernel_name: str = "python3") -> dict:
    """Run every cell of notebook `src`, write the executed notebook to `dst`, return a summary.

    timeout: seconds per cell (nbgrader's default is 30), after which the cell is interrupted.
    """
    nbformat = import_nbformat()
    # after import_nbformat(): both import nbformat, which must not pay its slow import
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    if transport not in ("tcp", "ipc"):
        raise ValueError(f"sandbox_runner.execute: transport must be 'tcp' or 'ipc', "
                         f"got {transport!r}")
    nb = nbformat.read(src, as_version=4)
    km = KernelManager(kernel_name=kernel_name, transport=transport)
    if transport == "ipc":  # socket files kernel-ipc-<n>, not in the submission's folder
        km.ip = os.path.join(tempfile.mkdtemp(prefix="kernel-"), "kernel-ipc")
    client = NotebookClient(
        nb, km=km, timeout=timeout, allow_errors=True, kernel_name=kernel_name,
        resources={"metadata": {"path": os.path.dirname(os.path.abspath(src))}},
    )
    client.execute()
    nbformat.write(nb, dst)
    errors = [
        {"cell": cell.get("id"), "ename": out.get("ename")}
        for cell in nb.cells if cell.cell_type == "code"
        for out in cell.get("outputs", []) if out.get("output_type") == "error"
    ]
    return {"cells": sum(c.cell_type == "code" for c in nb.cells), "errors": errors}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m cnnlib.grading.sandbox_runner",
                                 description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src", help="notebook to execute")
    ap.add_argument("dst", help="where to write the executed notebook")
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds per cell")
    ap.add_argument("--transport", choices=("tcp", "ipc"), default="ipc")
    ap.add_argument("--kernel", default="python3", help="kernelspec name")
    args = ap.parse_args(argv)
    summary = execute(args.src, args.dst, timeout=args.timeout, transport=args.transport,
                      kernel_name=args.kernel)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
