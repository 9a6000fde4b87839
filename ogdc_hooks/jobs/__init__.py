"""Durable background work in PostgreSQL: enqueue, claim under a lease, retry, finish."""
