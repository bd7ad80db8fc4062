import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


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
