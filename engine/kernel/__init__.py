"""The pipeline of one process: wiring, its persisted and live drives, checkpoints."""
