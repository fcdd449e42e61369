"""The 信用临安 lookup window and the REST API (a later issue)."""
