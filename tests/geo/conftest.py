import pytest
from geotiff import write_geotiff


@pytest.fixture
def geotiff():
    """The shared GeoTIFF factory: `geotiff(path, data, crs=..., transform=..., gcps=...)`."""
    return write_geotiff
