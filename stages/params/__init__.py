"""params.yaml as the stages read it: the file and its keys (yaml_file), the models, class
sets and grid (reader), and one module per section."""
