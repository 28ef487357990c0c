"""How every tool ends: a one-line `error: ...` on stderr and exit code 2, never a traceback.

Each tool module has `main(argv)` (raises, for tests and callers) and `cli(argv)` (what `tools/*.py`
runs): `cli` turns the errors a user can cause (bad config, data, checkpoint, folder, disk full)
into one line naming the file, key or value, and exit code 2. Anything else is a bug: it prints one
line too, with exit code 1 and a request to report it. `--debug` or `REID_STARGAN_DEBUG=1` shows the
full traceback instead, for bug reports::

    REID_STARGAN_DEBUG=1 python tools/train_reid.py --config configs/reid/synthetic_cpu_baseline.yaml

The argparse types and the run-folder steps that several tools share live here too.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import pickle
import sys
import traceback
import zipfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reid_stargan.utils.rundir import discard_unstarted_run, make_run_dir

if TYPE_CHECKING:
    from reid_stargan.utils.distributed import DistInfo

DEBUG_ENV = "REID_STARGAN_DEBUG"
DEBUG_FLAG = "--debug"
EXIT_USER_ERROR = 2
EXIT_BUG = 1

# What a user's input or machine can cause. ValueError covers ConfigError, DatasetError, CamStyleError,
# CheckpointError, CheckpointFileError, RunDirError and torch's argument checks; OSError covers missing
# files, FileExistsError, BadImageError and a full disk.
EXPECTED_ERRORS: tuple[type[BaseException], ...] = (
    ValueError, OSError, FloatingPointError, pickle.UnpicklingError, zipfile.BadZipFile, KeyError, EOFError,
)


def add_debug_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(DEBUG_FLAG, action="store_true",
                        help=f"show the Python traceback of an error (or set {DEBUG_ENV}=1)")


def debug_enabled(argv: Sequence[str] | None = None) -> bool:
    argv = sys.argv[1:] if argv is None else argv
    return DEBUG_FLAG in argv or os.environ.get(DEBUG_ENV, "").strip() not in ("", "0", "false", "no")


def error_message(exc: BaseException) -> str:
    """One line for `exc`: its own message (KeyError's quotes removed), with the cause of a full disk."""
    quoted = isinstance(exc, KeyError) and len(exc.args) == 1 and isinstance(exc.args[0], str)
    text = exc.args[0] if quoted else str(exc)
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        where = f" writing {exc.filename}" if exc.filename else ""
        text = f"disk full{where} (no space left on device); nothing was left half-written: free space and rerun"
    elif isinstance(exc, OSError) and exc.strerror and exc.filename and str(exc.filename) not in text:
        text = f"{exc.filename}: {exc.strerror}"
    if not text:
        text = type(exc).__name__
    text = " ".join(ln.strip() for ln in text.splitlines() if ln.strip())
    return text.removeprefix("error: ")


def run_cli(main: Callable[[list[str] | None], Any], argv: Sequence[str] | None = None) -> int:
    """Run a tool's `main`; return its exit code (0, 2 for a user error, 1 for a bug)."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = debug_enabled(args)
    try:
        result = main(args)
    except SystemExit as exc:  # argparse (code 2) and explicit sys.exit("message") calls
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        return _fail(error_message(Exception(exc.code)), EXIT_USER_ERROR, debug)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except EXPECTED_ERRORS as exc:
        return _fail(error_message(exc), EXIT_USER_ERROR, debug)
    except Exception as exc:  # a bug: still one line, unless asked for the traceback
        return _fail(f"internal error {type(exc).__name__}: {error_message(exc)} (rerun with {DEBUG_FLAG} or "
                     f"{DEBUG_ENV}=1 for the traceback, and please report it)", EXIT_BUG, debug)
    return result if isinstance(result, int) and not isinstance(result, bool) else 0


def _fail(text: str, code: int, debug: bool) -> int:
    """End on the exception being handled: its traceback when debugging, then `error: text`."""
    if debug:
        traceback.print_exc()
    print(f"error: {text}", file=sys.stderr)
    return code


def int_at_least(low: int, high: int | None = None, what: str = "") -> Callable[[str], int]:
    """argparse type: an int in [low, high] (`high` None: no upper bound), the flag named by argparse in
    the error; `what` (e.g. "a positive integer") words both refusals instead of the type and the range."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {what or 'an integer'}, got {text!r}") from None
        if value < low or (high is not None and value > high):
            bound = what or (f"in {low}..{high}" if high is not None else f">= {low}")
            raise argparse.ArgumentTypeError(f"must be {bound}, got {value}")
        return value

    return parse


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1, refused with the value named."""
    return int_at_least(1, what="a positive integer")(text)


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0, refused with the value named."""
    return int_at_least(0, what="an integer >= 0")(text)


def new_run_dir(info: DistInfo, out_root: str, tag: str) -> Path:
    """A new numbered run folder `out_root/NNNNN-tag`, made by rank 0; under torchrun (`info`) the other
    ranks learn its name through the process group, so all ranks write to the same folder."""
    made = str(make_run_dir(out_root, tag)) if info.is_main else None
    if info.distributed:
        import torch.distributed as dist

        box = [made]
        dist.broadcast_object_list(box, src=0)
        made = box[0]
    return Path(made)


@contextlib.contextmanager
def discard_if_failed(created: str | os.PathLike | None) -> Iterator[None]:
    """A failed start leaves no empty numbered folder behind: when the block raises, `created` (the
    folder this process made, or None) is removed if it holds nothing but bookkeeping files."""
    try:
        yield
    except BaseException:
        if created is not None:
            discard_unstarted_run(created)
        raise
