"""The ``cometrunway`` argument parser: every command, its options and its help."""

from __future__ import annotations

import argparse

from ..client import DEFAULT_BASE_URL
from . import _audio, _cancel, _report

EXIT_CODES = """\
exit codes:
  0    every task succeeded (and every download, with --download)
  1    some tasks failed, were refused, lost or never sent, or a download failed
  2    usage or bad input (nothing was sent)
  3    authentication or configuration: API key, base URL, journal file
  4    some creates are ambiguous (may have been created): settle them
  130  interrupted (Ctrl-C); the journal is intact, `resume` follows what was running
  143  stopped by SIGTERM, handled like Ctrl-C
  (when several apply, the first in this order wins: 130, 3, 2, 4, 1)
"""

EPILOG = (
    EXIT_CODES
    + """
environment:
  COMETAPI_KEY         your CometAPI key (or --api-key-file FILE); never printed
  COMETAPI_BASE_URL    the API's base URL (default """
    + DEFAULT_BASE_URL
    + """)
  COMETRUNWAY_LOG      debug | info | warning: log the cometrunway logger to stderr

try it offline, no key needed:
  printf 'a red fox\\na calm lake\\n' | cometrunway batch - --fake --download out/
"""
)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {text!r}")
    return value


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def _global_options(parser: argparse.ArgumentParser, *, on_command: bool) -> None:
    """The options every command takes, before or after its name.

    On a command's own parser they default to SUPPRESS, so that one given before the
    command is not reset by the command's parser.
    """

    def default(value: object) -> object:
        return argparse.SUPPRESS if on_command else value

    out = parser.add_argument_group("output")
    out.add_argument(
        "--json",
        action="store_true",
        default=default(False),
        help="JSON lines on stdout (events, results, a summary) and nothing else there",
    )
    out.add_argument(
        "--plain",
        action="store_true",
        default=default(False),
        help="plain log lines even on a terminal (no live view)",
    )
    out.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=default(False),
        help="no live view, progress or summary; errors and a line if something failed",
    )
    out.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=default(0),
        help="log to stderr: -v info, -vv debug (also COMETRUNWAY_LOG)",
    )
    api = parser.add_argument_group("connection")
    api.add_argument(
        "--fake",
        action="store_true",
        default=default(False),
        help="run against an embedded fake CometAPI: no key, no network, nothing paid",
    )
    api.add_argument(
        "--fake-speed",
        type=_positive_float,
        default=default(1.0),
        metavar="X",
        help="with --fake: make the fake's tasks X times faster (default 1)",
    )
    api.add_argument(
        "--base-url",
        default=default(None),
        metavar="URL",
        help=f"API base URL (default: $COMETAPI_BASE_URL or {DEFAULT_BASE_URL})",
    )
    api.add_argument(
        "--api-key-file",
        default=default(None),
        metavar="FILE",
        help="read the key from FILE's first line instead of $COMETAPI_KEY",
    )
    api.add_argument(
        "--poll-interval",
        type=_positive_float,
        default=default(None),
        metavar="SECONDS",
        help="base seconds between polls of a task (default 5; it grows with a task's age)",
    )


def _request_options(parser: argparse.ArgumentParser, *, batch: bool) -> None:
    what = "default for lines that do not set it: " if batch else ""
    group = parser.add_argument_group("request" if not batch else "request defaults")
    group.add_argument("--model", help=f"{what}model, e.g. gen4, gen4_turbo (default gen4)")
    group.add_argument("--ratio", metavar="W:H", help=f"{what}aspect ratio, e.g. 16:9 or 1280:720")
    group.add_argument("--style", help=f"{what}style, e.g. cinematic")
    group.add_argument(
        "--seconds", type=int, choices=(5, 10), help=f"{what}video length in seconds"
    )


def build_parser() -> argparse.ArgumentParser:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="cometrunway",
        description="Generate Runway videos through CometAPI: one prompt or a batch of "
        "thousands, with progress, downloads, and a journal so nothing is lost or paid twice.",
        epilog=EPILOG,
        formatter_class=formatter,
    )
    from .. import __version__

    parser.add_argument("--version", action="version", version=f"cometrunway {__version__}")
    _global_options(parser, on_command=False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, summary: str, description: str | None = None) -> argparse.ArgumentParser:
        return commands.add_parser(
            name,
            help=summary,
            description=description or summary,
            epilog=EXIT_CODES,
            formatter_class=formatter,
        )

    p = command(
        "generate",
        "create one video (text to video, or image to video with --image)",
        "Create one video. Prints its task id (stdout) and exits, or with --wait follows it "
        "to the end; --download DIR also saves the outputs (and implies --wait).",
    )
    p.add_argument(
        "prompt", metavar="PROMPT", nargs="?", help="what the video shows (not with --speech)"
    )
    p.add_argument("--image", metavar="URL", help="animate this image (an ImageToVideo request)")
    p.add_argument("--end-image", metavar="URL", help="with --image: the frame to end on")
    p.add_argument(
        "--image-as-end-frame",
        action="store_true",
        help="with --image: use the image as the last frame instead of the first",
    )
    _request_options(p, batch=False)
    motion = p.add_argument_group("camera motion (motion_vector)")
    for flag, text in (
        ("x", "horizontal pan"),
        ("y", "vertical pan"),
        ("z", "zoom"),
        ("r", "roll"),
        ("bg_x_pan", "background horizontal pan"),
        ("bg_y_pan", "background vertical pan"),
    ):
        motion.add_argument(
            f"--motion-{flag.replace('_', '-')}",
            dest=f"motion_{flag}",
            type=_float,
            metavar="N",
            help=text,
        )
    p.add_argument("--callback-url", metavar="URL", help="CometAPI posts the result here")
    _audio.add_audio_arguments(p)
    p.add_argument("--wait", action="store_true", help="follow the task until it ends")
    p.add_argument("--download", metavar="DIR", help="save the outputs to DIR (implies --wait)")
    p.add_argument(
        "--journal", metavar="PATH", help="journal the request (asking again does not pay twice)"
    )
    _global_options(p, on_command=True)

    p = command(
        "batch",
        "create a video for every line of a file, follow them all, save the results",
        "Create a video for every request in FILE: plain text (one prompt per line), JSONL "
        '(one object per line: {"prompt": ..., "type": ..., any request field}) or CSV '
        "(a header of field names). Every line is checked first: a bad one stops the run "
        "before anything is sent. The journal makes the run resumable and re-runnable "
        "without paying twice.",
    )
    p.add_argument("file", metavar="FILE", help="prompts: .txt, .jsonl or .csv")
    p.add_argument(
        "--format",
        choices=("auto", "text", "jsonl", "csv"),
        default="auto",
        help="how to read FILE (default: by its extension)",
    )
    p.add_argument(
        "--concurrency",
        type=_positive_int,
        default=8,
        metavar="N",
        help="creates in flight at once (default 8)",
    )
    p.add_argument(
        "--journal",
        metavar="PATH",
        help="the journal file (default: FILE.journal.sqlite next to FILE; temporary with --fake)",
    )
    p.add_argument(
        "--out", metavar="PATH", help="write one JSON line per input line here (atomically)"
    )
    p.add_argument(
        "--download",
        metavar="DIR",
        help="save every output to DIR (outputs already there from an earlier run are kept)",
    )
    p.add_argument(
        "--dry-run", action="store_true", help="check FILE and list the requests; send nothing"
    )
    _request_options(p, batch=True)
    _global_options(p, on_command=True)

    route_help = "feed (the default) for /runway/pro/* tasks, tasks for /runwayml/v1/* tasks"
    p = command("status", "poll a task once and print it")
    p.add_argument("task_id", metavar="TASK_ID")
    p.add_argument("--route", choices=("feed", "tasks"), default="feed", help=route_help)
    _global_options(p, on_command=True)

    p = command("wait", "follow a task until it ends")
    p.add_argument("task_id", metavar="TASK_ID")
    p.add_argument("--route", choices=("feed", "tasks"), default="feed", help=route_help)
    p.add_argument("--download", metavar="DIR", help="then save its outputs to DIR")
    _global_options(p, on_command=True)

    p = command("download", "wait for a task if needed, then save its outputs to DIR")
    p.add_argument("task_id", metavar="TASK_ID")
    p.add_argument("dir", metavar="DIR")
    p.add_argument("--route", choices=("feed", "tasks"), default="feed", help=route_help)
    _global_options(p, on_command=True)

    p = command("cancel", _cancel.SUMMARY, _cancel.DESCRIPTION)
    _cancel.add_cancel_arguments(p)
    _global_options(p, on_command=True)

    p = command(
        "resume",
        "follow every unfinished task of a journal to the end",
        "Follow every journaled task that has not finished (after Ctrl-C, a crash, or a "
        "lost connection), and list ambiguous creates with how to settle them. With "
        "--out, the results cover every row of the journal.",
    )
    p.add_argument("--journal", metavar="PATH", required=True, help="the batch's journal file")
    p.add_argument(
        "--download",
        metavar="DIR",
        help="save every succeeded task's outputs to DIR (those already there are kept)",
    )
    p.add_argument("--out", metavar="PATH", help="write one JSON line per journal row here")
    _global_options(p, on_command=True)

    p = command(
        "settle",
        "settle an ambiguous create: attach the task you found, or resubmit on purpose",
    )
    p.add_argument("--journal", metavar="PATH", required=True)
    p.add_argument("key", metavar="KEY", nargs="?", help="the row's key (or a unique prefix)")
    p.add_argument("--task-id", metavar="TASK_ID", help="the task the create did make")
    p.add_argument(
        "--resubmit",
        action="store_true",
        help="it was not created: let the next batch run create it (and pay for it)",
    )
    p.add_argument("--all", action="store_true", help="with --resubmit: every ambiguous row")
    p.add_argument(
        "--from", dest="source", metavar="FILE", help="attach ids from a CSV/JSONL of key,task_id"
    )
    _global_options(p, on_command=True)

    p = command(
        "fake-server",
        "serve a fake CometAPI for local development, until Ctrl-C",
        "Serve a fake CometAPI (every Runway route, tasks that take a few seconds) on "
        "HOST:PORT until Ctrl-C. Prints its URL on the first line of stdout.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: any free one)")
    p.add_argument(
        "--speed", type=_positive_float, default=1.0, metavar="X", help="tasks X times faster"
    )
    _global_options(p, on_command=True)

    p = command("report", _report.SUMMARY, _report.DESCRIPTION)
    _report.add_report_arguments(p)
    _global_options(p, on_command=True)
    return parser
