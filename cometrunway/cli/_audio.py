"""``generate --speech TEXT`` and ``generate --sound-effect TEXT``: the audio routes of the
wire reference §8.1 (``RunwayTextToSpeech``, ``RunwaySoundEffect``) on the command line.

The fields built here go through the same checks as a batch line with ``"type":
"text_to_speech"`` or ``"sound_effect"``; video-only options are refused by name.
"""

from __future__ import annotations

import argparse
from typing import Any

from ._common import CliError, ExitCode

__all__ = ["add_audio_arguments", "audio_fields"]

# generate's options that only make sense for a video: (flag, attribute).
_VIDEO_ONLY = (
    ("--image", "image"),
    ("--end-image", "end_image"),
    ("--ratio", "ratio"),
    ("--style", "style"),
    ("--seconds", "seconds"),
    ("--callback-url", "callback_url"),
    *(
        (f"--motion-{name.replace('_', '-')}", f"motion_{name}")
        for name in ("x", "y", "z", "r", "bg_x_pan", "bg_y_pan")
    ),
)


def add_audio_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("audio (instead of PROMPT, /runwayml/v1 routes)")
    kind = group.add_mutually_exclusive_group()
    kind.add_argument(
        "--speech", metavar="TEXT", help="speak TEXT (text_to_speech; an MP3, no video)"
    )
    kind.add_argument(
        "--sound-effect", metavar="TEXT", help="make the sound TEXT describes (sound_effect)"
    )
    group.add_argument("--voice", help="with --speech: a Runway preset voice (default Maya)")
    group.add_argument(
        "--duration",
        type=float,
        metavar="SECONDS",
        help="with --sound-effect: length, 0.5 to 30 seconds (default: the model decides)",
    )
    group.add_argument(
        "--loop", action="store_true", help="with --sound-effect: make it loop seamlessly"
    )


def audio_fields(args: argparse.Namespace) -> dict[str, Any] | None:
    """The request fields of ``--speech``/``--sound-effect``, or None without either;
    ``CliError`` (usage) naming the option that does not fit."""
    speech, effect = args.speech, args.sound_effect
    voice, duration, loop = args.voice, args.duration, args.loop or None
    if speech is None and effect is None:
        for flag, value in (("--voice", voice), ("--duration", duration), ("--loop", loop)):
            if value is not None:
                raise CliError(f"{flag} needs --speech or --sound-effect", ExitCode.USAGE)
        return None
    which = "--speech" if speech is not None else "--sound-effect"
    if args.prompt is not None:
        raise CliError(
            f"give PROMPT (a video) or {which} TEXT, not both: {which} takes the text itself",
            ExitCode.USAGE,
        )
    video = [flag for flag, name in _VIDEO_ONLY if getattr(args, name, None) is not None]
    if getattr(args, "image_as_end_frame", False):
        video.append("--image-as-end-frame")
    if video:
        raise CliError(f"{', '.join(video)}: only for a video, not with {which}", ExitCode.USAGE)
    fields: dict[str, Any]
    if speech is not None:
        for flag, value in (("--duration", duration), ("--loop", loop)):
            if value is not None:
                raise CliError(f"{flag} is for --sound-effect, not --speech", ExitCode.USAGE)
        fields = {"type": "RunwayTextToSpeech", "prompt_text": speech}
        if voice is not None:
            fields["voice"] = voice
    else:
        if voice is not None:
            raise CliError("--voice is for --speech, not --sound-effect", ExitCode.USAGE)
        fields = {"type": "RunwaySoundEffect", "prompt_text": effect}
        if duration is not None:
            fields["duration"] = duration
        if loop:
            fields["loop"] = True
    if args.model is not None:
        fields["model"] = args.model
    return fields
