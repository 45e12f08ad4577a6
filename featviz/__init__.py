"""featviz: feature visualization by activation maximization for image classifiers."""
