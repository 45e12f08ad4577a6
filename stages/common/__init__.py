"""What the stages share: output paths and atomic writes, bounded reads of input files,
progress, live metrics, images and tables."""
