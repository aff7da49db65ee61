"""Faces → people: cluster embeddings, fold clusters and decisions into identities."""
