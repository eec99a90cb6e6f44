"""Batch jobs on Apache Spark: preprocess a dataset to Parquet, classify many images.

Spark only moves bytes and rows; every image still goes through the package's own
decoding and canonical preprocessing inside ``mapInPandas``, so a batch job labels and
scores a file exactly as the API does. Importing this package does not import pyspark;
the modules that need it do, so the rest of the package runs without a JVM. The session
they run in, their one-line errors and the standalone cluster are
:mod:`braintumor.spark_session`, which the datasets and the API use too.
"""
