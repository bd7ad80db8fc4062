import copy
import dataclasses

import pytest
from export_helpers import CLASSES, PALETTE

pytest.importorskip(
    "onnxruntime", reason="export tests run ONNX Runtime: pip install 'crossearth[onnx]'"
)


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
