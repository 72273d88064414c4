"""Loaded by scripts/schemathesis.sh (SCHEMATHESIS_HOOKS): no hook, one workaround.

CPython 3.11 (3.11.7 here, at least) converts a parsed tree with an interpreter-wide recursion
counter, so two threads in `ast.parse` at once can fail with `SystemError: AST constructor recursion
depth mismatch` (CPython issue gh-106905). Hypothesis parses its sources to describe a lambda
the first time it sees one, and with `--workers 2` both workers may do that at once: the run
then reports a "Runtime Error" that says nothing about the API. One parse at a time here.
"""

import ast
import threading

_parse = ast.parse
_lock = threading.Lock()


def _serialised_parse(*args, **kwargs):
    with _lock:
        return _parse(*args, **kwargs)


ast.parse = _serialised_parse
