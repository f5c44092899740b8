"""Model passes: one hooked pass that captures layers as differentiable tensors, and the private copies of a model
for many fast masked-input passes and for guided backpropagation."""
