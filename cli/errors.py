"""How the ``kruzoo`` command reports a failure: one ``kruzoo: error: <cause>`` line and at most a
few lines of context (the rest of the message, where it was raised, how to see more); the full
traceback only with ``--debug`` or ``KRUZOO_DEBUG=1``.

:func:`run` is the console script's body and the in-process way to drive the CLI as a user does
(tests): it returns the exit status instead of leaving the interpreter.
"""

from __future__ import annotations

import os
import signal
import sys
import traceback
from pathlib import Path

import torch
import yaml

from .integrity import RunInterrupted

CONTEXT_LINES = 4  # message lines after the summary, at most
DEBUG_HINT = "run with --debug (or KRUZOO_DEBUG=1) for the full traceback"


def _cause(error: BaseException) -> BaseException:
    # jsonargparse wraps an error raised while instantiating --model/--data in a generic
    # "Does not validate against any of the Union subtypes": report the cause.
    # Likewise a failing link (the task computed from the datamodule): "Call to compute_fn … failed: <cause>".
    while error.__cause__ is not None and str(error).startswith(("Does not validate", "Call to compute_fn")):
        error = error.__cause__
    text = str(error)
    if text.startswith("Call to compute_fn") and " failed: " in text:
        cause = type(error)(text.rsplit(" failed: ", 1)[1])
        cause.__traceback__ = error.__traceback__
        return cause
    return error


def _origin(error: BaseException) -> str | None:
    """``file:line in function`` of the innermost frame of the error's traceback inside kruzoo."""
    frames = traceback.extract_tb(error.__traceback__)
    here = Path(__file__).resolve().parents[1]
    ours = [f for f in frames if Path(f.filename).resolve().is_relative_to(here)] or frames
    if not ours:
        return None
    frame = ours[-1]
    try:
        name = str(Path(frame.filename).resolve().relative_to(here))
    except ValueError:
        name = Path(frame.filename).name
    return f"{name}:{frame.lineno} in {frame.name}"


def _advice(error: BaseException) -> str | None:
    if isinstance(error, (torch.OutOfMemoryError, MemoryError)):
        return "out of memory: lower --data.batch_size or --model.hidden_size, or shorten the sequences"
    if isinstance(error, PermissionError):
        return "a file or folder could not be written: give --trainer.default_root_dir a writable folder"
    return None


def summary(error: BaseException) -> list[str]:
    """The lines kruzoo prints for ``error``: the summary line first, then the context."""
    error = _cause(error)
    text = str(error).strip() or type(error).__name__
    if isinstance(error, KeyError):
        text = f"missing key {text}"
    first, *rest = text.splitlines()
    lines = [f"kruzoo: error: {first}"]
    context = [f"  {line.rstrip()}" for line in rest if line.strip()]
    if len(context) > CONTEXT_LINES - 1:
        context = context[: CONTEXT_LINES - 2] + [f"  … ({len(rest) - CONTEXT_LINES + 2} more lines)"]
    advice = _advice(error)
    if advice:
        context.append(f"  {advice}")
    origin = _origin(error)
    context.append(f"  ({type(error).__name__}{' at ' + origin if origin else ''}; {DEBUG_HINT})")
    return lines + context


def debug_requested(args: list[str]) -> tuple[bool, list[str]]:
    debug = os.environ.get("KRUZOO_DEBUG", "") not in ("", "0", "false", "no")
    if "--debug" in args:
        debug = True
        args = [a for a in args if a != "--debug"]
    return debug, args


class ConfigFileError(ValueError):
    """A ``--config`` file that is not a YAML mapping of settings."""


def check_config_files(args: list[str]) -> None:
    """Each existing ``--config FILE`` parses as a non-empty YAML mapping (jsonargparse would say
    only "Unexpected config"). Names that are no file are left to the parser (packaged configs)."""
    for i, arg in enumerate(args):
        value = args[i + 1] if arg == "--config" and i + 1 < len(args) else (
            arg.removeprefix("--config=") if arg.startswith("--config=") else None)
        if value is None or not Path(value).is_file():
            continue
        try:
            data = yaml.safe_load(Path(value).read_text(encoding="utf-8"))
        except UnicodeDecodeError as error:
            raise ConfigFileError(f"--config {value} is not text (byte {error.start} is not UTF-8); a config is "
                                  f"a YAML file") from None
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            problem = getattr(error, "problem", None) or str(error).splitlines()[0]
            raise ConfigFileError(f"--config {value} is not valid YAML{where}: {problem}") from None
        if data is None:
            raise ConfigFileError(f"--config {value} is empty: a config is a YAML mapping with trainer:, model: "
                                  f"and data: sections (see configs/<task>/<model>.yaml)")
        if not isinstance(data, dict):
            raise ConfigFileError(f"--config {value} holds a YAML {type(data).__name__}, not a mapping of settings "
                                  f"(trainer:, model:, data:)")


def run(args: list[str] | None = None, stderr=None) -> int:
    """Run the CLI on ``args`` (default: ``sys.argv[1:]``); the exit status, never a raw traceback
    unless debugging is asked for."""
    from .main import main  # here, not at the top: main imports this module's siblings

    stderr = stderr or sys.stderr
    debug, args = debug_requested(list(sys.argv[1:] if args is None else args))
    try:
        check_config_files(args)
        main(args)
    except SystemExit as exit_:  # jsonargparse's own errors (exit 2, its `error:` block), --help
        code = exit_.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except RunInterrupted as stop:
        print(f"kruzoo: {stop}", file=stderr, flush=True)
        return 128 + stop.signum
    except KeyboardInterrupt:
        print("kruzoo: interrupted", file=stderr, flush=True)
        return 128 + signal.SIGINT
    except Exception as error:  # noqa: BLE001 - every failure gets the same clear report
        if debug:
            traceback.print_exc(file=stderr)
        print("\n".join(summary(error)), file=stderr, flush=True)
        return 1
    return 0
