"""Offline evaluation of a saved model: what it gets right, on which collection, and how
it fares on tumour slices from outside the dataset. Imports serving code, never the
other way round."""
