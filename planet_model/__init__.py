"""planet_model: labels, chip records, input pipeline, models, losses, metrics and the model bundle.

Modules that need neither TensorFlow nor Beam (``labels``, ``metrics``, ``thresholds``) import neither,
so that command-line help and pure-logic tests stay fast.
"""
