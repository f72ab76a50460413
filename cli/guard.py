"""The CLI's last line of defence: any exception a command did not expect becomes one line, never a traceback.

Real causes get real messages where they are raised (RoutingInputError, click errors, OSError);
what reaches `unexpected_error_line` is a bug or an input nobody foresaw, so the line names
the inputs of the command and asks for a report.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

import click

from lm_routing.data import RoutingInputError

INPUT_OPTIONS = ("--logs", "--scores", "--test-scores", "--load", "--queries")


def command_inputs(argv: list[str]) -> list[str]:
    """The input files and folders named on the command line, in order (`--opt VALUE` or `--opt=VALUE`)."""
    named = []
    for i, arg in enumerate(argv):
        option, sep, value = arg.partition("=")
        if option in INPUT_OPTIONS:
            value = value if sep else (argv[i + 1] if i + 1 < len(argv) else "")
            if value:
                named.append(value)
    return named


def unexpected_error_line(error: BaseException, argv: list[str]) -> str:
    """One line: what failed, on which inputs, and that it is ours to fix."""
    inputs = command_inputs(argv) or ["the default --logs folder results"] * ("predict" not in argv[:1])
    detail = " ".join(str(error).split())[:300]
    where = f" while reading {', '.join(inputs)}" if inputs else ""
    return (f"unexpected {type(error).__name__}{where}: {detail or 'no detail'}; please report this "
            "(with the command line) at the lm-routing issue tracker")


class InputError(click.ClickException):
    """An input error the library found (lm_routing.data.RoutingInputError): click's own one-line error, exit code 2."""

    exit_code = 2


@contextlib.contextmanager
def input_errors(names: Mapping[str, str]):
    """Turn the library's input errors into click's, so one handler words and exits every error a user can fix;
    `names`: the option of each setting the library names (the library never speaks of flags)."""
    try:
        yield
    except RoutingInputError as error:
        raise InputError(error.render(names)) from error
