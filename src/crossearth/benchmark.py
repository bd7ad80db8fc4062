"""The RSDG benchmark settings of the paper and its published numbers.

Each `Setting` names its source domain (what the model was trained on), the target domains and
splits it is scored on, the zoo checkpoint trained on its source, the crop config, and the paper's
CrossEarth mIoU with where that number comes from:
- "table": the paper's Potsdam/Vaihingen table (exact).
- "chart": read from the radar chart of the first arXiv version (one decimal, read by eye).
- None: not published (D2M, S2A, Tem2Sub, Tem2Tms, Trf2Tem, Trf2Tms).
`rein` is the Rein baseline: exact in the table, derived as CrossEarth minus the chart's gain.
"""

from __future__ import annotations

from dataclasses import dataclass

from crossearth.data.catalog import DOMAINS, Domain
from crossearth.errors import UnknownNameError


@dataclass(frozen=True)
class Target:
    domain: str
    split: str


@dataclass(frozen=True)
class Setting:
    name: str
    source: str
    targets: tuple[Target, ...]
    model: str | None  # zoo entry trained on the source (None: not released)
    preset: str
    paper_miou: float | None
    paper_source: str | None
    rein_miou: float | None = None
    in_domain: bool = False
    notes: str = ""

    @property
    def source_domain(self) -> Domain:
        return DOMAINS[self.source]

    @property
    def num_classes(self) -> int:
        return len(self.source_domain.classes)


def _t(domain: str, split: str) -> tuple[Target, ...]:
    return (Target(domain, split),)


_ISPRS = (
    # name, source, target, model, CrossEarth, Rein  (paper table, exact)
    ("P(i)2V", "potsdam-irrg", "vaihingen", "potsdam-irrg", 67.5, 60.3),
    ("V2P(i)", "vaihingen", "potsdam-irrg", "vaihingen", 58.2, 57.6),
    ("P(r)2P(i)", "potsdam-rgb", "potsdam-irrg", "potsdam-rgb", 77.8, 76.3),
    ("P(i)2P(r)", "potsdam-irrg", "potsdam-rgb", "potsdam-irrg", 76.0, 69.2),
    ("P(r)2V", "potsdam-rgb", "vaihingen", "potsdam-rgb", 61.9, 56.1),
    ("V2P(r)", "vaihingen", "potsdam-rgb", "vaihingen", 52.7, 50.6),
)

_CASID = {"Sub": "casid-subms", "Tem": "casid-temms", "Tms": "casid-troms", "Trf": "casid-trorf"}
# CrossEarth mIoU and gain over Rein from the radar chart; None = not on the chart.
_CASID_CHART = {
    ("Sub", "Sub"): (69.4, 2.2), ("Sub", "Tem"): (48.1, 1.7), ("Sub", "Tms"): (64.6, 4.9),
    ("Sub", "Trf"): (64.2, 0.8), ("Tem", "Tem"): (53.5, 2.2), ("Tem", "Trf"): (57.8, 1.9),
    ("Tms", "Tms"): (68.9, 3.9), ("Tms", "Sub"): (69.1, 0.5), ("Tms", "Tem"): (40.5, 3.3),
    ("Tms", "Trf"): (60.7, 1.0), ("Trf", "Trf"): (65.3, 4.3), ("Trf", "Sub"): (67.9, 0.3),
}  # fmt: skip


def _chart(value: float | None, gain: float | None) -> dict:
    if value is None:
        return {"paper_miou": None, "paper_source": None, "rein_miou": None}
    return {"paper_miou": value, "paper_source": "chart", "rein_miou": round(value - gain, 1)}


def _settings() -> list[Setting]:
    out = [
        Setting(name, src, _t(tgt, "val"), model, "vitl-512", miou, "table", rein)
        for name, src, tgt, model, miou, rein in _ISPRS
    ]
    out += [
        Setting("U2R", "loveda-urban", _t("loveda-rural", "val"), None, "vitl-1024", **_chart(46.6, 1.0),
                notes="LoveDA checkpoints are not released"),
        Setting("R2U", "loveda-rural", _t("loveda-urban", "val"), None, "vitl-1024", **_chart(57.9, 0.2),
                notes="LoveDA checkpoints are not released"),
        Setting("D2M", "deepglobe", _t("massachusetts", "test"), "deepglobe-roads", "vitl-1024",
                **_chart(None, None)),
        Setting("P(r)2Res", "potsdam-rescue-rgb", _t("rescuenet", "test"), "potsdam-rgb-rescuenet",
                "vitl-512", **_chart(46.8, 0.9)),
        Setting("P(i)2Res", "potsdam-rescue-irrg", _t("rescuenet", "test"), "potsdam-irrg-rescuenet",
                "vitl-512", **_chart(45.5, 0.1)),
        Setting("A2S", "whu-aerial", _t("whu-satellite", "test"), "whu-aerial", "vitl-512",
                **_chart(44.3, 13.5)),
        Setting("S2A", "whu-satellite", _t("whu-aerial", "val"), "whu-satellite", "vitl-512",
                **_chart(None, None),
                notes="the paper's 1036 aerial test images are the official val split"),
    ]  # fmt: skip
    for (src, tgt), (miou, gain) in (
        (k, _CASID_CHART.get(k, (None, None))) for k in _casid_pairs()
    ):
        out.append(
            Setting(
                f"{src}2{tgt}",
                _CASID[src],
                _t(_CASID[tgt], "test"),
                _CASID[src],
                "vitl-1024",
                **_chart(miou, gain),
                in_domain=src == tgt,
            )
        )
    return out


def _casid_pairs() -> list[tuple[str, str]]:
    names = list(_CASID)
    return [(s, t) for s in names for t in names]


SETTINGS: dict[str, Setting] = {s.name: s for s in _settings()}

# SynthEarth (procedural data, `crossearth synth`): train on urban aerial RGB, test on the shifts.
SYNTH_SETTINGS: dict[str, Setting] = {
    "SynthEarth": Setting(
        "SynthEarth", "synthearth-urban-aerial-rgb",
        tuple(Target(f"synthearth-{n}", "val") for n in ("urban-aerial-rgb", "urban-aerial-irrg",
              "rural-aerial-rgb", "urban-satellite-rgb", "urban-autumn-rgb")),
        None, "vit-tiny-256", None, None, notes="procedural data; source domain listed first",
    ),
}  # fmt: skip


# Every setting `train --setting` and `eval --setting` accept: the paper's, then SynthEarth.
ALL_SETTINGS: dict[str, Setting] = SETTINGS | SYNTH_SETTINGS


def get_setting(name: str) -> Setting:
    """The setting called `name` (case-insensitive): the paper's and SynthEarth.

    Raises:
        UnknownNameError: (a `KeyError`) no such setting; the message lists every known one.
    """
    every = ALL_SETTINGS
    if name in every:
        return every[name]
    folded = {k.lower(): v for k, v in every.items()}
    if name.lower() in folded:
        return folded[name.lower()]
    raise UnknownNameError(f"unknown setting {name!r}; known: {', '.join(ALL_SETTINGS)}")
