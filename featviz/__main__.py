"""`python -m featviz`: the featviz command line."""

from featviz.cli import app

app(prog_name="featviz")
