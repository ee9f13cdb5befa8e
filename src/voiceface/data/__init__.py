"""Datasets: the manifest format, adapters for real corpora, splits and published evaluation lists."""
from .manifest import COLUMNS, MODALITIES, Item, Manifest, read_manifest, write_manifest

__all__ = ["COLUMNS", "MODALITIES", "Item", "Manifest", "read_manifest", "write_manifest"]
