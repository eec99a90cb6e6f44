"""What to do with an image that is not a brain MRI: the values of OOD_POLICY.

A base module, so that the settings (which parse OOD_POLICY) and the detector (which acts
on it) share the names without the settings importing the detector.
"""

#: Refuse it with NOT_BRAIN_MRI, answer and flag it, or not check at all.
OOD_POLICIES: tuple[str, ...] = ("reject", "warn", "off")
