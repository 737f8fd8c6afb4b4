"""Which model ids each official-format route knows today, and which were retired.

The model stays an open string everywhere (CometAPI forwards it, and Runway adds models
often): these tables only feed defaults and error messages, never a refusal of an unknown id.
Checked on ``MODEL_IDS_CHECKED`` against the wire reference §8.3 and the ``runwayml`` SDK's
request types (5.24.0); docs/quirks.md lists them for users.
"""

from __future__ import annotations

from collections.abc import Mapping

MODEL_IDS_CHECKED = "2026-11-30"

# Current ids per route, as Runway's SDK types name them (wire reference §8.3).
KNOWN_MODELS: Mapping[str, tuple[str, ...]] = {
    "image_to_video": ("gen4_turbo", "gen4.5", "veo3.1", "veo3.1_fast"),
    "video_to_video": ("aleph2",),
    "video_upscale": ("magnific_video_upscaler_creative", "enhance_frame_rate"),
    "character_performance": ("act_two",),
    "text_to_image": ("gen4_image", "gen4_image_turbo"),
    "text_to_speech": ("eleven_multilingual_v2", "eleven_v3", "eleven_v4"),
    "sound_effect": ("eleven_text_to_sound_v2",),
}

# Retired at Runway, still shown on CometAPI's pages (wire reference §8.3): id -> why.
RETIRED_MODELS: Mapping[str, str] = {
    "gen4_aleph": "left Runway's official parameters in SDK 5.0.0 (2026-06-10)",
    "gen3a_turbo": "left Runway's official parameters in SDK 5.0.0 (2026-06-10)",
    "upscale_v1": "was sunset at Runway in SDK 4.3.0 (2026-01-17)",
}

# image_to_video models Runway refuses without a ``ratio`` (wire reference §8.3), and the
# ratio the client sends for them when none is given: every one of them accepts it.
RATIO_REQUIRED_MODELS = frozenset({"gen4_turbo", "gen4.5", "veo3.1", "veo3.1_fast"})
DEFAULT_VIDEO_RATIO = "1280:720"

# image_to_video models that take only a first frame (wire reference §8.3; SDK types).
FIRST_FRAME_ONLY_MODELS = frozenset({"gen4_turbo", "gen4.5"})


def model_must_be_named(cls_name: str, route: str, retired: str) -> str:
    """The message for a route whose old default model was retired: name one, and why."""
    known = ", ".join(repr(m) for m in KNOWN_MODELS[route])
    return (
        f"{cls_name}.model must be named: the former default {retired!r} "
        f"{RETIRED_MODELS[retired]} (see docs/quirks.md, §8.3), and no current model is documented "
        f"for CometAPI's {route} route. Known ids at Runway (checked {MODEL_IDS_CHECKED}): "
        f"{known}; CometAPI's pages still show {retired!r}, pass it explicitly to use it "
        f"there. Any other id is sent as given."
    )
