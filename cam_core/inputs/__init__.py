"""What the methods feed on besides one pass: images, perturbed inputs (noisy copies, paths from a baseline), masks
and masked-input scores, and clusters of channels."""
