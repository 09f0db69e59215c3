import gradspec.cli.main  # noqa: F401  (registers every command on app)
from gradspec.cli.app import app

app(prog_name="gradspec")
