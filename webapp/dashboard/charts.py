"""Server-side SVG charts (no JavaScript, no external service)."""

from __future__ import annotations

from html import escape
from typing import Any

COLOURS = {
    "api": "#2563eb",
    "slack": "#7c3aed",
    "salesforce": "#0891b2",
    "positive": "#15803d",
    "neutral": "#6b7280",
    "negative": "#b91c1c",
    "mixed": "#c2410c",
}


def stacked_days(daily: list[dict[str, Any]], keys: tuple[str, ...], title: str) -> str:
    """Stacked bars of ``day[by_source][key]`` per day, with an accessible title."""
    width, height, pad = 640, 180, 24
    peak = max((d["total"] for d in daily), default=0) or 1
    bar = (width - pad) / max(len(daily), 1)
    parts = [
        f'<svg role="img" aria-labelledby="t-{escape(title)}" viewBox="0 0 {width} '
        f'{height + pad}" class="chart" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="t-{escape(title)}">{escape(title)}</title>',
    ]
    for i, day in enumerate(daily):
        y = float(height)
        for key in keys:
            n = day["by_source"].get(key, 0) if "by_source" in day else 0
            h = n / peak * (height - pad)
            if n:
                y -= h
                x, w = pad + i * bar, bar * 0.8
                tip = escape(f"{day['date']} {key}: {n}")
                parts.append(
                    f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" '
                    f'fill="{COLOURS[key]}"><title>{tip}</title></rect>'
                )
    parts.append(f'<text x="0" y="{pad - 8}" font-size="11">{peak}</text>')
    parts.append(
        f'<line x1="{pad}" y1="{height}" x2="{width}" y2="{height}" stroke="#9ca3af"/>'
    )
    parts.append("</svg>")
    return "".join(parts)


def label_bars(counts: dict[str, int], title: str) -> str:
    """Horizontal bars of the label distribution."""
    total = sum(counts.values()) or 1
    rows = []
    for i, label in enumerate(("positive", "neutral", "negative", "mixed")):
        n = counts.get(label, 0)
        w = n / total * 440
        rows.append(
            f'<text x="0" y="{i * 28 + 18}" font-size="13">{label}</text>'
            f'<rect x="90" y="{i * 28 + 4}" width="{w:.1f}" height="18" '
            f'fill="{COLOURS[label]}"/>'
            f'<text x="{96 + w:.1f}" y="{i * 28 + 18}" font-size="12">{n}</text>'
        )
    return (
        f'<svg role="img" aria-label="{escape(title)}" viewBox="0 0 640 116" '
        f'class="chart" xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}'
        f"</title>{''.join(rows)}</svg>"
    )


def latency_lines(
    days: list[str], latency: dict[str, tuple[float, float]], title: str
) -> str:
    """Two lines, p50 and p95 (ms) per day; days without calls are gaps."""
    width, height, pad = 640, 180, 36
    peak = max((p95 for _p50, p95 in latency.values()), default=0.0) or 1.0
    step = (width - pad) / max(len(days) - 1, 1)
    parts = [
        f'<svg role="img" aria-label="{escape(title)}" viewBox="0 0 {width} '
        f'{height + 20}" class="chart" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
        f'<text x="0" y="12" font-size="11">{peak:.0f} ms</text>',
        f'<line x1="{pad}" y1="{height}" x2="{width}" y2="{height}" stroke="#9ca3af"/>',
    ]
    for index, (name, colour) in enumerate((("p50", "#2563eb"), ("p95", "#b91c1c"))):
        points = []
        for i, day in enumerate(days):
            if day not in latency:
                continue
            value = latency[day][index]
            x, y = pad + i * step, height - value / peak * (height - 20)
            points.append(f"{x:.1f},{y:.1f}")
            tip = escape(f"{day} {name}: {value:.1f} ms")
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}">'
                f"<title>{tip}</title></circle>"
            )
        if len(points) > 1:
            parts.append(
                f'<polyline points="{" ".join(points)}" fill="none" '
                f'stroke="{colour}" stroke-width="2"/>'
            )
        parts.append(
            f'<text x="{pad + index * 60}" y="{height + 16}" font-size="12" '
            f'fill="{colour}">{name}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
