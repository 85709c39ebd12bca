"""How well each verification check survives everyday edits of a watermarked image, and pHash false matches.

Corpus: the images at the top of sample_media/ plus --generated pictures (seeded; long side 480..1600 px,
seven aspect ratios; seven kinds of content by turns: landscapes, shapes, textures, mosaics, waves, text
pages and blends of two, half of them blurred, all with some grain), saved as JPEG (quality 92) or PNG by
turns in a temporary directory (deleted afterwards).
They go through the real pipeline with the watermark stage on (registered, anchored on the embedded
chain, a marked copy written for each); each marked copy is then edited (re-encoded as JPEG 90/75/50,
resized to 50 %/25 %, cropped 5 % per side, brightened 20 %, rotated 2 degrees, PNG round trip) and
every edited file is verified with verify_file. A check passes for an image when it passed and the
answer names that image's record; a pass naming another record is a false match. Also measured: bit
errors of the payload read back, the pHash distance of each edited copy to its original, and, over
the corpus plus --unrelated more generated pictures, how many unrelated pairs are within
PHASH_THRESHOLD of each other, and how near the watermark readings of those unmarked pictures come to
any marked record's payload.
Goals: the watermark is recovered for >= 95 % of images at JPEG quality >= 75 and at 50 % size;
pHash false matches below 1 in 10,000 pairs of unrelated images.
The pictures are the same for a seed, but each run signs with a fresh key, so the payloads (and the
marked copies) differ: pass rates move by a few tenths of a percent from run to run.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from make_sample_media import _to_image, _value_noise, _vertical_gradient  # noqa: E402

from pipeline.fingerprint import PHASH_THRESHOLD, fingerprint, phash_distance  # noqa: E402
from pipeline.records import Record  # noqa: E402
from pipeline.runner import run_pipeline  # noqa: E402
from pipeline.service import Service  # noqa: E402
from pipeline.settings import Settings  # noqa: E402
from pipeline.signing import load_or_create_secret  # noqa: E402
from pipeline.verify import CHECKS, verify_file  # noqa: E402
from pipeline.watermark import MATCH_BIT_ERRORS, bit_errors, payload_of, read  # noqa: E402

SAMPLES = ROOT / "sample_media"
WATERMARK_GOAL = 0.95
WATERMARK_GOAL_ROWS = ("jpeg90", "jpeg75", "resize50")
FALSE_MATCH_GOAL = 1e-4
ASPECTS = (16 / 9, 3 / 2, 4 / 3, 1.0, 3 / 4, 2 / 3, 9 / 16)  # width / height


def colour(rng: np.random.Generator) -> tuple[int, int, int]:
    """A random RGB colour."""
    return tuple(int(c) for c in rng.integers(0, 256, 3))


def palette(rng: np.random.Generator, values: np.ndarray) -> np.ndarray:
    """Values in [0, 1] mapped through a random ramp of 2..4 colours, as a height x width x 3 array."""
    stops = rng.integers(0, 256, (int(rng.integers(2, 5)), 3)).astype(float)
    position = values * (len(stops) - 1)
    low = np.minimum(position.astype(int), len(stops) - 2)
    t = (position - low)[..., None]
    return (1 - t) * stops[low] + t * stops[low + 1]


def ground(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A two-colour gradient running down or across, as a height x width x 3 array."""
    if rng.random() < 0.5:
        return _vertical_gradient(width, height, colour(rng), colour(rng))
    return _vertical_gradient(height, width, colour(rng), colour(rng)).transpose(1, 0, 2)


def half(width: int, height: int) -> tuple[int, int]:
    """Half of a size: smooth fields are computed at it and scaled up."""
    return max(1, width // 2), max(1, height // 2)


def landscape(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """Sky, a sun or moon, 1..4 noisy ridges and sometimes a lake, in random colours and proportions."""
    image = _to_image(_vertical_gradient(width, height, colour(rng), colour(rng)))
    draw = ImageDraw.Draw(image)
    radius = int(rng.uniform(0.03, 0.12) * width)
    cx, cy = int(rng.uniform(0.1, 0.9) * width), int(rng.uniform(0.05, 0.4) * height)
    draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=colour(rng))
    step = max(2, width // 200)
    for base in np.sort(rng.uniform(0.25, 0.8, int(rng.integers(1, 5)))) * height:  # far (high) ridges first
        ridge = base + height * rng.uniform(0.1, 0.4) * (_value_noise(rng, width, 1, 4)[0] - 0.5)
        draw.polygon([(0, height)] + [(i, float(ridge[i])) for i in range(0, width, step)] + [(width, height)],
                     fill=colour(rng))
    if rng.random() < 0.5:
        draw.rectangle((0, int(height * rng.uniform(0.65, 0.9)), width, height), fill=colour(rng))
    return image


def shapes(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """A gradient ground with 6..40 flat or outlined ellipses, boxes and triangles of random sizes."""
    image = _to_image(ground(rng, width, height))
    draw = ImageDraw.Draw(image)
    scale = min(width, height)
    for _ in range(int(rng.integers(6, 41))):
        x, y = rng.uniform(-0.1, 1.0) * width, rng.uniform(-0.1, 1.0) * height
        w, h = rng.uniform(0.05, 0.6) * scale, rng.uniform(0.05, 0.6) * scale
        fill, outline = (colour(rng), None) if rng.random() < 0.8 else (None, colour(rng))
        kind = rng.integers(0, 3)
        if kind == 0:
            draw.ellipse((x, y, x + w, y + h), fill=fill, outline=outline, width=4)
        elif kind == 1:
            draw.rectangle((x, y, x + w, y + h), fill=fill, outline=outline, width=4)
        else:
            draw.polygon([(x, y + h), (x + w, y + h), (x + rng.uniform(0, w), y)], fill=fill, outline=outline)
    return image


def texture(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """Value noise through a random colour ramp: clouds, or marble veins when warped through a sine."""
    w, h = half(width, height)
    noise = _value_noise(rng, w, h, int(rng.integers(3, 7)))
    if rng.random() < 0.5:
        y, x = np.mgrid[0:h, 0:w]
        angle, freq = rng.uniform(0, np.pi), rng.uniform(4, 20) * np.pi / max(w, h)
        noise = (np.sin((x * np.cos(angle) + y * np.sin(angle)) * freq + noise * rng.uniform(4, 12)) + 1) / 2
    return _to_image(palette(rng, noise)).resize((width, height), Image.Resampling.BICUBIC)


def mosaic(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """A Voronoi mosaic of 8..150 random cells, optionally with dark grout lines."""
    small_w, small_h = max(1, width // 4), max(1, height // 4)
    count = int(rng.integers(8, 151))
    points = (rng.random((count, 2)) * [small_w, small_h]).astype(np.float32)
    colours = rng.integers(0, 256, (count, 3))
    y, x = np.mgrid[0:small_h, 0:small_w].astype(np.float32)
    nearest = np.argmin((x[..., None] - points[:, 0]) ** 2 + (y[..., None] - points[:, 1]) ** 2, axis=2)
    image = _to_image(colours[nearest].astype(float)).resize((width, height), Image.Resampling.NEAREST)
    if rng.random() < 0.5:
        edges = Image.fromarray(nearest.astype(np.uint8)).filter(ImageFilter.FIND_EDGES)
        image.paste((20, 20, 20), mask=edges.point(lambda v: 255 if v else 0).resize((width, height)))
    return image


def waves(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """Interfering plane waves and rings of random frequencies, directions and centres."""
    w, h = half(width, height)
    y, x = np.mgrid[0:h, 0:w] / max(w, h)
    total = np.zeros((h, w))
    for _ in range(int(rng.integers(1, 4))):
        freq = rng.uniform(3, 40)
        if rng.random() < 0.5:
            angle = rng.uniform(0, np.pi)
            total += np.sin((x * np.cos(angle) + y * np.sin(angle)) * freq + rng.uniform(0, 2 * np.pi))
        else:
            cx, cy = rng.uniform(-0.2, 1.2, 2)
            total += np.sin(np.hypot(x - cx, y - cy) * freq)
    values = (total - total.min()) / (np.ptp(total) or 1.0)
    return _to_image(palette(rng, values)).resize((width, height), Image.Resampling.BICUBIC)


def page(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """A poster or page: a coloured ground, a banner, picture boxes, lines of text and rules at random places."""
    image = Image.new("RGB", (width, height), colour(rng))
    draw = ImageDraw.Draw(image)
    scale = min(width, height)
    for _ in range(int(rng.integers(1, 5))):
        x0, y0 = rng.uniform(0, 0.8) * width, rng.uniform(0, 0.8) * height
        draw.rectangle((x0, y0, x0 + rng.uniform(0.1, 0.7) * width, y0 + rng.uniform(0.05, 0.4) * height),
                       fill=colour(rng))
    words = "provenance harbor signal ledger anchor render archive verify camera street market river".split()
    for _ in range(int(rng.integers(4, 25))):
        size = int(rng.uniform(0.02, 0.12) * scale)
        font = ImageFont.load_default(size=size)
        text = " ".join(rng.choice(words, int(rng.integers(1, 6))))
        draw.text((rng.uniform(0, 0.8) * width, rng.uniform(0, 0.95) * height), text, fill=colour(rng), font=font)
    for _ in range(int(rng.integers(0, 8))):
        draw.line(tuple(rng.uniform(0, 1, 4) * [width, height, width, height]), fill=colour(rng),
                  width=int(rng.integers(1, 12)))
    return image


def blend(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """Two pictures of other kinds mixed through a soft noise mask, like a photo's overlapping regions."""
    first, second = rng.choice(len(BASES), 2, replace=False)
    mask = Image.fromarray((_value_noise(rng, *half(width, height), 3) * 255).astype(np.uint8))
    mask = mask.resize((width, height), Image.Resampling.BICUBIC)
    return Image.composite(BASES[first](rng, width, height), BASES[second](rng, width, height), mask)


BASES = (landscape, shapes, texture, mosaic, waves, page)
GENERATORS = BASES + (blend,)


def generate(seed: list[int], index: int) -> Image.Image:
    """Picture number index from this seed: a size, a generator by turns, then blur and grain at random."""
    rng = np.random.default_rng(seed + [index])
    long_side, aspect = int(rng.integers(480, 1601)), rng.choice(ASPECTS)
    width, height = (long_side, round(long_side / aspect)) if aspect >= 1 else (round(long_side * aspect), long_side)
    image = GENERATORS[index % len(GENERATORS)](rng, width, height)
    if rng.random() < 0.5:
        image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 2.5)))
    grain = rng.standard_normal((height, width, 1), dtype=np.float32) * rng.uniform(0, 6)
    return _to_image(np.asarray(image, np.float32) + grain)


def save_generated(seed: list[int], index: int, directory: Path) -> tuple[Path, str]:
    """Generate picture number index, save it (JPEG quality 92 or PNG, by turns) and return its path and pHash."""
    path = directory / f"gen{index:04}{'.jpg' if index % 2 else '.png'}"
    generate(seed, index).save(path, quality=92, compress_level=1)  # each format takes its own option
    return path, fingerprint(path).perceptual_hash


def generate_all(pool: ProcessPoolExecutor, seed: list[int], count: int, directory: Path) -> dict[Path, str]:
    """Generate and save count pictures in the pool; each saved path with its pHash."""
    directory.mkdir()
    return dict(pool.map(save_generated, repeat(seed), range(count), repeat(directory), chunksize=4))


Transform = Callable[[Image.Image, Path], Path]


def jpeg(quality: int) -> Transform:
    """A transformation that re-encodes the image as JPEG at this quality."""
    def apply(image: Image.Image, stem: Path) -> Path:
        """Save the image as stem.jpg at the quality."""
        path = stem.with_suffix(".jpg")
        image.save(path, quality=quality)
        return path
    return apply


def as_png(edit: Callable[[Image.Image], Image.Image]) -> Transform:
    """A transformation that applies a pixel edit and saves the result as PNG, without metadata."""
    def apply(image: Image.Image, stem: Path) -> Path:
        """Save the edited image as stem.png."""
        path = stem.with_suffix(".png")
        edit(image).save(path, compress_level=1)
        return path
    return apply


def resize(scale: float) -> Callable[[Image.Image], Image.Image]:
    """An edit that scales both sides by this factor (Lanczos)."""
    def apply(image: Image.Image) -> Image.Image:
        """The image scaled."""
        return image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS)
    return apply


def crop10(image: Image.Image) -> Image.Image:
    """The centre of the image without 5 % of its width and height on each side."""
    dx, dy = round(image.width * 0.05), round(image.height * 0.05)
    return image.crop((dx, dy, image.width - dx, image.height - dy))


def brighten(image: Image.Image) -> Image.Image:
    """The image 20 % brighter."""
    return ImageEnhance.Brightness(image).enhance(1.2)


def rotate2(image: Image.Image) -> Image.Image:
    """The image rotated 2 degrees about its centre on the same canvas, corners black."""
    return image.rotate(2, resample=Image.Resampling.BICUBIC, fillcolor=(0, 0, 0))


def unchanged(image: Image.Image) -> Image.Image:
    """The image as decoded."""
    return image


TRANSFORMS: dict[str, Transform] = {
    "jpeg90": jpeg(90),
    "jpeg75": jpeg(75),
    "jpeg50": jpeg(50),
    "resize50": as_png(resize(0.5)),
    "resize25": as_png(resize(0.25)),
    "crop10": as_png(crop10),
    "brightness+20": as_png(brighten),
    "rotate2": as_png(rotate2),
    "png": as_png(unchanged),
}


def phash_pairs(hashes: list[str]) -> np.ndarray:
    """The Hamming distances of every unordered pair of 64-bit pHashes."""
    values = np.array([int(h, 16) for h in hashes], dtype=np.uint64)
    first, second = np.triu_indices(len(values), k=1)
    return np.bitwise_count(values[first] ^ values[second])


def print_phash_false_matches(hashes: list[str]) -> None:
    """Print how many pairs of unrelated images are within PHASH_THRESHOLD, against the goal."""
    distances = phash_pairs(hashes)
    false = int(np.count_nonzero(distances <= PHASH_THRESHOLD))
    rate = false / len(distances)
    print(f"pHash false matches among {len(hashes)} unrelated images: {false} of {len(distances)} pairs"
          f" within {PHASH_THRESHOLD} bits ({rate * 1e4:.2f} per 10,000 pairs);"
          f" distance min {distances.min()}, 1st percentile {np.percentile(distances, 1):g},"
          f" median {np.median(distances):g}")
    print(f"goal: below 1 per {1 / FALSE_MATCH_GOAL:,.0f} pairs: {'met' if rate < FALSE_MATCH_GOAL else 'NOT met'}")


VARIANTS = ("none", *TRANSFORMS)


@dataclass(frozen=True)
class Outcome:
    """What verifying one edited copy gave, judged against the record of the image it was made from."""

    passed: dict[str, bool]  # each check: passed, naming the right record
    false_match: bool  # some check passed, naming another record
    authentic: bool  # authentic, naming the right record
    confidence: float
    bit_errors: int  # of the payload read back, against the record's
    distance: int  # pHash bits from the original's


def edited_copies(marked: str, directory: Path, signature_hex: str, phash: str,
                  key: bytes) -> dict[str, tuple[Path, int, int]]:
    """Write each transformation of a marked copy into directory; for it and the marked copy itself ("none"),
    the path, the bit errors of the payload read back and the pHash distance to the original's."""
    directory.mkdir(parents=True)
    with Image.open(marked) as image:
        rgb = image.convert("RGB")
    paths = {"none": Path(marked)} | {name: edit(rgb, directory / name) for name, edit in TRANSFORMS.items()}
    return {name: (path, payload_bit_errors(path, signature_hex, key),
                   phash_distance(fingerprint(path).perceptual_hash, phash)) for name, path in paths.items()}


def payload_bit_errors(path: Path, signature_hex: str, key: bytes) -> int:
    """Bit errors of the watermark payload read from an image file against the record's."""
    with Image.open(path) as image:
        return bit_errors(read(image, key), payload_of(signature_hex))


def judge(data: dict, rec: Record, errors: int, distance: int) -> Outcome:
    """The outcome of one verification (verify_file's data) against the record the file was made from."""
    right = data["record_id"] == rec.id
    passed = {name: bool(data["checks"][name]["passed"]) for name in CHECKS}
    return Outcome(passed={name: ok and right for name, ok in passed.items()},
                   false_match=any(passed.values()) and not right, authentic=bool(data["authentic"]) and right,
                   confidence=data["confidence"], bit_errors=errors, distance=distance)


def read_payload(path: Path, key: bytes) -> bytes:
    """The watermark payload read from an image file (marked or not) under the key."""
    with Image.open(path) as image:
        return read(image, key)


def nearest_payloads(pool: ProcessPoolExecutor, unmarked: list[Path], payloads: list[bytes], key: bytes) -> list[int]:
    """For each unmarked image, the bit errors of its watermark reading against the nearest marked payload."""
    readings = pool.map(read_payload, unmarked, repeat(key), chunksize=8)
    return [min(bit_errors(got, p) for p in payloads) for got in readings]


def print_unmarked_readings(nearest: list[int], payloads: int) -> None:
    """Print how close the readings of unmarked images came to any marked record's payload (a match is <= 6)."""
    print(f"watermark readings of {len(nearest)} unmarked images against {payloads} marked records' payloads:"
          f" nearest {min(nearest)} bits, median {statistics.median(nearest):g};"
          f" within {MATCH_BIT_ERRORS} (a false match): {sum(n <= MATCH_BIT_ERRORS for n in nearest)}")


def run_checks(pool: ProcessPoolExecutor, root: Path,
               originals: list[Path]) -> tuple[dict[str, list[Outcome]], list[float], list[str], list[bytes]]:
    """Register the originals through the pipeline with the watermark stage on, edit the marked copies in the pool
    and verify every edited file here; the outcomes by variant, the marked copies' PSNRs, the run's errors and
    the marked records' payloads."""
    service = Service(Settings(data_dir=root / "state", watermark=True, batch_size=256, mint_nfts=False))
    try:
        report = asyncio.run(run_pipeline(service, [str(p) for p in originals]))
        marked = [(rec, service.store.watermark(rec.id)) for rec in report.registered]
        marked = [(rec, mark) for rec, mark in marked if mark is not None]  # an image refused by the stage: in errors
        edited = pool.map(edited_copies, [mark["path"] for _, mark in marked],
                          [root / "edited" / f"{i:04}" for i in range(len(marked))],
                          [rec.signature_hex for rec, _ in marked], [rec.perceptual_hash for rec, _ in marked],
                          repeat(service.watermark_key))
        outcomes: dict[str, list[Outcome]] = {name: [] for name in VARIANTS}
        for (rec, _), variants in zip(marked, edited):
            for name, (path, errors, distance) in variants.items():
                outcomes[name].append(judge(verify_file(service, path), rec, errors, distance))
    finally:
        service.close()
    return (outcomes, [mark["psnr"] for _, mark in marked], report.errors,
            [bytes.fromhex(mark["payload"]) for _, mark in marked])


def share(flags: list[bool]) -> float:
    """The fraction of true flags."""
    return sum(flags) / len(flags)


def print_table(outcomes: dict[str, list[Outcome]]) -> None:
    """Print the Markdown table: pass rates of each check, authenticity, confidence, bit errors, pHash distance."""
    print(f"| edit | {' | '.join(CHECKS)} | authentic | mean confidence | watermark bit errors (median)"
          " | pHash distance (median) | false matches |")
    print(f"|---|{'---:|' * (len(CHECKS) + 5)}")
    for name, results in outcomes.items():
        rates = [f"{share([r.passed[check] for r in results]):.1%}" for check in CHECKS]
        print(f"| {name} | {' | '.join(rates)} | {share([r.authentic for r in results]):.1%}"
              f" | {statistics.fmean(r.confidence for r in results):.2f}"
              f" | {statistics.median(r.bit_errors for r in results):g}"
              f" | {statistics.median(r.distance for r in results):g}"
              f" | {sum(r.false_match for r in results)} |")


def print_watermark_goals(outcomes: dict[str, list[Outcome]]) -> None:
    """Print whether the watermark was recovered often enough at JPEG quality >= 75 and at 50 % size."""
    for name in WATERMARK_GOAL_ROWS:
        rate = share([r.passed["watermark"] for r in outcomes[name]])
        verdict = "met" if rate >= WATERMARK_GOAL else "NOT met"
        print(f"goal: watermark recovered for >= {WATERMARK_GOAL:.0%} of images at {name}: {rate:.1%}, {verdict}")


def main() -> None:
    """Build the corpus, run it through the pipeline, verify every edited copy and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generated", type=int, default=200, help="generated pictures in the corpus")
    parser.add_argument("--unrelated", type=int, default=1000, help="more generated pictures for pHash false matches")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="20 generated and 200 unrelated pictures")
    args = parser.parse_args()
    generated, unrelated = (20, 200) if args.quick else (args.generated, args.unrelated)
    samples = sorted(p for p in SAMPLES.iterdir() if p.suffix in (".jpg", ".png"))
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="provsim-bench-") as tmp:
        root = Path(tmp)
        with ProcessPoolExecutor(mp_context=multiprocessing.get_context("forkserver")) as pool:
            made = generate_all(pool, [args.seed, 0], generated, root / "originals")
            others = generate_all(pool, [args.seed, 1], unrelated, root / "unrelated")
            outcomes, psnrs, errors, payloads = run_checks(pool, root, samples + list(made))
            key = load_or_create_secret(root / "state", "watermark")  # the run's watermark key
            nearest = nearest_payloads(pool, list(others), payloads, key)

    print(f"images: {len(samples)} from sample_media/ + {generated} generated (seed {args.seed});"
          f" {len(outcomes['none'])} registered and marked{''.join(f'; refused: {e}' for e in errors)}")
    print(f"marked copies: PSNR min {min(psnrs):.1f} dB, median {statistics.median(psnrs):.1f} dB")
    print()
    print_table(outcomes)
    print()
    print_watermark_goals(outcomes)
    print()
    print_phash_false_matches([fingerprint(p).perceptual_hash for p in samples] + [*made.values(), *others.values()])
    print_unmarked_readings(nearest, len(payloads))
    print(f"\ntook {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
