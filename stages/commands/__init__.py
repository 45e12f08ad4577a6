"""The non-stage commands: `featviz render`, `featviz layers` and `featviz classes` lookups,
and the sharding of the grid over workers."""
