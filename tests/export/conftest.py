import copy
import dataclasses

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

CLASSES = ("water", "road", "tree", "roof", "grass")
PALETTE = ((0, 0, 255), (128, 128, 128), (0, 128, 0), (200, 0, 0), (120, 220, 90))


@pytest.fixture(scope="session")
def small_model(varied_model):
    """The varied vit-tiny-256 model with names, an IRRG band order and a 9 cm GSD."""
    net = copy.deepcopy(varied_model)
    net.config = dataclasses.replace(
        net.config, class_names=CLASSES, palette=PALETTE, bands="IRRG", gsd_m=0.09
    )
    return net


@pytest.fixture(scope="session")
def small_onnx(small_model, tmp_path_factory):
    from crossearth.export.onnx import export_onnx

    return export_onnx(small_model, tmp_path_factory.mktemp("onnx") / "small.onnx")


@pytest.fixture(scope="session")
def ref_model():
    """The official reference model (random weights of the official init, vit-tiny-256 layout):
    varied labels and scores of a trained model's magnitude (sums over classes 0.7..90)."""
    from reference import config_path, reference_dir

    import crossearth

    net = crossearth.load_model(reference_dir() / "small_ref2.pth", config=config_path())
    net.config = dataclasses.replace(net.config, class_names=CLASSES, palette=PALETTE, gsd_m=0.3)
    return net


@pytest.fixture(scope="session")
def ref_onnx(ref_model, tmp_path_factory):
    from crossearth.export.onnx import export_onnx

    return export_onnx(ref_model, tmp_path_factory.mktemp("onnx") / "ref.onnx")


def reference_image(name: str = "a") -> np.ndarray:
    from PIL import Image
    from reference import reference_dir

    return np.asarray(Image.open(reference_dir() / f"small_ref2_input_{name}.png").convert("RGB"))


def smooth_tiles(n: int, size: int, seed: int = 0) -> np.ndarray:
    """[n, size, size, 3] uint8 tiles of 16-pixel blocks (structure, so several classes appear)."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (n, size // 16, size // 16, 3))
    return np.kron(base, np.ones((1, 16, 16, 1), np.int64)).astype(np.uint8)
