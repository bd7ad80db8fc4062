"""Where the user is, so that an error's advice names a setting that exists there.

The same checks run behind several interfaces: a command line (`predict --bands 3,2,1`), a data
set description file (`bands: [3, 2, 1]`, read by `train --data`, `eval --data` and `data check`),
a training run (`train --init`, which has no `--download` and whose `--config` is a training
config), `benchmark` (zoo models, backbones from `--backbone-dir`), or a command that cannot choose
at all (`style fit` reads bands by their roles only).
Library code that suggests a fix takes an `Advice` and names the setting through it; a setting
that does not exist where the user is (None) is never suggested.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Advice:
    """The names of the settings a user has where they are (None: no such setting there).

    `in_file`: the settings are keys of the data set description file, not command options.
    """

    bands: str | None = "--bands"
    scale: str | None = "--scale"
    download: str | None = "--download / download=True"
    model_config: str | None = "--config"
    backbone: str | None = "--backbone"
    in_file: bool = False

    def set_bands(self, numbers: Sequence[int]) -> str | None:
        """How to choose these 1-based band numbers here, e.g. `--bands 3,2,1` (None: no way)."""
        if self.bands is None:
            return None
        if self.in_file:
            return f"`{self.bands} [{', '.join(map(str, numbers))}]` in the data set file"
        return f"{self.bands} {','.join(map(str, numbers))}"

    def set_scale(self, value: str) -> str | None:
        """How to set this scaling rule here, e.g. `--scale auto` (None: no way)."""
        if self.scale is None:
            return None
        if self.in_file:
            return f"`{self.scale} {value}` in the data set file"
        return f"{self.scale} {value}"

    def set_config(self, value: str) -> str | None:
        """How to pass this model config here, e.g. `--config vitl-512` (None: no way)."""
        return None if self.model_config is None else f"{self.model_config} {value}"


#: Commands with model and reading options (predict, eval, export, ...) and the Python API.
OPTIONS = Advice()
#: A data set description file: `bands:` and `scale:` keys.
DATA_SET = Advice(bands="bands:", scale="scale:", in_file=True)
#: `train --init`: no --download, and --config is the training config.
TRAINING = Advice(download=None, model_config=None)
#: `benchmark`: zoo models only, no --download, backbones from --backbone-dir.
BENCHMARK = Advice(download=None, model_config=None, backbone="--backbone-dir")
#: A reader whose bands and scaling cannot be chosen (`style fit`).
FIXED = Advice(bands=None, scale=None)
