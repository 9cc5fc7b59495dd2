"""The sources of a client, one per backend, all speaking `Synchronizer`: streaming (SSE),
polling (ETag), files (YAML + watchfiles)."""
