"""braintumor: brain-MRI tumour classification with Grad-CAM explanations.

Data flows one way: bytes -> decoded image -> canonical tensor -> probabilities and
feature map -> answer. Each step is one module; the API, the CLI, training and the
Spark jobs all call the same steps so that they cannot drift apart.
"""

__version__ = "1.0.0"
