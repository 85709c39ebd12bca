"""Per-item cost of analyze_file on 1024x768 JPEGs, the 2-core limit it implies, and the data behind two choices.

1. Cost: analyze_file (one-pass digests + draft-mode pHash) timed item by item in one process,
   then items/s = 2 / per-item seconds, checked against a real 2-process pool.
2. Draft decode: the full-decode alternative (same pHash, no draft) timed on the same files, and
   how many bits the two decode paths disagree by on one file.
3. PHASH_THRESHOLD: distances between each image and edited copies of it (resized, recompressed,
   and harsher edits) against distances between unrelated images, here and on sample_media/.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import imagehash
import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.analyze import analyze_file  # noqa: E402
from pipeline.fingerprint import PHASH_THRESHOLD, fingerprint, phash_distance  # noqa: E402

SAMPLES = Path(__file__).resolve().parent.parent / "sample_media"
CAP = 50 * 1024**2
WIDTH, HEIGHT = 1024, 768
POOL_ROUNDS = 6


def photo_like(seed: int) -> Image.Image:
    """A 1024x768 picture: a random two-colour gradient, smooth noise, shapes and fine grain."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    angle = rng.uniform(0, np.pi)
    t = ((x * np.cos(angle) + y * np.sin(angle)) / (WIDTH + HEIGHT) + 0.5)[:, :, None]
    low, high = rng.integers(0, 256, (2, 3))
    coarse = Image.fromarray((rng.random((6, 8)) * 255).astype(np.uint8)).resize((WIDTH, HEIGHT), Image.Resampling.BICUBIC)
    pixels = (1 - t) * low + t * high + (np.asarray(coarse, float)[:, :, None] - 128) * 0.6
    pixels += rng.normal(0, 8, pixels.shape)
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x0, y0 = (int(v) for v in rng.integers(0, [WIDTH - 100, HEIGHT - 100]))
        size = int(rng.integers(40, 260))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x0, y0, x0 + size, y0 + size * 2 // 3), fill=colour)
    return image


def edits(image: Image.Image) -> dict[str, Image.Image]:
    """Edited copies of an image, from the ones the pipeline must match to harsher ones."""
    width, height = image.size
    return {
        "resized 50%": image.resize((width // 2, height // 2), Image.Resampling.LANCZOS),
        "resized 25%": image.resize((width // 4, height // 4), Image.Resampling.LANCZOS),
        "brightness +15%": ImageEnhance.Brightness(image).enhance(1.15),
        "crop 5% per side": image.crop((width // 20, height // 20, width - width // 20, height - height // 20)),
    }


def full_decode_phash(path: Path) -> str:
    """The rejected alternative: pHash of the fully decoded image (no draft)."""
    with Image.open(path) as image:
        return str(imagehash.phash(ImageOps.exif_transpose(image)))


def per_item_seconds(function, paths: list[Path]) -> list[float]:
    """Time function on each path once (after one warm-up call)."""
    function(paths[0])
    times = []
    for path in paths:
        started = time.perf_counter()
        function(path)
        times.append(time.perf_counter() - started)
    return times


def describe(values: list[int]) -> str:
    """min / median / max of a list of distances."""
    return f"min {min(values):2} median {statistics.median(values):4.1f} max {max(values):2} (n={len(values)})"


def main() -> None:
    """Generate the corpus, run the three measurements and print them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=50, help="number of 1024x768 JPEGs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="provsim-bench-") as tmp:
        root = Path(tmp)
        paths, copies = [], {}
        for index in range(args.count):
            image = photo_like(index)
            path = root / f"img{index:03}.jpg"
            image.save(path, quality=90)
            paths.append(path)
            decoded = Image.open(path).convert("RGB")
            variants = {"recompressed q60": decoded, "recompressed q30": decoded, **edits(decoded)}
            for name, variant in variants.items():
                quality = 30 if name.endswith("q30") else 60 if name.endswith("q60") else 90
                copy = root / f"img{index:03}-{name.replace(' ', '_').replace('%', 'pct')}.jpg"
                variant.save(copy, quality=quality)
                copies.setdefault(name, []).append((path, copy))

        analyze = per_item_seconds(lambda p: analyze_file(str(p), CAP, CAP), paths)
        draft = per_item_seconds(fingerprint, paths)
        full = per_item_seconds(full_decode_phash, paths)
        per_item = statistics.mean(analyze)
        print(f"{args.count} JPEGs {WIDTH}x{HEIGHT}, quality 90, {statistics.mean(p.stat().st_size for p in paths) / 1024:.0f} KiB average")
        print(f"analyze_file per item: mean {per_item * 1e3:.2f} ms, median {statistics.median(analyze) * 1e3:.2f} ms, max {max(analyze) * 1e3:.2f} ms")
        print(f"implied 2-core limit: {2 / per_item:.0f} items/s (2 / per-item seconds)")
        with ProcessPoolExecutor(max_workers=2) as pool:
            list(pool.map(analyze_file, [str(p) for p in paths[:4]], [CAP] * 4, [CAP] * 4))
            work = [str(p) for p in paths] * POOL_ROUNDS
            started = time.perf_counter()
            list(pool.map(analyze_file, work, [CAP] * len(work), [CAP] * len(work), chunksize=8))
            pooled = time.perf_counter() - started
        print(f"measured with a 2-process pool ({len(work)} items): {len(work) / pooled:.0f} items/s")

        print()
        print(f"fingerprint (draft decode, the one path): mean {statistics.mean(draft) * 1e3:.2f} ms/item")
        print(f"full decode + same pHash (alternative):   mean {statistics.mean(full) * 1e3:.2f} ms/item")
        disagreement = [phash_distance(fingerprint(p).perceptual_hash, full_decode_phash(p)) for p in paths]
        print(f"bits where draft and full decode disagree on the same file: {describe(disagreement)}")

        print()
        print(f"pHash distances (threshold: match if <= {PHASH_THRESHOLD}):")
        hashes = {p: fingerprint(p).perceptual_hash for pair in itertools.chain(*copies.values()) for p in pair}
        for name, pairs in copies.items():
            distances = [phash_distance(hashes[a], hashes[b]) for a, b in pairs]
            matched = sum(d <= PHASH_THRESHOLD for d in distances)
            print(f"  copy: {name:18} {describe(distances)}  matched {matched}/{len(distances)}")
        unrelated = [phash_distance(hashes[a], hashes[b]) for a, b in itertools.combinations(paths, 2)]
        false = sum(d <= PHASH_THRESHOLD for d in unrelated)
        print(f"  unrelated pairs:         {describe(unrelated)}  false matches {false}/{len(unrelated)}")

    samples = sorted(p for p in SAMPLES.rglob("*") if p.is_file() and fingerprint(p).perceptual_hash)
    sample_hashes = {p.name: fingerprint(p).perceptual_hash for p in samples}
    original = sample_hashes["harbor.jpg"]
    print()
    print(f"sample_media/ ({len(samples)} images, JPEG and PNG):")
    rounds = 5
    draft_ms = statistics.mean(itertools.chain(*(per_item_seconds(fingerprint, samples) for _ in range(rounds)))) * 1e3
    full_ms = statistics.mean(itertools.chain(*(per_item_seconds(full_decode_phash, samples) for _ in range(rounds)))) * 1e3
    print(f"  fingerprint (draft) {draft_ms:.2f} ms/image, full decode {full_ms:.2f} ms/image")
    disagreement = [phash_distance(sample_hashes[p.name], full_decode_phash(p)) for p in samples]
    print(f"  bits where draft and full decode disagree: {describe(disagreement)}")
    for name in ("harbor_resized.jpg", "harbor_recompressed.jpg"):
        print(f"  harbor.jpg vs {name:24} {phash_distance(original, sample_hashes[name])}")
    others = [n for n in sample_hashes if not n.startswith("harbor_")]
    pairs = [phash_distance(sample_hashes[a], sample_hashes[b]) for a, b in itertools.combinations(others, 2)]
    print(f"  unrelated pairs ({len(others)} images): {describe(pairs)}")


if __name__ == "__main__":
    main()
