"""The Docker stack: its shape (spec), its containers (Docker SDK) and its run."""
