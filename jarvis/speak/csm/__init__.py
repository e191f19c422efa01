"""Sesame CSM-1b through transformers: loading, the fast frame loop, streaming Mimi decode, voices."""
