"""Options that several commands share, declared once so that they read the same everywhere."""

from __future__ import annotations

import typer

TEMPLATE = typer.Option("auto", help="auto | plain | chat.")
SYSTEM_PROMPT = typer.Option(None, help="System turn for records without one.")
MAX_LENGTH = typer.Option(2048, help="Most tokens of prompt plus response.")
TRUNCATION = typer.Option("end", help="end (cut the text's end) | prompt_start (cut the prompt first).")
LIMIT = typer.Option(None, help="Only the first N records.")
FIELD_MAP = typer.Option(None, help="Rename fields, e.g. output=answer,instruction=question.")
DTYPE = typer.Option("float32", help="float32 | bfloat16 | float16 (spectral maths stays >= float32).")
DEVICE = typer.Option("auto", help="auto | cpu | cuda | cuda:N.")
TRUST_REMOTE_CODE = typer.Option(False, "--trust-remote-code", help="Run the model repository's own code.")
PROGRESS = typer.Option(True, "--progress/--no-progress", help="Show progress bars.")
