"""Refusing what is not a brain MRI (out-of-distribution detection).

One job per module: :mod:`~braintumor.ood.checks` looks at the decoded picture,
:mod:`~braintumor.ood.mahalanobis` fits and scores the feature distance,
:mod:`~braintumor.ood.detector` combines them into the decision the service acts on,
:mod:`~braintumor.ood.fit` fits the statistics of a model and stores them with it,
:mod:`~braintumor.ood.evalset` builds the set of non-MRI images the detector is measured
on, and :mod:`~braintumor.ood.report` measures it.
"""

from braintumor.ood.detector import POLICIES, OodDecision, OodDetector

__all__ = ["POLICIES", "OodDecision", "OodDetector"]
