import pytest
from geotiff import write_geotiff


@pytest.fixture
def geotiff():
    """The shared GeoTIFF factory: `geotiff(path, data, crs=..., transform=..., gcps=...)`."""
    return write_geotiff


@pytest.fixture(scope="session")
def named_model_file(varied_model, tmp_path_factory):
    """`varied_model` saved with class names, a palette and a 0.3 m GSD (a .safetensors path)."""
    import copy
    import dataclasses

    import crossearth

    net = copy.deepcopy(varied_model)
    net.config = dataclasses.replace(
        net.config,
        class_names=("water", "road", "tree", "roof", "grass"),
        palette=((0, 0, 255), (128, 128, 128), (0, 128, 0), (200, 0, 0), (120, 220, 90)),
        gsd_m=0.3,
    )
    path = tmp_path_factory.mktemp("model") / "varied.safetensors"
    crossearth.save_model(net, path)
    return path


@pytest.fixture(scope="session")
def varied_model_file(varied_model, tmp_path_factory):
    """`varied_model` saved as it is (generic class names, no GSD): a .safetensors path."""
    import crossearth

    path = tmp_path_factory.mktemp("model") / "varied.safetensors"
    crossearth.save_model(varied_model, path)
    return path
