"""Run one scratchpad cell the way a notebook does: the code as a script (top-level `await`
allowed), the value of a last bare expression shown, `print` and errors sent to `write(stream,
text)` as they happen, a failure shown as its traceback — from the cell's own lines, not this
runner's. Pure Python: the worker (scratch_worker.py) passes a `write` that posts to the page;
the tests run it under CPython.
"""

import ast
import builtins
import inspect
import linecache
import sys
import time
import traceback

FILENAME = "<cell>"
FLUSH_SECONDS = 0.02  # a burst of prints goes to the page in pieces at most this often
FLUSH_CHARS = 8192


class Sink:
    """Where a cell's stdout and stderr go: to `write(stream, text)`, in the order written, with
    bursts coalesced so that a loop of a million prints does not post a million messages."""

    def __init__(self, write):
        self.write_out = write
        self.parts = []  # [stream, text] runs, in order
        self.size, self.last = 0, 0.0

    def add(self, stream: str, text: str) -> None:
        if self.parts and self.parts[-1][0] == stream:
            self.parts[-1][1] += text
        else:
            self.parts.append([stream, text])
        self.size += len(text)
        now = time.monotonic()
        if self.size >= FLUSH_CHARS or now - self.last >= FLUSH_SECONDS:
            self.flush(now)

    def flush(self, now=None) -> None:
        parts, self.parts, self.size = self.parts, [], 0
        for stream, text in parts:
            self.write_out(stream, text)
        self.last = time.monotonic() if now is None else now


class Output:
    """sys.stdout or sys.stderr during a cell."""

    def __init__(self, sink: Sink, stream: str):
        self.sink, self.stream = sink, stream

    def write(self, text) -> int:
        text = str(text)
        if text:
            self.sink.add(self.stream, text)
        return len(text)

    def flush(self) -> None:
        self.sink.flush()

    def isatty(self) -> bool:
        return False

    def writable(self) -> bool:
        return True


async def run(code: str, write) -> dict:
    """Run `code`; returns {"ok", "error" (one line or None), "seconds"}."""
    sink = Sink(write)
    out, err = Output(sink, "stdout"), Output(sink, "stderr")
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    # The traceback shows the cell's source lines, as for a file.
    linecache.cache[FILENAME] = (len(code), None, code.splitlines(True), FILENAME)
    started = time.perf_counter()
    error = None
    try:
        await _execute(code, out)
    except BaseException as exc:  # reported to the user (traceback), never swallowed
        out.flush()
        error = _report(exc, err)
    finally:
        sink.flush()
        sys.stdout, sys.stderr = saved
    return {"ok": error is None, "error": error,
            "seconds": round(time.perf_counter() - started, 3)}


async def _execute(code: str, out: Output) -> None:
    tree = ast.parse(code, FILENAME)
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Expression(tree.body.pop().value)
    namespace = {"__name__": "__main__", "__builtins__": builtins}
    flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    result = eval(compile(tree, FILENAME, "exec", flags=flags), namespace)
    if inspect.iscoroutine(result):
        await result
    if last is not None:
        value = eval(compile(last, FILENAME, "eval", flags=flags), namespace)
        if inspect.iscoroutine(value):
            value = await value
        if value is not None:
            out.write(repr(value) + "\n")


def _report(exc: BaseException, err: Output):
    """Write the traceback (without this module's frames); returns the one-line summary, or
    None for a plain `sys.exit()` / `sys.exit(0)`."""
    if isinstance(exc, SystemExit) and exc.code in (None, 0):
        return None
    report = traceback.TracebackException.from_exception(exc)
    while report.stack and report.stack[0].filename == __file__:
        report.stack.pop(0)
    if isinstance(exc, SyntaxError) and exc.filename == FILENAME:
        report.stack.clear()  # the compiler's frames say nothing about the cell
    err.write("".join(report.format()))
    err.flush()
    summary = "".join(report.format_exception_only()).strip().splitlines()
    return summary[-1] if summary else type(exc).__name__
