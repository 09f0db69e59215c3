"""The bundled demo: careful versus poor answers to the same 24 instructions."""

from gradspec.demo.run import DEMO_GROUPS, demo, demo_data

__all__ = ["DEMO_GROUPS", "demo", "demo_data"]
