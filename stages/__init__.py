"""Pipeline stages: read params.yaml and inputs, call the library, write outputs atomically."""
