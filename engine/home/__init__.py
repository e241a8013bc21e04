"""The data folder and what lives in it: where it is, the run's lock, process and log
files, and its database opened and migrated. Every layer above may import it; it
imports only the store, the embedded servers and the vocabulary."""
