"""The signed, append-only ledger: application, storage, Merkle log, checkpoints, verification."""
