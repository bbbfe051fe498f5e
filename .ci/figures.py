#!/usr/bin/env python3
"""Checks the SVG figures the examples draw: readable at a README's width, legends clear of the data.

    python3 .ci/figures.py FILE.svg ...

For each file: the root <svg> is at most 1600 px wide; every <text> has a font-size of at
least 12 px; it has at least 5 labels and something drawn; and no legend box covers a
curve. A legend box is plotters' pair of <rect>s (a white one at opacity 0.85, then a black
outline of the same geometry); the data are the series' lines (<polyline> of stroke-width 2),
their markers (<circle>) and histogram bars (a filled <rect> that is neither white nor the
legend), each drawn before the box. Legend samples are drawn after their box, so they do not
count. Exits 1 naming every failure.
"""

import sys
import xml.etree.ElementTree as ET

MAX_WIDTH = 1600
MIN_FONT_PX = 12.0


def tag(element):
    return element.tag.rsplit("}", 1)[-1]


def number(element, name):
    return float(element.get(name, "0"))


def points(polyline):
    out = []
    for pair in polyline.get("points", "").split():
        x, y = pair.split(",")
        out.append((float(x), float(y)))
    return out


def segment_meets_box(a, b, lo, hi):
    """Liang–Barsky: whether the segment a–b meets the box lo–hi (corners included)."""
    dx, dy = b[0] - a[0], b[1] - a[1]
    t0, t1 = 0.0, 1.0
    for p, q in ((-dx, a[0] - lo[0]), (dx, hi[0] - a[0]), (-dy, a[1] - lo[1]), (dy, hi[1] - a[1])):
        if p == 0:
            if q < 0:
                return False
        else:
            t = q / p
            if p < 0:
                t0 = max(t0, t)
            else:
                t1 = min(t1, t)
    return t0 <= t1


def is_legend_fill(e):
    return tag(e) == "rect" and e.get("opacity") == "0.85" and e.get("fill", "").upper() == "#FFFFFF"


def covered(element, lo, hi):
    """Whether a data element reaches inside the box lo–hi (its edge excluded)."""
    # Shrink the box by a pixel: a line that only touches the frame is not covered.
    lo, hi = (lo[0] + 1, lo[1] + 1), (hi[0] - 1, hi[1] - 1)
    kind = tag(element)
    if kind == "polyline":
        ps = points(element)
        return any(segment_meets_box(a, b, lo, hi) for a, b in zip(ps, ps[1:])) or (
            len(ps) == 1 and segment_meets_box(ps[0], ps[0], lo, hi))
    if kind == "circle":
        cx, cy, r = number(element, "cx"), number(element, "cy"), number(element, "r")
        return lo[0] - r < cx < hi[0] + r and lo[1] - r < cy < hi[1] + r
    if kind == "rect":
        x, y = number(element, "x"), number(element, "y")
        w, h = number(element, "width"), number(element, "height")
        return x < hi[0] and lo[0] < x + w and y < hi[1] and lo[1] < y + h
    return False


def is_data(element):
    kind = tag(element)
    if kind == "polyline":
        return element.get("stroke-width") == "2"
    if kind == "circle":
        return True
    if kind == "rect":
        fill = element.get("fill", "none").upper()
        return fill not in ("NONE", "#FFFFFF") and not is_legend_fill(element)
    return False


def check(path):
    problems = []
    root = ET.parse(path).getroot()
    width = number(root, "width")
    if width > MAX_WIDTH:
        problems.append(f"{width:.0f} px wide (at most {MAX_WIDTH})")
    elements = list(root.iter())
    texts = [e for e in elements if tag(e) == "text"]
    small = sorted({number(t, "font-size") for t in texts if number(t, "font-size") < MIN_FONT_PX})
    if small:
        problems.append(f"text at font-size {', '.join(f'{s:.2f}' for s in small)} px "
                        f"(at least {MIN_FONT_PX:.0f})")
    shapes = [e for e in elements if tag(e) in ("polyline", "path", "rect")]
    if len(texts) < 5 or not shapes:
        problems.append(f"{len(texts)} labels, {len(shapes)} shapes: not a chart")
    legends = 0
    for i, e in enumerate(elements):
        if not is_legend_fill(e):
            continue
        legends += 1
        x, y = number(e, "x"), number(e, "y")
        lo, hi = (x, y), (x + number(e, "width"), y + number(e, "height"))
        hits = [d for d in elements[:i] if is_data(d) and covered(d, lo, hi)]
        if hits:
            what = sorted({f"{tag(d)} {d.get('stroke') or d.get('fill')}" for d in hits})
            problems.append(f"the legend at ({x:.0f}, {y:.0f}) covers {len(hits)} data "
                            f"element(s): {', '.join(what)}")
    return width, len(texts), legends, problems


def main(paths):
    failed = False
    for path in paths:
        width, labels, legends, problems = check(path)
        if problems:
            failed = True
            for p in problems:
                print(f"FAIL {path}: {p}")
        else:
            print(f"ok   {path}: {width:.0f} px wide, {labels} labels at 12 px or more, "
                  f"{legends} legend(s) clear of the data")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
