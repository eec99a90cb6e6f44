"""Refusing what is not a brain MRI (out-of-distribution detection).

One job per module: :mod:`~braintumor.ood.checks` looks at the decoded picture,
:mod:`~braintumor.ood.mahalanobis` fits and scores the feature distance,
:mod:`~braintumor.ood.stats` reads a model file's fitted statistics,
:mod:`~braintumor.ood.detector` combines them into the decision the service acts on, for
the OOD_POLICY values of :mod:`braintumor.policies`. Offline, never imported by serving code:
:mod:`~braintumor.training.ood_fit` fits the statistics of a model and stores them with it,
:mod:`~braintumor.evaluation.ood_set` builds the set of non-MRI images the detector is measured
on, and :mod:`~braintumor.evaluation.ood_report` measures it.
"""

from braintumor.ood.detector import POLICIES, OodDecision, OodDetector

__all__ = ["POLICIES", "OodDecision", "OodDetector"]
