"""The pure credit domain: identifiers, the ledger clock, aggregates and their rules."""
