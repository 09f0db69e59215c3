from gradspec.cli.main import app

app(prog_name="gradspec")
