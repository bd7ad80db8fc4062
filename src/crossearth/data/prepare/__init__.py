"""`crossearth data prepare DATASET RAW_DIR --out DATA_ROOT`: one converter module per raw archive."""
