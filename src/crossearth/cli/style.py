"""`crossearth style`: fit the Earth style distribution used by Earth-Style Injection."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from crossearth.cli.app import app
from crossearth.errors import InputError
from crossearth.wording import count

style_app = typer.Typer(
    no_args_is_help=True, help="Earth-Style Injection: fit style distributions on imagery."
)
app.add_typer(style_app, name="style")


class StylizerChoice(str, Enum):
    spectral = "spectral"
    neural = "neural"


@style_app.command("fit")
def fit(
    image_folder: Annotated[
        Path, typer.Argument(help="Folder of images (GeoTIFF, PNG, JPEG), searched recursively.")
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Output .npz with the style mean and covariance.")
    ],
    stylizer: Annotated[
        StylizerChoice,
        typer.Option(help="spectral (statistics, no weights) or neural (Style Augmentation)."),
    ] = StylizerChoice.spectral,
    predictor: Annotated[
        Path | None, typer.Option(help="checkpoint_stylepredictor.pth (neural stylizer).")
    ] = None,
    transformer: Annotated[
        Path | None, typer.Option(help="checkpoint_transformer.pth (neural stylizer).")
    ] = None,
    size: Annotated[
        int, typer.Option(min=32, help="Images are resized and cropped to this.")
    ] = 256,
    limit: Annotated[
        int | None, typer.Option(min=2, help="Use at most N images, spread over the folder.")
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Images embedded at once.")] = 16,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda (neural stylizer).")] = "auto",
) -> None:
    """Embed every image in IMAGE_FOLDER and save the mean and covariance of the embeddings."""
    import torch

    from crossearth.fileio import atomic_path
    from crossearth.train.style import NeuralStylizer, SpectralStylizer, fit_earth_style

    if out.is_dir():
        raise InputError(f"--out {out} is a folder; give a file name such as earth_style.npz")
    if stylizer is StylizerChoice.neural:
        if predictor is None or transformer is None:
            raise InputError(
                "the neural stylizer needs --predictor checkpoint_stylepredictor.pth and "
                "--transformer checkpoint_transformer.pth"
            )
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        try:
            torch_device = torch.device(device)
        except RuntimeError:
            raise InputError(f"--device must be auto, cpu or cuda, got {device!r}") from None
        model = NeuralStylizer.from_checkpoints(predictor, transformer).to(torch_device)
    else:
        if predictor is not None or transformer is not None:
            raise InputError("--predictor and --transformer are for --stylizer neural")
        model = SpectralStylizer()
    earth = fit_earth_style(image_folder, model, size=size, limit=limit, batch_size=batch_size)
    with atomic_path(out) as tmp:
        earth.save(tmp)
    Console(stderr=True).print(
        f"{earth.dim}-d {earth.stylizer} style fitted on {count(earth.count, 'image')}: {out}",
        highlight=False,
    )
