"""Geospatial helpers: georeferenced rasters, areas, vectors and previews."""
