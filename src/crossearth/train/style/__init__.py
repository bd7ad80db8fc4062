"""Earth-Style Injection: style distributions, stylizers, and the online block-wise restyling.

- `EarthStyle`: a Gaussian over style embeddings (fit, sample as in Style Augmentation, save/load).
- `SpectralStylizer`: the default stylizer, from image statistics (no weights needed).
- `NeuralStylizer`: the paper's Style Augmentation networks, loaded from the published files.
- `EarthStyleInjection`: restyles a training batch with probability `prob`, block-wise.
- `fit_earth_style`: fit an `EarthStyle` on a folder of images.
"""

from crossearth.train.style.base import Stylizer
from crossearth.train.style.earth import EarthStyle, RunningMoments
from crossearth.train.style.fit import find_images, fit_earth_style, read_style_image
from crossearth.train.style.injection import EarthStyleInjection, Injection
from crossearth.train.style.neural import (
    GhiasiTransformer,
    NeuralStylizer,
    StyleEmbeddings,
    StylePredictor,
    load_style_embeddings,
)
from crossearth.train.style.spectral import SpectralStylizer

__all__ = [
    "EarthStyle",
    "EarthStyleInjection",
    "GhiasiTransformer",
    "Injection",
    "NeuralStylizer",
    "RunningMoments",
    "SpectralStylizer",
    "StyleEmbeddings",
    "StylePredictor",
    "Stylizer",
    "find_images",
    "fit_earth_style",
    "load_style_embeddings",
    "read_style_image",
]
