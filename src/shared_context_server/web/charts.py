"""Charts drawn on the server as inline SVG: no script, no library, nothing to load."""

from __future__ import annotations

from markupsafe import Markup, escape

WIDTH, HEIGHT, PAD = 600, 140, 24


def bars(values: list[int] | list[float], label: str, unit: str = "") -> Markup:
    """A bar per value (oldest left), scaled to the largest, with the label, the peak and
    the latest value; each bar's value in its tooltip."""
    peak = max(values, default=0)
    scale = peak or 1
    step = (WIDTH - 2 * PAD) / max(len(values), 1)
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(label)}" preserveAspectRatio="none">',
        f'<text x="{PAD}" y="14" class="chart-label">{escape(label)}</text>',
        f'<text x="{WIDTH - PAD}" y="14" class="chart-peak" text-anchor="end">'
        f"peak {_number(peak)}{escape(unit)} · now {_number(values[-1] if values else 0)}"
        f"{escape(unit)}</text>",
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" '
        'class="chart-axis"/>',
    ]
    room = HEIGHT - 2 * PAD - 4
    for i, value in enumerate(values):
        height = room * value / scale
        x = PAD + i * step
        y = HEIGHT - PAD - height
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(step - 1, 1):.1f}" height="{height:.1f}" '
            f'class="chart-bar"><title>{_number(value)}{escape(unit)}</title></rect>'
        )
    parts.append(
        f'<text x="{PAD}" y="{HEIGHT - 6}" class="chart-tick">-{len(values)} min</text>'
        f'<text x="{WIDTH - PAD}" y="{HEIGHT - 6}" class="chart-tick" text-anchor="end">now</text>'
        "</svg>"
    )
    return Markup("".join(parts))  # noqa: S704 (numbers and escaped text only)


def _number(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)
