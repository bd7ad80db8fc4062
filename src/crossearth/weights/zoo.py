"""The model zoo: every released CrossEarth checkpoint by name, and where to find its file.

Files are looked up, in order, in `$CROSSEARTH_HOME/checkpoints` (default
`~/.cache/crossearth/checkpoints`) and in the Hugging Face cache; they are downloaded from the Hub
only when the caller allows it. Offline, the error names the file, its URL and where to put it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from crossearth.advice import OPTIONS, Advice
from crossearth.data.classes import BUILDING, CASID, ISPRS, RESCUE, ROAD, ClassSet
from crossearth.errors import CheckpointError, WeightsUnavailableError

HF_REPO = "Cusyoung/CrossEarth"
BACKBONE_FILES = {"vitl-512": "dinov2_converted.pth", "vitl-1024": "dinov2_converted_1024x1024.pth"}


@dataclass(frozen=True)
class ZooEntry:
    """A released checkpoint: its file, architecture preset, classes and the domain it learned."""

    name: str
    filename: str
    preset: str
    classes: ClassSet
    source_domain: str
    bands: str  # what the model expects in its three input slots: "RGB" or "IRRG" (NIR, R, G)
    gsd_m: float | None  # ground sample distance of the source domain, metres
    description: str

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def backbone_filename(self) -> str:
        return BACKBONE_FILES[self.preset]

    @property
    def url(self) -> str:
        return hf_url(self.filename)


def hf_url(filename: str) -> str:
    """The direct download link of a zoo file (`/resolve/`; `/blob/` would be its HTML page)."""
    return f"https://huggingface.co/{HF_REPO}/resolve/main/{quote(filename, safe='()')}"


_ENTRIES = (
    ZooEntry("potsdam-irrg", "Potsdam(i)-source.pth", "vitl-512", ISPRS, "ISPRS Potsdam (IRRG)",
             "IRRG", 0.05, "Trained on Potsdam IRRG; targets Vaihingen and Potsdam RGB."),
    ZooEntry("potsdam-rgb", "Potsdam(r)-source.pth", "vitl-512", ISPRS, "ISPRS Potsdam (RGB)",
             "RGB", 0.05, "Trained on Potsdam RGB; targets Potsdam IRRG and Vaihingen."),
    ZooEntry("vaihingen", "Vaihingen-source.pth", "vitl-512", ISPRS, "ISPRS Vaihingen (IRRG)",
             "IRRG", 0.09, "Trained on Vaihingen; targets Potsdam IRRG and RGB."),
    ZooEntry("whu-aerial", "WHU-Building-A2S.pth", "vitl-512", BUILDING, "WHU Building aerial",
             "RGB", 0.3, "Buildings, trained on WHU aerial; target WHU satellite II."),
    ZooEntry("whu-satellite", "WHU-Building-S2A.pth", "vitl-512", BUILDING, "WHU Building satellite II",
             "RGB", None, "Buildings, trained on WHU satellite II; target WHU aerial."),
    ZooEntry("deepglobe-roads", "D2M-Rein.pth", "vitl-1024", ROAD, "DeepGlobe roads",
             "RGB", 0.5, "Roads, trained on DeepGlobe; target Massachusetts roads."),
    ZooEntry("potsdam-rgb-rescuenet", "Potsdam(r)2RescueNet.pth", "vitl-512", RESCUE,
             "ISPRS Potsdam (RGB, 5-class RescueNet labels)", "RGB", 0.05,
             "Potsdam RGB relabelled to RescueNet's 5 classes; target RescueNet (UAV, post-disaster)."),
    ZooEntry("potsdam-irrg-rescuenet", "Potsdam(i)2RescueNet.pth", "vitl-512", RESCUE,
             "ISPRS Potsdam (IRRG, 5-class RescueNet labels)", "IRRG", 0.05,
             "Potsdam IRRG relabelled to RescueNet's 5 classes; target RescueNet."),
    ZooEntry("casid-subms", "casid-sub-source.pth", "vitl-1024", CASID, "CASID subtropical monsoon",
             "RGB", 1.0, "Trained on CASID SubMs; targets the other three climates."),
    ZooEntry("casid-temms", "casid-tem-source.pth", "vitl-1024", CASID, "CASID temperate monsoon",
             "RGB", 1.0, "Trained on CASID TemMs; targets the other three climates."),
    ZooEntry("casid-troms", "casid-tms-source.pth", "vitl-1024", CASID, "CASID tropical monsoon",
             "RGB", 1.0, "Trained on CASID TroMs; targets the other three climates."),
    ZooEntry("casid-trorf", "casid-trf-source.pth", "vitl-1024", CASID, "CASID tropical rainforest",
             "RGB", 1.0, "Trained on CASID TroRf; targets the other three climates."),
)  # fmt: skip

ZOO: dict[str, ZooEntry] = {e.name: e for e in _ENTRIES}


def checkpoint_dir() -> Path:
    home = os.environ.get("CROSSEARTH_HOME")
    base = Path(home) if home else Path.home() / ".cache" / "crossearth"
    return base / "checkpoints"


def locate(filename: str, *, download: bool = False, advice: Advice = OPTIONS) -> Path:
    """Path of a zoo file on disk; downloads it from the Hub only if `download` is True.

    Raises `WeightsUnavailableError` (one line naming the file, its URL and where to put it) when
    the file is not on disk and may not, or could not, be downloaded; the way to allow downloads
    is named as the setting `advice` names, when there is one."""
    local = checkpoint_dir() / filename
    if local.is_file():
        return local
    from huggingface_hub import hf_hub_download

    from crossearth.weights.hub import download as hub_download

    try:
        return Path(hf_hub_download(HF_REPO, filename, local_files_only=True))
    except Exception:  # not in the HF cache
        pass
    if download:
        try:
            return hub_download(HF_REPO, filename)
        except CheckpointError as exc:  # unreachable, refused or missing: one line, then the way
            raise WeightsUnavailableError(
                f"{exc}. Download it by hand from {hf_url(filename)} and put it at {local}"
            ) from None
    how = "" if download or not advice.download else f" or allow downloading ({advice.download})"
    raise WeightsUnavailableError(
        f"{filename} is not on this machine. Download it from {hf_url(filename)} (e.g. curl -L "
        f"-o '{local}' '{hf_url(filename)}') and put it at {local} (or set CROSSEARTH_HOME){how}"
    )


def is_present(filename: str) -> bool:
    """Whether a zoo file is on this machine (`locate` finds it without downloading)."""
    try:
        locate(filename)
    except WeightsUnavailableError:
        return False
    return True
