"""Where provsim keeps its state, and the defaults a run starts from."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .connect import ChainSpec
from .ingest import DEFAULT_IMAGE_CAP, DEFAULT_OTHER_CAP, Caps
from .records import Party
from .signing import SignerIdentity

DEFAULT_DATA_DIR = Path(os.environ.get("PROVSIM_DATA_DIR", ".provsim"))
DEFAULT_SIGNER = SignerIdentity(org_name="Provsim Demo Newsroom", org_type="news_agency", key_name="production")


@dataclass(frozen=True)
class Settings:
    """Everything a service instance needs to open its state and run."""

    data_dir: Path = DEFAULT_DATA_DIR
    db_path: Path | None = None
    signer: SignerIdentity = DEFAULT_SIGNER
    time_scale: float = 1.0
    batch_size: int = 256
    batch_interval: float = 5.0
    caps: Caps = field(default_factory=lambda: Caps(image=DEFAULT_IMAGE_CAP, other=DEFAULT_OTHER_CAP))
    workers: int = max(1, os.cpu_count() or 1)
    chain: ChainSpec = field(default_factory=ChainSpec)
    confirmations: int = 1
    mint_nfts: bool = True
    registrar: Party = Party("1", "provsim")
    originator_address: str | None = None
    allow_private: bool = False  # downloads may reach loopback, private and link-local addresses
    watermark: bool = False  # write a watermarked copy of every registered image

    @property
    def marked_dir(self) -> Path:
        """Where the watermarked copies are written: marked/ in the data directory."""
        return self.data_dir / "marked"

    @property
    def db(self) -> Path:
        """The SQLite file: --db, else provsim.db in the data directory."""
        return self.db_path if self.db_path is not None else self.data_dir / "provsim.db"
