"""Models: the models.yaml table, building a classifier with its weights and labels, and how a layer's output
becomes a (channels, h, w) map (token layouts)."""
