"""Where training and evaluation images come from, decoded once through the canonical
preprocessing: class-per-folder datasets and tumour slices with their groups
(:mod:`~braintumor.datasets.folders`), and the Parquet the Spark preprocess job writes
(:mod:`~braintumor.datasets.parquet`)."""
