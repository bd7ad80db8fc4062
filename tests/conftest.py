import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from geotiff import write_geotiff

CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8")


def pytest_sessionstart(session) -> None:
    """The CPU and its vector units at the top of every run, quiet (-q) ones included: a failure
    report then says where it happened."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        for line in cpu_lines():
            reporter.write_line(line)


def cpu_lines() -> list[str]:
    import platform

    import torch

    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model in ("", platform.machine(), "x86_64"):
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    have = " ".join(f for f in CPU_FLAGS if f in flags) or "none of " + " ".join(CPU_FLAGS)
    return [
        f"cpu: {model}; {os.cpu_count()} logical cores; flags: {have}",
        f"torch {torch.__version__}: kernels {torch.backends.cpu.get_cpu_capability()}, "
        f"{torch.get_num_threads()} threads",
    ]


@pytest.fixture(scope="session")
def varied_model():
    """A random vit-tiny-256 model whose predictions vary over the image (several classes).

    Plain random init gives one class everywhere; scaling the patch embedding, the mask features
    and the class head makes the masks follow the image, so tiling bugs change the labels.
    """
    import torch

    import crossearth

    torch.manual_seed(0)
    net = crossearth.create_model("vit-tiny-256", num_classes=5)
    with torch.no_grad():
        torch.nn.init.normal_(net.decode_head.cls_embed.weight, std=1.0)
        net.decode_head.cls_embed.bias.zero_()
        net.decode_head.mask_embed[4].weight.mul_(5)
        net.decode_head.pixel_decoder.mask_feature.weight.mul_(20)
        net.backbone.patch_embed.proj.weight.mul_(5)
    return net


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
