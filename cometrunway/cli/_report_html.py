"""The report page's HTML from its cards: every text escaped, the CSS and JavaScript
beside this module inlined, a Content-Security-Policy that forbids loading anything else."""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from importlib import resources
from pathlib import Path

from ._cards import GROUPS, Card
from ._credits import credits_line, credits_of


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _seconds_text(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s" if minutes else f"{rest} s"


def _media_html(card: Card) -> str:
    poster = f' poster="{_e(card.poster)}"' if card.poster else ""
    if card.output and card.output_kind == "video":
        return f'<video controls preload="metadata"{poster} src="{_e(card.output)}"></video>'
    if card.output and card.output_kind == "audio":
        image = f'<img alt="poster" src="{_e(card.poster)}">' if card.poster else ""
        return f'{image}<audio controls preload="metadata" src="{_e(card.output)}"></audio>'
    if card.output and card.output_kind == "image":
        return f'<img alt="output" src="{_e(card.output)}">'
    if card.poster:
        return f'<img alt="poster" src="{_e(card.poster)}">'
    return '<div class="none">no saved output</div>'


def _card_html(card: Card) -> str:
    facts = [("type", _e(card.request_type))]
    if card.task_id:
        facts.append(("task", f"<code>{_e(card.task_id)}</code>"))
    length = f"{card.requested_seconds:g} s asked" if card.requested_seconds else "—"
    facts.append(("length", f'{_e(length)}<span class="played"></span>'))
    if card.took_seconds is not None:
        facts.append(("took", _e(_seconds_text(card.took_seconds))))
    if card.credits is not None:
        facts.append(("credits", f'<span class="credits">{_e(card.credits)}</span>'))
    facts.append(("key", f"<code>{_e(card.key[:16])}</code>"))
    rows = "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in facts)
    parts = [
        f'<article class="card" data-group="{_e(card.group)}">',
        f'<div class="media">{_media_html(card)}</div>',
        '<div class="text">',
        f'<p class="status {_e(card.group)}">{_e(card.status)}</p>',
        f'<h2 class="prompt">{_e(card.title)}</h2>',
        f"<dl>{rows}</dl>",
    ]
    if card.error:
        parts.append(f'<p class="error">{_e(card.error)}</p>')
    if card.settle:
        parts.append(
            '<p class="hint">The create may have reached the server. Found the task in your '
            "CometAPI task list? Attach it. Sure it was not created? Resubmit (pays again).</p>"
        )
        parts += [f'<pre class="settle">{_e(command)}</pre>' for command in card.settle]
    parts.append("</div></article>")
    return "".join(parts)


def _asset(name: str) -> str:
    # Shipped beside this module, inlined into every page: the page stays one file.
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


# Nothing but this file and the files beside it: no server, no CDN, no fonts from elsewhere.
_POLICY = (
    "default-src 'none'; img-src 'self' file: data:; media-src 'self' file:; "
    "style-src 'unsafe-inline'; script-src 'unsafe-inline'"
)


def render_report(cards: Sequence[Card], *, journal: str, generated: datetime) -> str:
    """The whole page for ``cards``."""
    counts = Counter(card.group for card in cards)
    buttons = [f'<button type="button" data-filter="all" aria-pressed="true">All ({len(cards)})']
    buttons += [
        f'<button type="button" data-filter="{group}" aria-pressed="false">'
        f"{label} ({counts[group]})"
        for group, label in GROUPS.items()
        if counts[group]
    ]
    summary = ", ".join(f"{counts[g]} {label.lower()}" for g, label in GROUPS.items() if counts[g])
    # The same total a batch's end summary prints, from the figures the journal kept.
    tasks = [(card.cost, card.estimated_cost) for card in cards if card.task_id is not None]
    total = credits_line(credits_of(tasks)) or "credits: none (no task was created)"
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f'<meta http-equiv="Content-Security-Policy" content="{_POLICY}">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>cometrunway batch · {_e(Path(journal).name)}</title>",
            f"<style>{_asset('report.css')}</style></head><body>",
            f"<h1>Batch report: {len(cards)} request{'s' if len(cards) != 1 else ''}</h1>",
            f'<p class="meta">journal <code>{_e(journal)}</code> · {_e(summary or "empty")}'
            f" · written {_e(generated.strftime('%Y-%m-%d %H:%M UTC'))}</p>",
            f'<p class="meta total">{_e(total)}</p>',
            f'<nav class="filters">{"</button>".join(buttons)}</button></nav>',
            '<main class="cards">',
            *(_card_html(card) for card in cards),
            "</main>",
            f"<script>{_asset('report.js')}</script>",
            "</body></html>",
            "",
        ]
    )


# ---------------------------------------------------------------- reading and writing
