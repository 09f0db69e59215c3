"""Data stage: read files of any supported format into normalised records."""

from gradspec.config.data import parse_field_map
from gradspec.data.load import Dataset, load_dataset
from gradspec.data.records import BadRecord, Message, Record

__all__ = ["BadRecord", "Dataset", "Message", "Record", "load_dataset", "parse_field_map"]
