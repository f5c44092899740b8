"""From a method's signed map to what a person sees: the saliency map at the image's size, colour maps,
overlays and pictures."""
