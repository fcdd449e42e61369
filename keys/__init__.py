"""Ed25519 keys of the ledger's authorities: signing, encrypted storage, and the key registry view.

``keys.registry`` uses only the standard library so that offline verifiers can use it unchanged.
"""
