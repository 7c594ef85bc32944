"""The page at `/`: every original in a responsive <picture>, beside the variants served."""

from __future__ import annotations

import html
from collections.abc import Callable

from edge import variants
from edge.settings import Settings

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
h1, h2 {{ overflow-wrap: anywhere; }}
@media (max-width: 720px) {{ section {{ grid-template-columns: minmax(0, 1fr); }} }}
img {{ width: 100%; height: auto; background: repeating-conic-gradient(#eee 0 25%, #fff 0 50%) 0 0/16px 16px; }}
/* A variant table fits its column (narrow cells, headings that wrap); on a screen too narrow even
   for that, it scrolls inside its own box, never the page. */
.variants {{ overflow-x: auto; max-width: 100%; }}
table {{ border-collapse: collapse; font-variant-numeric: tabular-nums; }}
td, th {{ padding: .15rem .6rem; text-align: right; border-bottom: 1px solid #eee; }}
td {{ white-space: nowrap; }}
@media (max-width: 720px) {{ table {{ font-size: 13px; }} td, th {{ padding: .15rem .3rem; }} }}
code {{ font-size: 13px; overflow-wrap: anywhere; }}
#catalogue form {{ display: flex; flex-wrap: wrap; gap: .5rem; margin: .5rem 0; align-items: center; }}
#catalogue input {{ min-width: 0; max-width: 100%; }}
#images {{ list-style: none; padding: 0; display: grid; gap: 1rem;
  grid-template-columns: repeat(auto-fill, minmax(160px, 1fr)); }}
/* The placeholder (dominant colour, then the blurred preview) only until the image has loaded: a
   transparent image then shows the page through, not its dominant colour. */
#images img {{ background: none; }}
#images img.pending {{ background: var(--colour) var(--preview) center / cover no-repeat; }}
#images figcaption {{ font-size: 13px; color: #555; overflow-wrap: anywhere; }}
.strip {{ display: flex; flex-wrap: wrap; gap: .75rem; margin: .5rem 0; }}
.strip figure {{ margin: 0; max-width: 240px; }}
.strip figcaption {{ font-size: 13px; color: #555; }}
/* q=60 beside q=auto: two columns while each can be 140 px, one under the other below that. */
.compare {{ display: grid; grid-template-columns: repeat(auto-fit, minmax(140px, 1fr)); gap: .75rem;
  margin: .75rem 0; }}
.compare figure {{ margin: 0; min-width: 0; }}
.compare figcaption {{ font-size: 13px; color: #555; overflow-wrap: anywhere; }}
.tag {{ display: inline-block; background: #eef; border-radius: 3px; padding: 0 .3rem; margin-right: .2rem; }}
</style></head>
<body>
<header><h1>image-cdn, running locally</h1>
<p>Stack <b>{stack}</b>; primary origin is <b id="primary">{primary}</b>.
Each picture below is a <code>&lt;picture&gt;</code> with a <code>srcset</code>: your browser picks a width,
its Accept header picks the format (AVIF, WebP or JPEG), and the viewer function snaps both to a canonical
variant. The table lists what has been stored for each original so far.</p>
{quality}</header>
{metrics}
{features}
{catalogue}
{sections}
<pre id="report" hidden></pre>
<script>
window.addEventListener("load", () => {{
  const report = [...document.querySelectorAll("picture img")].map(img => ({{
    key: img.dataset.key, naturalWidth: img.naturalWidth, currentSrc: img.currentSrc, complete: img.complete }}));
  document.getElementById("report").textContent = JSON.stringify(report);
  // A variant's quality 0 is q=auto (edge/settings.py AUTO).
  fetch("/_localcdn/variants").then(r => r.json()).then(data => {{
    for (const table of document.querySelectorAll("table[data-key]")) {{
      const original = data[table.dataset.key];
      if (!original) continue;
      const rows = original.variants.map(v =>
        `<tr><td>${{v.width}}${{v.height ? "×" + v.height : ""}}</td><td>${{v.format}}</td>` +
        `<td>${{v.quality === 0 ? "q=auto" : "q" + v.quality}}</td>` +
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
<div class="variants"><table data-key="{key}"><thead><tr><th>width</th><th>format</th><th>quality</th>
<th>bytes</th><th>of original</th></tr></thead><tbody><tr><td colspan=5>loading…</td></tr></tbody></table></div>
{compare}</div>
</section>"""

# Today's q=60 beside q=auto (localcdn/quality.py scores them): the images as the CDN serves them, in
# the format this browser gets, and captions filled from /_localcdn/quality/<key>.
COMPARE = """<div class="compare" data-key="{key}" data-format="{fmt}">{figures}</div>"""
COMPARED = (
    '<figure><img src="{src}" alt="{key} at {label}" width="{width}" data-quality="{label}">'
    '<figcaption data-quality="{label}">{label} · measuring…</figcaption></figure>'
)
QUALITY = """<p id="quality">Beside each original: today's <code>q=60</code> and <code>q=auto</code> at
{width} px in {format_name} (the format your browser gets), each with its bytes and its {metric} score
against the resized original, the pixels before any lossy encode: higher is better; 90 is visually lossless,
80 very high, 70 high (artifacts hard to see without the original), 50 medium, 30 low. {target}</p>
<script>
window.addEventListener("load", async () => {{
  for (const box of document.querySelectorAll(".compare[data-key]")) {{
    const key = box.dataset.key.split("/").map(encodeURIComponent).join("/");
    let data;
    try {{
      const answer = await fetch(`/_localcdn/quality/${{key}}?fm=${{box.dataset.format}}`);
      data = await answer.json();
      if (!answer.ok) throw new Error(data.message || "HTTP " + answer.status);
    }} catch (error) {{
      for (const caption of box.querySelectorAll("figcaption")) caption.textContent = "not measured: " + error.message;
      continue;
    }}
    for (const row of data.variants) {{
      const caption = box.querySelector(`figcaption[data-quality="${{row.label}}"]`);
      if (!caption) continue;
      const kb = (row.bytes / 1024).toFixed(1) + " KB";
      const kept = row.source === "original" ? " (the original's own bytes)" : "";
      const score = row.score === null ? data.unavailable || "no score" : `${{data.metric}} ${{row.score.toFixed(1)}}`;
      caption.textContent = row.status !== 200 ? `${{row.label}} · HTTP ${{row.status}}`
        : `${{row.label}} · ${{kb}}${{kept}} · ${{score}}`;
      caption.dataset.bytes = row.bytes;
      caption.dataset.score = row.score;
    }}
  }}
}});
</script>"""
QUALITY_TARGET = (
    "This stack's <code>qualityTarget</code> is <b>{target}</b>: q=auto aims at a score of {score} in this format."
)
QUALITY_OFF = (
    '<span id="quality-off">q=auto is off on this stack (no <code>qualityTarget</code>): start the emulator with '
    "<code>{command}</code> to compare it with q=60.</span>"
)
FORMAT_NAMES = {"avif": "AVIF", "webp": "WebP", "jpeg": "JPEG", "png": "PNG", "jxl": "JPEG XL"}


CATALOGUE = """<section id="catalogue" style="display:block">
<h2>Catalogue</h2>
<p>Uploads go straight to the bucket with a presigned POST from the catalogue's API (here called
as your app's backend would, through <code>/_localcdn/app/</code>); the metadata function adds each
one, with its placeholder, and the CDN renders it.</p>
<form id="upload"><input type="file" name="file" accept="image/*,.heic,.heif" required>
<input name="tags" placeholder="tags, comma separated" aria-label="tags">
<button>Upload</button> <output id="upload-status"></output></form>
<form id="filter"><input name="tag" placeholder="filter by tag" aria-label="tag">
<button>Filter</button> <button type="button" id="all">All</button></form>
<ul id="images"></ul>
<button type="button" id="more" hidden>More</button>
</section>
<script>
const APP = "/_localcdn/app";
const TYPES = {{jpg: "image/jpeg", jpeg: "image/jpeg", png: "image/png", gif: "image/gif", webp: "image/webp",
  avif: "image/avif", heic: "image/heic", heif: "image/heif", hif: "image/heif"}};
// A received value as the text it was: the API shows it JSON-quoted (a tag, JSON-quoted twice).
function asText(value) {{
  let text = String(value ?? "");
  for (let layer = 0; layer < 3 && /^"[\\s\\S]*"$/.test(text); layer++) {{
    try {{ const inner = JSON.parse(text); if (typeof inner !== "string") break; text = inner; }} catch {{ break; }}
  }}
  return text;
}}
// A refusal as a sentence: every 4xx of the API names the parameter, what it expected and what it
// received (edge/problems.py); anything else by its message, else its status.
function refusal(data, status) {{
  if (data && typeof data === "object" && data.parameter && data.expected)
    return `${{data.parameter}}: “${{asText(data.received)}}” is not accepted; expected ${{data.expected}}`;
  if (data && typeof data === "object" && typeof data.message === "string") return data.message;
  return "HTTP " + status;
}}
async function api(method, path, body) {{
  const answer = await fetch(APP + path, {{method, headers: {{"Content-Type": "application/json"}},
    body: body === undefined ? undefined : JSON.stringify(body)}});
  const text = await answer.text();
  let data = null;
  try {{ data = JSON.parse(text); }} catch {{}}
  if (!answer.ok) throw new Error(refusal(data, answer.status));
  if (data === null) throw new Error("the API answered something other than JSON");
  return data;
}}
// S3's refusal is XML: its Code and Message, not the document.
function s3Refusal(status, text) {{
  const xml = new DOMParser().parseFromString(text, "application/xml");
  const code = xml.querySelector("Error > Code")?.textContent;
  const message = xml.querySelector("Error > Message")?.textContent;
  if (!code && !message) return `S3 refused the upload (${{status}})` + (text ? ": " + text.slice(0, 200) : "");
  return `S3 refused the upload (${{status}}${{code ? " " + code : ""}})` + (message ? ": " + message : "");
}}
function card(image) {{
  const item = document.createElement("li");
  item.dataset.id = image.id;
  const img = document.createElement("img");
  img.alt = image.filename;
  img.dataset.key = image.key;
  img.style.aspectRatio = image.width + " / " + image.height;
  img.dataset.placeholder = image.placeholder;
  // The dominant colour and the preview stand in while the image loads, and go once it has.
  img.className = "pending";
  img.style.setProperty("--colour", image.colour);
  img.style.setProperty("--preview", `url("${{image.placeholder}}")`);
  img.addEventListener("load", () => img.classList.remove("pending"));
  img.sizes = "(max-width: 720px) 50vw, 240px";
  img.srcset = image.srcset;
  img.src = Object.values(image.widths)[0];
  const caption = document.createElement("figcaption");
  caption.textContent = image.filename + " · " + image.width + "×" + image.height + " " + image.format + " ";
  for (const tag of image.tags) {{
    const label = document.createElement("span");
    label.className = "tag";
    label.textContent = tag;
    caption.append(label);
  }}
  item.append(img, caption);
  return item;
}}
let cursor = null, tag = "";
async function list(more) {{
  const query = new URLSearchParams({{limit: "24"}});
  if (tag) query.set("tag", tag);
  if (more && cursor) query.set("cursor", cursor);
  const page = await api("GET", "/images?" + query);
  const grid = document.getElementById("images");
  if (!more) grid.replaceChildren();
  for (const image of page.images) grid.append(card(image));
  cursor = page.cursor;
  document.getElementById("more").hidden = !cursor;
}}
document.getElementById("more").addEventListener("click", () => list(true));
document.getElementById("filter").addEventListener("submit", event => {{
  event.preventDefault();
  tag = new FormData(event.target).get("tag").trim().toLowerCase();
  list(false).catch(error => {{ document.getElementById("upload-status").value = error.message; }});
}});
document.getElementById("all").addEventListener("click", () => {{ tag = ""; list(false); }});
document.getElementById("upload").addEventListener("submit", async event => {{
  event.preventDefault();
  const status = document.getElementById("upload-status");
  const form = new FormData(event.target);
  const file = form.get("file");
  const tags = String(form.get("tags") || "").split(",").map(t => t.trim().toLowerCase()).filter(Boolean);
  const extension = file.name.split(".").pop().toLowerCase();
  try {{
    status.value = "signing…";
    const signed = await api("POST", "/uploads", {{filename: file.name, content_type: TYPES[extension] || file.type,
      tags, bytes: file.size}});
    const post = new FormData();
    for (const [name, value] of Object.entries(signed.upload.fields)) post.append(name, value);
    post.append("file", file);
    status.value = "uploading…";
    const stored = await fetch(signed.upload.url, {{method: "POST", body: post}});
    if (!stored.ok) throw new Error(s3Refusal(stored.status, await stored.text()));
    status.value = "reading metadata…";
    for (let attempt = 0; attempt < 120; attempt++) {{
      const image = await api("GET", "/images/" + signed.id);
      if (image.status === "ready") {{
        document.getElementById("images").prepend(card(image));
        status.value = "uploaded " + image.filename;
        return;
      }}
      if (image.status === "rejected") throw new Error(image.reason);
      await new Promise(done => setTimeout(done, 250));
    }}
    throw new Error("no metadata after 30 s");
  }} catch (error) {{
    status.value = "failed: " + error.message;
  }}
}});
list(false).catch(error => {{ document.getElementById("upload-status").value = error.message; }});
</script>"""


FEATURES = """<section id="features" style="display:block">
<h2>Presets, crops and signed URLs</h2>
<p>On <code>{key}</code>: each stack preset (<code>?preset=</code>), then <code>fit=cover</code> cut four ways
(<code>crop=</code>; <code>faces</code> here asks the emulator's labelled stand-in, not Rekognition), then
{signing}</p>
<div class="strip">{presets}</div>
<div class="strip">{crops}</div>
<div class="strip">{signed}</div>
</section>"""
FIGURE = (
    '<figure><img src="{src}" alt="{caption}" width="{width}" data-feature="{feature}">'
    "<figcaption><code>{caption}</code></figcaption></figure>"
)
DEMO_KEYS = ("samples/people.jpg", "samples/landscape.jpg")


def features(originals: list[tuple[str, int]], settings: Settings, sign: Callable[[str], str] | None) -> str:
    """The features section: presets, the crop strategies side by side, a signed URL and a forged one."""
    keys = [key for key, _ in originals]
    key = next((k for k in DEMO_KEYS if k in keys), keys[0] if keys else None)
    if key is None:
        return ""
    path = "/" + variants.encode_key(key)

    def figure(url: str, caption: str, feature: str, width: int = 160) -> str:
        return FIGURE.format(src=html.escape(url), caption=html.escape(caption), feature=feature, width=min(width, 240))

    presets = (
        "".join(figure(f"{path}?preset={name}", f"?preset={name}", "preset", w) for name, w, *_ in settings.presets)
        or "<p>This stack has no presets.</p>"
    )
    crops = "".join(
        figure(f"{path}?w=320&h=320&crop={crop}", f"crop={crop}", f"crop-{crop}") for crop in settings.crops
    )
    if sign is None:
        return FEATURES.format(
            key=html.escape(key), presets=presets, crops=crops, signing="signing is off on this stack.", signed=""
        )
    good = sign(f"{path}?w=320&h=320&crop=attention")
    forged = good.replace("w=320", "w=2560", 1)
    signed = figure(good, "signed", "signed") + figure(forged, "forged: w changed (403)", "forged")
    mode = html.escape(settings.signing)
    note = f"a URL signed with the current key (signing: <b>{mode}</b>) and the same URL with its width changed."
    return FEATURES.format(key=html.escape(key), presets=presets, crops=crops, signing=note, signed=signed)


# Small live charts of the emulator's CloudWatch stand-in (/_localcdn/metrics, localcdn/metrics.py):
# one SVG polyline per signal, the last 30 minutes, redrawn every 5 seconds.
CHARTED = ("requests", "hits", "misses", "failovers", "substitutes")
METRICS = """<div id="metrics" style="display:flex;flex-wrap:wrap;gap:1rem;margin:1rem 0">
{charts}
</div>
<script>
async function drawMetrics() {{
  const data = await (await fetch("/_localcdn/metrics")).json();
  const series = data.series.slice(-30);
  for (const figure of document.querySelectorAll("#metrics figure")) {{
    const name = figure.dataset.signal;
    const values = series.map(point => point[name]);
    const top = Math.max(1, ...values);
    const points = values.map((v, i) => `${{(i * 160 / Math.max(1, values.length - 1)).toFixed(1)}},` +
      `${{(38 - v * 36 / top).toFixed(1)}}`).join(" ");
    figure.querySelector("polyline").setAttribute("points", points);
    const latest = values[values.length - 1] || 0;
    figure.querySelector("output").textContent = `${{latest}}/min · ${{data.totals[name]}} in all`;
  }}
}}
drawMetrics();
setInterval(drawMetrics, 5000);
</script>"""
CHART = (
    '<figure data-signal="{name}" style="margin:0;font-size:13px;color:#555">'
    '<svg width="160" height="40" viewBox="0 0 160 40" role="img" aria-label="{name} per minute">'
    '<polyline fill="none" stroke="#36c" stroke-width="1.5" points=""/></svg>'
    "<figcaption>{name} <output></output></figcaption></figure>"
)


def render(
    stack: str,
    primary: str,
    originals: list[tuple[str, int]],
    *,
    catalog: bool = False,
    settings: Settings | None = None,
    sign: Callable[[str], str] | None = None,
    fmt: str = "jpeg",
) -> str:
    """The page; `fmt`: the format this browser gets (its Accept), which the comparison is shown in."""
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
                compare=compare(key, settings, sign, fmt) if settings is not None else "",
            )
        )
    body = "\n".join(sections) or "<p>No originals yet: start with <code>--originals DIR</code>.</p>"
    return PAGE.format(
        stack=html.escape(stack),
        primary=html.escape(primary),
        sections=body,
        features=features(originals, settings, sign) if settings is not None else "",
        catalogue=CATALOGUE.format() if catalog else "",
        quality=quality_note(settings, fmt) if settings is not None and originals else "",
        metrics=METRICS.format(charts="\n".join(CHART.format(name=name) for name in CHARTED)),
    )


def compare(key: str, settings: Settings, sign: Callable[[str], str] | None, fmt: str) -> str:
    """One original's q=60 and (on a stack with a qualityTarget) q=auto, as the CDN serves them."""
    from localcdn import quality

    path = "/" + variants.encode_key(key)
    shown = [f"q={quality.TODAY}"] + (["q=auto"] if settings.quality_target else [])
    figures = []
    for label in shown:
        url = f"{path}?w={quality.WIDTH}&{label}&fm={fmt}"
        if sign is not None and settings.signing == "required":
            url = sign(url)
        figures.append(COMPARED.format(src=html.escape(url), key=html.escape(key), label=label, width=quality.WIDTH))
    return COMPARE.format(key=html.escape(key), fmt=fmt, figures="".join(figures))


def quality_note(settings: Settings, fmt: str) -> str:
    """What the comparisons show and how to read the score; how to turn q=auto on, when it is off."""
    from edge.imaging import calibrated
    from localcdn import quality

    if settings.quality_target:
        target = QUALITY_TARGET.format(
            target=html.escape(settings.quality_target), score=calibrated(fmt, settings.quality_target).score
        )
    else:
        target = QUALITY_OFF.format(command=html.escape(quality.ENABLE))
    return QUALITY.format(
        width=quality.WIDTH, format_name=FORMAT_NAMES.get(fmt, fmt), metric=quality.METRIC, target=target
    )


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
