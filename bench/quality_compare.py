"""Bytes at the same quality: E-co Gram's default output against thumbor 7.8 and libvips at q80.

    PYTHONPATH=. .venv/bin/python bench/quality_compare.py [--skip-thumbor] [--count 20]

Photos: the four bench photos (../shared/bench-images when present, else bench/images) plus
``--count`` SYNTHETIC product photos drawn here with pyvips from fixed seeds (on white with a
shadow, lifestyle-like textured scenes, textile-like fine patterns, glossy gradients with
highlights), written as JPEG q92 into a temporary folder. Nothing is downloaded.

For each photo, 400 and 800 wide, WebP and AVIF:
- **ecogram**: a fresh database, ``ecogram serve`` with its default settings (bench's test
  secret, ``ECOGRAM_ALLOWED_SIZES='*'``), the photo imported and approved through the API (the
  calibration runs at approval with the default ``ECOGRAM_QUALITY_*`` settings), then
  ``/img/{code}?w=W&fmt=F`` without ``q``;
- **thumbor 7.8** (its venv from delivery_bench.py), file loader,
  ``/unsafe/Wx0/filters:format(F):quality(80)/name.jpg`` (thumbor's default quality is 80);
- **libvips q80**: ``pyvips.Image.thumbnail(original, W)`` (into sRGB when the original
  carries a profile: libvips' own colour management) then ``webpsave Q=80`` or
  ``heifsave Q=80 compression=av1`` with libvips' other defaults (AVIF effort 4).

Each output, as a colour-managed browser shows it (into sRGB when it carries a profile), is
scored (SSIMULACRA2, ``ecogram.imaging.quality.score``) against the original at that output's
exact size, in sRGB, not encoded (``quality.reference``, the calibration's own reference).
Target (issue 15): median ecogram bytes at least 25 % under the q80 reference, and every
ecogram score >= min(reference's score, 70).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pyvips

sys.path.insert(0, str(Path(__file__).resolve().parent))

import delivery_bench as db

from ecogram.imaging import quality

WIDTHS = (400, 800)
FORMATS = ("webp", "avif")


# --------------------------------------------------------------------------------------------
# synthetic product photos (deterministic)


def _rgb(image: pyvips.Image) -> pyvips.Image:
    return image.cast("uchar").copy(interpretation="srgb")


def _clip(image: pyvips.Image) -> pyvips.Image:
    return (image > 255).ifthenelse(255, (image < 0).ifthenelse(0, image))


def _octaves(w: int, h: int, seed: int) -> pyvips.Image:
    """Smooth multi-scale noise in 0..1 (a stand-in for a fractal surface: this libvips has no
    FFT): seeded small noise fields enlarged and summed, coarse ones weighted most."""
    total = None
    for level, cells in enumerate((6, 12, 24, 48, 96)):
        small = _noise(cells, max(2, cells * h // w), 1.0, seed * 10 + level)
        big = small.resize(w / small.width, vscale=h / small.height, kernel="cubic")
        big = big.crop(0, 0, w, h) if big.width >= w and big.height >= h else big.embed(
            0, 0, w, h, extend="copy")
        part = big / (2 ** level)
        total = part if total is None else total + part
    return (total - total.min()) / (total.max() - total.min())


def _noise(w: int, h: int, sigma: float, seed: int) -> pyvips.Image:
    return pyvips.Image.gaussnoise(w, h, sigma=sigma, mean=0, seed=seed)


def _sin(radians: pyvips.Image) -> pyvips.Image:
    return (radians * 57.29578).sin()  # libvips' sin takes degrees


def _blob(w: int, h: int, cx: float, cy: float, rx: float, ry: float) -> pyvips.Image:
    """A soft-edged ellipse mask 0..1 (float)."""
    xy = pyvips.Image.xyz(w, h)
    d = ((xy[0] - cx) / rx) ** 2 + ((xy[1] - cy) / ry) ** 2
    return (d < 1).ifthenelse(1.0, 0.0).gaussblur(1.2)


def _box(w: int, h: int, x0: int, y0: int, bw: int, bh: int, radius: float = 1.0) -> pyvips.Image:
    mask = pyvips.Image.black(w, h).draw_rect(255, x0, y0, bw, bh, fill=True)
    return (mask / 255.0).gaussblur(radius)


def _paint(base: pyvips.Image, mask: pyvips.Image, layer: pyvips.Image) -> pyvips.Image:
    return base * (1 - mask) + layer * mask


def on_white(seed: int, w: int = 1600, h: int = 1600) -> pyvips.Image:
    """A product (box or bottle-like shape, a label, a little texture) on pure white with a
    soft drop shadow."""
    rnd = random.Random(seed)
    base = pyvips.Image.black(w, h, bands=3).cast("float") + 255
    colour = [rnd.randint(20, 220) for _ in range(3)]
    if (seed // 4) % 2:
        bw, bh = rnd.randint(w // 3, w // 2), rnd.randint(h // 2, int(h * 0.7))
        x0, y0 = (w - bw) // 2, (h - bh) // 2
        mask = _box(w, h, x0, y0, bw, bh, 2.0)
    else:
        rx, ry = rnd.randint(w // 6, w // 4), rnd.randint(h // 4, h // 3)
        x0, y0, bw, bh = w // 2 - rx, h // 2 - ry, 2 * rx, 2 * ry
        mask = _blob(w, h, w / 2, h / 2, rx, ry)
    shadow = mask.affine([1, 0, 0, 1], odx=rnd.randint(10, 30), ody=rnd.randint(20, 50),
                         oarea=[0, 0, w, h]).gaussblur(25) * 0.35
    base = base * (1 - shadow)
    # shading across the product and a faint texture
    xy = pyvips.Image.xyz(w, h)
    shade = (xy[0] - x0) / max(bw, 1) * -60 + 30
    layer = shade.bandjoin([shade, shade]) + colour + _noise(w, h, 4, seed)
    base = _paint(base, mask, layer)
    label = _box(w, h, x0 + bw // 5, y0 + bh // 3, bw * 3 // 5, bh // 5, 1.0)
    base = _paint(base, label * mask, base.new_from_image([240, 235, 220]).cast("float"))
    text = sum(_box(w, h, x0 + bw // 5 + 20 + i * (bw // 10), y0 + bh // 3 + 30, bw // 16,
                    bh // 12, 0.7) for i in range(5))
    base = _paint(base, text * label * mask, base.new_from_image([30, 30, 40]).cast("float"))
    return _rgb(_clip(base))


def lifestyle(seed: int, w: int = 1800, h: int = 1200) -> pyvips.Image:
    """A product on a textured scene: a blurred wood/fabric-like background with large-scale
    variation, fine grain, a table edge and an object with a shadow."""
    rnd = random.Random(seed)
    fract = _octaves(w, h, seed)
    tone = [rnd.randint(90, 200) for _ in range(3)]
    bg = fract * 90 - 45
    bg = bg.bandjoin([bg * 0.8, bg * 0.6]) + tone
    grain = _noise(w, h, 10, seed).gaussblur(0.8)
    bg = bg + grain
    xy = pyvips.Image.xyz(w, h)
    table_y = int(h * rnd.uniform(0.55, 0.7))
    table = (xy[1] > table_y).ifthenelse(1.0, 0.0).gaussblur(2)
    stripes = _sin(xy[0] * 0.08 + fract * 12) * 20
    table_layer = stripes.bandjoin([stripes * 0.7, stripes * 0.4]).linear(1, [150, 110, 70])
    bg = _paint(bg, table, table_layer + grain)
    cx, cy = w * rnd.uniform(0.35, 0.65), table_y - h * 0.2
    mask = _blob(w, h, cx, cy, w * 0.1, h * 0.22)
    shadow = _blob(w, h, cx + 60, table_y, w * 0.14, h * 0.04).gaussblur(15) * 0.5
    bg = bg * (1 - shadow)
    colour = [rnd.randint(30, 230) for _ in range(3)]
    shade = ((xy[0] - cx) / (w * 0.1)) * -50
    obj = shade.bandjoin([shade, shade]) + colour
    bg = _paint(bg, mask, obj)
    return _rgb(_clip(bg))


def textile(seed: int, w: int = 1600, h: int = 1600) -> pyvips.Image:
    """Fine woven or knitted patterns: two crossing sine gratings with a thread-level period,
    folds (low-frequency shading) and fibre noise: the kind of detail encoders smear."""
    rnd = random.Random(seed)
    xy = pyvips.Image.xyz(w, h)
    period_x, period_y = rnd.uniform(3.0, 7.0), rnd.uniform(3.0, 7.0)
    warp = _sin(xy[0] * (6.283 / period_x))
    weft = _sin(xy[1] * (6.283 / period_y) + xy[0] * rnd.uniform(0, 0.05))
    weave = (warp * weft) * 35 + warp * 15
    folds = (_sin(xy[0] * 0.004 + xy[1] * 0.006 + rnd.random() * 6) * 45
             + _sin(xy[1] * 0.011) * 20)
    fibre = _noise(w, h, 12, seed)
    c1 = [rnd.randint(40, 200) for _ in range(3)]
    lum = weave + folds + fibre
    img = lum.bandjoin([lum, lum]) + c1
    if (seed // 4) % 2:  # a check pattern in a second colour
        check = (((xy[0] / 80).floor() + (xy[1] / 80).floor()) % 2).cast("float")
        c2 = [rnd.randint(40, 220) for _ in range(3)]
        img = img + check.bandjoin([check, check]) * [c2[i] - c1[i] for i in range(3)]
    return _rgb(_clip(img))


def glossy(seed: int, w: int = 1600, h: int = 1600) -> pyvips.Image:
    """A glossy object: smooth gradients (banding risk), sharp specular highlights, a
    reflection on a light gradient background."""
    rnd = random.Random(seed)
    xy = pyvips.Image.xyz(w, h)
    bgv = xy[1] / h * 50 + 190
    bg = bgv.bandjoin([bgv, bgv + 5])
    cx, cy = w / 2, h * 0.45
    rx, ry = w * rnd.uniform(0.22, 0.3), h * rnd.uniform(0.28, 0.36)
    mask = _blob(w, h, cx, cy, rx, ry)
    d = (((xy[0] - cx) / rx) ** 2 + ((xy[1] - cy) / ry) ** 2)
    colour = [rnd.randint(10, 200) for _ in range(3)]
    body = (1 - d * 0.6)
    obj = body.bandjoin([body, body]) * colour
    hx, hy = cx - rx * 0.4, cy - ry * 0.45
    spec = ((((xy[0] - hx) / (rx * 0.12)) ** 2 + ((xy[1] - hy) / (ry * 0.06)) ** 2) * -1).exp()
    rim = (((xy[0] - (cx + rx * 0.55)) / (rx * 0.04)) ** 2 * -1).exp() * mask * 0.6
    obj = obj + (spec + rim).bandjoin([spec + rim, spec + rim]) * 255
    img = _paint(bg, mask, obj)
    refl = mask.flip("vertical").affine([1, 0, 0, 1], ody=int(2 * cy + 2 * ry - h) - 0,
                                        oarea=[0, 0, w, h]) * 0.18
    img = _paint(img, refl, obj.flip("vertical").affine(
        [1, 0, 0, 1], ody=int(2 * cy + 2 * ry - h), oarea=[0, 0, w, h]))
    img = img + (_noise(w, h, 1.5, seed))
    return _rgb(_clip(img))


KINDS = (("white", on_white), ("lifestyle", lifestyle), ("textile", textile),
         ("glossy", glossy))


def synthetic_photos(folder: Path, count: int) -> list[Path]:
    paths = []
    for i in range(count):
        kind, draw = KINDS[i % len(KINDS)]
        path = folder / f"synth-{kind}-{i // len(KINDS) + 1}.jpg"
        if not path.exists():
            draw(1000 + i).jpegsave(str(path), Q=92, keep="none")
        paths.append(path)
    return paths


def bench_photos() -> list[Path]:
    source = db.SHARED_IMAGES if db.SHARED_IMAGES.exists() else db.IMAGES
    return [source / name for name in db.PHOTOS]


# --------------------------------------------------------------------------------------------
# the three contenders


def libvips_q80(path: Path, width: int, fmt: str) -> bytes:
    """libvips' thumbnail at q80, into sRGB when the original carries a colour profile (the
    profile is not kept, so without the transform a browser would show other colours)."""
    header = pyvips.Image.new_from_file(str(path))
    colour = {"export_profile": "srgb"} if header.get_typeof("icc-profile-data") else {}
    image = pyvips.Image.thumbnail(str(path), width, **colour)
    if fmt == "webp":
        return image.webpsave_buffer(Q=80, keep="none")
    return image.heifsave_buffer(Q=80, compression="av1", keep="none")


def reference_for(path: Path, data: bytes) -> pyvips.Image:
    """The original at the exact size of ``data``, in sRGB, not encoded: the calibration's own
    reference (``quality.reference``)."""
    out = pyvips.Image.new_from_buffer(data, "")
    return quality.reference(path.read_bytes(), (out.width, out.height))


def shown(data: bytes) -> pyvips.Image:
    """An output as a colour-managed browser shows it: in sRGB when it carries a profile."""
    image = pyvips.Image.new_from_buffer(data, "")
    if image.get_typeof("icc-profile-data"):
        image = image.icc_transform("srgb")
    return image


async def load_catalogue(base: str, photos: dict[str, Path]) -> dict[str, int]:
    import aiohttp

    async with aiohttp.ClientSession(base) as http:
        async with http.post("/api/v1/auth/register", json=db.ADMIN) as resp:
            await resp.read()
        async with http.post("/api/v1/auth/login", json={
                "email": db.ADMIN["email"], "password": db.ADMIN["password"]}) as resp:
            token = (await resp.json())["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        ids = {}
        for code, path in photos.items():
            form = aiohttp.FormData()
            form.add_field("code", code)
            form.add_field("file", path.read_bytes(), filename=path.name,
                           content_type="image/jpeg")
            async with http.post("/api/v1/images", data=form, headers=auth) as resp:
                report = await resp.json()
            image_id = db.find_image_id(report)
            if image_id is None:
                raise db.SetupError(f"import {path.name}: {json.dumps(report)[:300]}")
            async with http.post(f"/api/v1/images/{image_id}/approve", headers=auth) as resp:
                if resp.status not in (200, 409):
                    raise db.SetupError(f"approve {code}: {resp.status} {await resp.text()}")
            ids[code] = image_id
        return ids


def fetch(url: str) -> bytes:
    status, _headers, body = db.http_get(url)
    if status != 200:
        raise RuntimeError(f"GET {url}: {status} {body[:200]!r}")
    return body


# --------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=20, help="synthetic photos (default 20)")
    parser.add_argument("--skip-thumbor", action="store_true")
    parser.add_argument("--json", type=Path, help="also write every row here")
    args = parser.parse_args()
    started = time.time()
    work = Path(tempfile.mkdtemp(prefix="quality-compare-"))
    log = work / "run.log"
    folder = work / "photos"
    folder.mkdir()
    for path in bench_photos():
        shutil.copyfile(path, folder / path.name)
    db.say(f"drawing {args.count} synthetic photos into {folder}")
    photos = [folder / p.name for p in bench_photos()] + synthetic_photos(folder, args.count)
    codes = {f"QC-{i + 1}": path for i, path in enumerate(photos)}

    thumbor = None
    if not args.skip_thumbor:
        db.ensure_thumbor()
        conf = work / "thumbor.conf"
        conf.write_text(db.render_template(db.BENCH / "thumbor" / "thumbor.conf.template",
                                           images=folder, result_storage="None",
                                           result_dir=work))
        port = db.free_port()
        thumbor = db.start_server(
            "thumbor", [str(db.THUMBOR_VENV / "bin" / "thumbor"), "-p", str(port), "-i",
                        "127.0.0.1", "-c", str(conf), "-l", "warning"],
            f"http://127.0.0.1:{port}", "/healthcheck", log)

    db_name = f"ecogram_qcompare_{os.getpid()}"
    asyncio.run(db._create_database(db_name))
    env = db.ecogram_env(db.POSTGRES_URL + db_name, work / "ecogram-data")
    port = db.free_port()
    server = db.start_server("ecogram", db.ecogram_command(port, 1), f"http://127.0.0.1:{port}",
                             "/healthz", log, env=env)
    rows: list[dict[str, Any]] = []
    try:
        db.say("ecogram: import + approve (calibration runs at approval)")
        asyncio.run(load_catalogue(server.base, codes))
        db.wait_idle(server.proc.pid, limit=600)
        for code, path in codes.items():
            for fmt in FORMATS:
                for width in WIDTHS:
                    outputs = {"ecogram": fetch(f"{server.base}/img/{code}?w={width}&fmt={fmt}"),
                               "libvips_q80": libvips_q80(path, width, fmt),
                               # the pipeline's own loss: ecogram's render at the same q80
                               "ecogram_q80": fetch(
                                   f"{server.base}/img/{code}?w={width}&fmt={fmt}&q=80")}
                    if thumbor is not None:
                        outputs["thumbor_q80"] = fetch(
                            f"{thumbor.base}/unsafe/{width}x0/filters:format({fmt}):"
                            f"quality(80)/{path.name}")
                    row: dict[str, Any] = {"photo": path.name, "fmt": fmt, "width": width}
                    for name, data in outputs.items():
                        kind = pyvips.Image.new_from_buffer(data, "").get("vips-loader")
                        if fmt not in kind and not (fmt == "avif" and "heif" in kind):
                            raise RuntimeError(f"{name} {path.name} {fmt}: got {kind}")
                        row[name] = {"bytes": len(data),
                                     "score": round(quality.score(reference_for(path, data),
                                                                  shown(data)), 2)}
                    rows.append(row)
                    db.say(json.dumps(row))
    finally:
        server.stop()
        if thumbor is not None:
            thumbor.stop()
        asyncio.run(db._drop_database(db_name))
    print(report(rows, args, started))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    shutil.rmtree(work, ignore_errors=True)
    return 0


def report(rows: list[dict[str, Any]], args: argparse.Namespace, started: float) -> str:
    refs = ["thumbor_q80", "libvips_q80"] if not args.skip_thumbor else ["libvips_q80"]
    lines = [f"nproc {os.cpu_count()}, load {os.getloadavg()}, {time.time() - started:.0f} s", ""]
    head = "| photo | fmt | w | ecogram bytes (score) | " + " | ".join(
        f"{r} bytes (score)" for r in [*refs, "ecogram_q80"]) + " |"
    lines += [head, "|" + " --- |" * (5 + len(refs))]
    for row in rows:
        cells = [f"{row[n]['bytes']:,} ({row[n]['score']:.1f})"
                 for n in ["ecogram", *refs, "ecogram_q80"]]
        lines.append(f"| {row['photo']} | {row['fmt']} | {row['width']} | "
                     + " | ".join(cells) + " |")
    lines += ["", "| group | vs | median ecogram bytes | median ref bytes | ratio of medians "
              "| median of per-image ratio | bytes target (<= 0.75) | scores at/above "
              "min(ref, 70) |", "|" + " --- |" * 8]
    groups = [(f"{fmt} {w}", [r for r in rows if r["fmt"] == fmt and r["width"] == w])
              for fmt in FORMATS for w in WIDTHS]
    groups += [(f"{fmt} both widths", [r for r in rows if r["fmt"] == fmt]) for fmt in FORMATS]
    groups.append(("all", rows))
    for label, group in groups:
        for ref in refs:
            eco = statistics.median(r["ecogram"]["bytes"] for r in group)
            other = statistics.median(r[ref]["bytes"] for r in group)
            ratio = statistics.median(r["ecogram"]["bytes"] / r[ref]["bytes"] for r in group)
            fails = [f"{r['photo']} {r['fmt']} {r['width']} "
                     f"({r['ecogram']['score']:.1f} < {min(r[ref]['score'], 70):.1f})"
                     for r in group if r["ecogram"]["score"] < min(r[ref]["score"], 70)]
            ok = "yes" if ratio <= 0.75 and eco / other <= 0.75 else (
                "no" if ratio > 0.75 and eco / other > 0.75 else "split")
            scores = f"{len(group) - len(fails)}/{len(group)}" + (
                f"; below: {', '.join(fails)}" if fails else "")
            lines.append(f"| {label} | {ref} | {eco:,.0f} | {other:,.0f} | {eco / other:.2f} | "
                         f"{ratio:.2f} | "
                         f"{ok} | {scores} |")
    # the pipeline against a plain thumbnail, both at q80 (issue 15's note)
    lines += ["", "| group | median score: ecogram q80 render | libvips q80 | "
              "largest shortfall (ecogram q80 − libvips q80) |", "|" + " --- |" * 4]
    for label, group in groups:
        worst = min(group, key=lambda r: r["ecogram_q80"]["score"] - r["libvips_q80"]["score"])
        gap = worst["ecogram_q80"]["score"] - worst["libvips_q80"]["score"]
        lines.append(
            f"| {label} | {statistics.median(r['ecogram_q80']['score'] for r in group):.1f} | "
            f"{statistics.median(r['libvips_q80']['score'] for r in group):.1f} | {gap:+.1f} "
            f"({worst['photo']} {worst['fmt']} {worst['width']}) |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
