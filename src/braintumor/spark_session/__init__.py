"""Spark's session infrastructure: below the Spark jobs, the datasets and the API alike.

:mod:`~braintumor.spark_session.session` turns the Spark settings into a SparkSession,
:mod:`~braintumor.spark_session.commands` turns a failed job into one line, and
:mod:`~braintumor.spark_session.standalone` runs a standalone cluster on this machine. The
jobs themselves are :mod:`braintumor.spark`. Importing this package does not import
pyspark.
"""
