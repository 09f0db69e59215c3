"""Spectra stage: singular values, metrics and cosines from per-sample gradient factors."""

from gradspec.spectra.metrics import spectral_metrics
from gradspec.spectra.sample import SampleSpectra, sample_spectra
from gradspec.spectra.similarity import same_layer_notes
from gradspec.spectra.singular import singular_values
from gradspec.store.contract import METRICS

__all__ = ["METRICS", "SampleSpectra", "same_layer_notes", "sample_spectra", "singular_values", "spectral_metrics"]
