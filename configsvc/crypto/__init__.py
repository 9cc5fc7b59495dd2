"""Secrets at rest: the service's keyring, and sealing a spec's secret fields with it."""
