"""`make bench`: figures and ratios against this machine's own limits."""
