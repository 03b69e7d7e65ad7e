"""Search stage: retrieval, fusion, filters, answer views, evaluation, and the CLI."""
