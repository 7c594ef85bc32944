"""The page at `/`: every original in a responsive <picture>, beside the variants served."""

from __future__ import annotations

import html

from edge import variants

WIDTHS_SHOWN = (320, 640, 1024, 1600)
SIZES = "(max-width: 720px) 100vw, 640px"

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>image-cdn · {stack}</title>
<style>
body {{ font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; padding: 0 1rem; color: #222; }}
header p {{ color: #555; }}
section {{ display: grid; grid-template-columns: minmax(0, 640px) minmax(0, 1fr); gap: 1.5rem; margin: 2rem 0;
  border-top: 1px solid #ddd; padding-top: 1rem; }}
section > div {{ overflow-x: auto; }}
@media (max-width: 720px) {{ section {{ grid-template-columns: minmax(0, 1fr); }} }}
img {{ width: 100%; height: auto; background: repeating-conic-gradient(#eee 0 25%, #fff 0 50%) 0 0/16px 16px; }}
table {{ border-collapse: collapse; font-variant-numeric: tabular-nums; }}
td, th {{ padding: .15rem .6rem; text-align: right; border-bottom: 1px solid #eee; }}
code {{ font-size: 13px; }}
</style></head>
<body>
<header><h1>image-cdn, running locally</h1>
<p>Stack <b>{stack}</b>; primary origin is <b id="primary">{primary}</b>.
Each picture below is a <code>&lt;picture&gt;</code> with a <code>srcset</code>: your browser picks a width,
its Accept header picks the format (AVIF, WebP or JPEG), and the viewer function snaps both to a canonical
variant. The table lists what has been stored for each original so far.</p></header>
{sections}
<pre id="report" hidden></pre>
<script>
window.addEventListener("load", () => {{
  const report = [...document.images].map(img => ({{
    key: img.dataset.key, naturalWidth: img.naturalWidth, currentSrc: img.currentSrc, complete: img.complete }}));
  document.getElementById("report").textContent = JSON.stringify(report);
  fetch("/_localcdn/variants").then(r => r.json()).then(data => {{
    for (const table of document.querySelectorAll("table[data-key]")) {{
      const original = data[table.dataset.key];
      if (!original) continue;
      const rows = original.variants.map(v =>
        `<tr><td>${{v.width}}${{v.height ? "×" + v.height : ""}}</td><td>${{v.format}}</td><td>q${{v.quality}}</td>` +
        `<td>${{(v.bytes / 1024).toFixed(1)}} KB</td><td>${{(100 * v.bytes / original.bytes).toFixed(1)}}%</td></tr>`);
      table.tBodies[0].innerHTML = rows.join("") || "<tr><td colspan=5>none yet</td></tr>";
    }}
  }});
}});
</script>
</body></html>
"""

SECTION = """<section>
<picture>
  <source srcset="{srcset}" sizes="{sizes}">
  <img src="{src}" srcset="{srcset}" sizes="{sizes}" alt="{key}" data-key="{key}" decoding="async">
</picture>
<div><h2>{key}</h2><p>original: {kb:.1f} KB</p>
<table data-key="{key}"><thead><tr><th>width</th><th>format</th><th>quality</th><th>bytes</th>
<th>of original</th></tr></thead><tbody><tr><td colspan=5>loading…</td></tr></tbody></table></div>
</section>"""


def render(stack: str, primary: str, originals: list[tuple[str, int]]) -> str:
    sections = []
    for key, size in originals:
        path = "/" + variants.encode_key(key)
        srcset = ", ".join(f"{path}?w={width} {width}w" for width in WIDTHS_SHOWN)
        sections.append(
            SECTION.format(
                srcset=html.escape(srcset),
                sizes=SIZES,
                src=html.escape(f"{path}?w=640"),
                key=html.escape(key),
                kb=size / 1024,
            )
        )
    body = "\n".join(sections) or "<p>No originals yet: start with <code>--originals DIR</code>.</p>"
    return PAGE.format(stack=html.escape(stack), primary=html.escape(primary), sections=body)


def variant_table(originals: list[tuple[str, int]], stored: dict[str, list[tuple[str, int]]]) -> dict[str, object]:
    """What /_localcdn/variants answers: per original, its size and every stored variant."""
    result: dict[str, object] = {}
    for key, size in originals:
        rows = []
        for spec, length in stored.get(key, []):
            try:
                variant = variants.parse(f"/{variants.encode_key(key)}/{spec}")
            except variants.VariantError:
                continue
            rows.append(
                {
                    "spec": spec,
                    "width": variant.width,
                    "height": variant.height,
                    "quality": variant.quality,
                    "format": variant.fmt,
                    "bytes": length,
                }
            )
        rows.sort(key=lambda row: (row["format"], row["width"]))
        result[key] = {"bytes": size, "variants": rows}
    return result
