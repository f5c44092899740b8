"""Faithfulness of maps: the metrics (deletion / insertion, Average Drop / Increase), a map's scores through an
Explainer, the cascading randomisation sanity check, and folder evaluation (optionally on Ray)."""
