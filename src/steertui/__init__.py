"""steertui: steer a code model and see, live, what it does."""

__version__ = "0.1.0"
