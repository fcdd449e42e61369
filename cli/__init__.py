"""The `credit` command line."""
