"""Views of a layer beyond a method's map: channels ranked by a method's weights, one channel's map, clusters'
score gains."""
