"""Whole series: DICOM files, a zip of them or a NIfTI volume -> one answer per slice,
one for the series, and the key slice explained (``POST /api/classify-series``,
``braintumor classify-series``, ``braintumor dicomweb``)."""

from braintumor.series.inputs import series_from_parts, series_from_path
from braintumor.series.run import SeriesResult, classify_series
from braintumor.series.volume import SeriesSlice, SeriesVolume

__all__ = ["SeriesResult", "SeriesSlice", "SeriesVolume", "classify_series",
           "series_from_parts", "series_from_path"]
