"""Invisible 128-bit image watermark: embed into and extract from the DWT-DCT domain of a fixed-size luma grid."""
from __future__ import annotations

import functools
import hashlib

import numpy as np
import pywt
from PIL import Image

PAYLOAD_BYTES = 16
PAYLOAD_BITS = PAYLOAD_BYTES * 8
MATCH_BIT_ERRORS = 6  # a payload read back within 6 of 128 bits of a record's is that record's
GRID = 512  # the luma is read on a GRID x GRID canvas, so any rescaled copy maps back onto the same cells
BLOCK = 8
BAND = ((2, 1), (1, 2), (3, 0), (0, 3), (2, 2), (3, 1), (1, 3), (4, 0), (0, 4))  # mid-low DCT positions per block
MARGIN = 8.0  # each bit's correlation is pushed at least this far from zero
MIN_PSNR = 40.0  # a marked image whose changes would cost more is marked more faintly, to exactly this PSNR
GREY_MODES = ("L", "LA", "I", "I;16", "F")
LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114])  # ITU-R 601, as JPEG's Y
DOMAIN = b"provsim-watermark-v1"  # the layout comes from SHA-256(DOMAIN + the deployment's secret watermark key)

_DCT = np.array([[np.sqrt((1 if k == 0 else 2) / BLOCK) * np.cos(np.pi * (2 * n + 1) * k / (2 * BLOCK))
                  for n in range(BLOCK)] for k in range(BLOCK)])


def payload_of(signature_hex: str) -> bytes:
    """The 128-bit payload of a record: the first 16 bytes of SHA-256 of its signature bytes."""
    return hashlib.sha256(bytes.fromhex(signature_hex)).digest()[:PAYLOAD_BYTES]


def bit_errors(a: bytes, b: bytes) -> int:
    """Hamming distance between two payloads."""
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).bit_count()


@functools.lru_cache(maxsize=8)
def _layout(key: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Which bit each band coefficient carries and its +-1 chip: a permutation and signs drawn from the key, so
    without the key the mark can be neither read nor written."""
    cells = (GRID // 2 // BLOCK) ** 2 * len(BAND)
    rng = np.random.default_rng(int.from_bytes(hashlib.sha256(DOMAIN + key).digest(), "big"))
    owner = rng.permutation(np.arange(cells) % PAYLOAD_BITS)
    chips = rng.choice(np.array([-1.0, 1.0]), size=cells)
    return owner, chips


def _grid(luma: np.ndarray) -> np.ndarray:
    """The luma resampled onto the GRID x GRID canvas."""
    return np.asarray(Image.fromarray(luma.astype(np.float32), "F").resize((GRID, GRID), Image.Resampling.BICUBIC),
                      dtype=np.float64)


def _band(grid: np.ndarray) -> tuple[np.ndarray, tuple]:
    """The band coefficients of a grid (block DCT of the DWT's approximation) and what rebuilds the grid."""
    approx, details = pywt.dwt2(grid, "haar")
    n = approx.shape[0] // BLOCK
    blocks = approx.reshape(n, BLOCK, n, BLOCK).transpose(0, 2, 1, 3)
    dct = _DCT @ blocks @ _DCT.T
    rows, cols = zip(*BAND)
    return dct[:, :, rows, cols].reshape(-1), (dct, details)


def _rebuild(coeffs: np.ndarray, parts: tuple) -> np.ndarray:
    """The grid with its band coefficients replaced."""
    dct, details = parts
    dct = dct.copy()
    rows, cols = zip(*BAND)
    dct[:, :, rows, cols] = coeffs.reshape(dct.shape[0], dct.shape[1], len(BAND))
    n = dct.shape[0]
    approx = (_DCT.T @ dct @ _DCT).transpose(0, 2, 1, 3).reshape(n * BLOCK, n * BLOCK)
    return pywt.idwt2((approx, details), "haar")


def _correlations(coeffs: np.ndarray, key: bytes) -> np.ndarray:
    """Each bit's mean chip-weighted coefficient: positive reads as 1, negative as 0."""
    owner, chips = _layout(key)
    return np.bincount(owner, weights=coeffs * chips, minlength=PAYLOAD_BITS) / np.bincount(owner)


def _bits(payload: bytes) -> np.ndarray:
    """The payload as +-1 per bit, most significant first."""
    return np.unpackbits(np.frombuffer(payload, np.uint8)).astype(np.float64) * 2 - 1


def read_luma(luma: np.ndarray, key: bytes) -> bytes:
    """Read the payload from a luma array of any size."""
    return np.packbits(_correlations(_band(_grid(luma))[0], key) > 0).tobytes()


def embed_luma(luma: np.ndarray, payload: bytes, key: bytes, rounds: int = 2) -> np.ndarray:
    """The luma with the payload embedded (float, unclipped); a second round makes up for resampling losses (a
    third was measured to add under 0.1 to the weakest bit's correlation)."""
    if len(payload) != PAYLOAD_BYTES:
        raise ValueError(f"payload must be {PAYLOAD_BYTES} bytes, not {len(payload)}")
    want = _bits(payload)
    owner, chips = _layout(key)
    height, width = luma.shape
    marked = luma.astype(np.float64)
    for _ in range(rounds):
        grid = _grid(marked)
        coeffs, parts = _band(grid)
        corr = _correlations(coeffs, key)
        short = np.maximum(MARGIN - want * corr, 0.0)  # how far each bit's correlation falls short of the margin
        if not short.any():
            break
        moved = coeffs + (want * short)[owner] * chips
        residual = _rebuild(moved, parts) - grid
        up = Image.fromarray(residual.astype(np.float32), "F").resize((width, height), Image.Resampling.BICUBIC)
        marked = marked + np.asarray(up, dtype=np.float64)
    return marked


def luma_of(image: Image.Image) -> np.ndarray:
    """The image's luma as a float array."""
    if image.mode in GREY_MODES:
        return np.asarray(image.getchannel(0).convert("F"), dtype=np.float64)
    return np.asarray(image.convert("RGB"), dtype=np.float64) @ LUMA_WEIGHTS


def embed(image: Image.Image, payload: bytes, key: bytes) -> Image.Image:
    """A marked copy of the image (8-bit grey or RGB, alpha kept): its luma moved equally in every colour channel."""
    grey = image.mode in GREY_MODES
    base = image.convert("L" if grey else "RGB")
    pixels = np.asarray(base, dtype=np.float64)
    luma = pixels if grey else pixels @ LUMA_WEIGHTS
    delta = embed_luma(luma, payload, key) - luma
    if not grey:
        delta = delta[..., None]
    mse = float(np.mean((np.clip(pixels + delta, 0, 255) - pixels) ** 2))
    if mse > _mse_at(MIN_PSNR):
        delta = delta * np.sqrt(_mse_at(MIN_PSNR) / mse)
    marked = Image.fromarray(np.clip(np.rint(pixels + delta), 0, 255).astype(np.uint8), base.mode)
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        marked.putalpha(image.convert("RGBA").getchannel("A"))
    return marked


def read(image: Image.Image, key: bytes) -> bytes:
    """Read the payload from an image (a marked copy, or any rescaled or re-encoded copy of one)."""
    return read_luma(luma_of(image), key)


def psnr(original: Image.Image, marked: Image.Image) -> float:
    """Peak signal-to-noise ratio of the marked copy against its original, in dB, over every colour channel."""
    mode = "L" if marked.mode in ("L", "LA") else "RGB"
    a = np.asarray(original.convert(mode), dtype=np.float64)
    b = np.asarray(marked.convert(mode), dtype=np.float64)
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def _mse_at(db: float) -> float:
    """The mean squared error of 8-bit images at this PSNR."""
    return 255.0**2 / 10 ** (db / 10)
