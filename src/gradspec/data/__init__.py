"""Data stage: read files of any supported format into normalised records."""

from gradspec.data.load import Dataset, load_dataset
from gradspec.data.records import BadRecord, Message, Record
from gradspec.data.vocabulary import parse_field_map

__all__ = ["BadRecord", "Dataset", "Message", "Record", "load_dataset", "parse_field_map"]
