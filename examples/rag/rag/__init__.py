"""RAG over the data lake through the inference gateway (README "AI stack", examples/rag/README.md)."""
