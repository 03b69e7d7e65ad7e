"""Corpus stage: read documents, normalise them, and cut them into one chunk per reform item."""
