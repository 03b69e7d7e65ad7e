"""Index stage: tokeniser, embedder, FAISS + BM25 store, build and incremental update."""
