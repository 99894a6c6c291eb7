"""What every kind shares: structures as data, candidates, one selection loop, registries,
seeds and keyword checks. Nothing here knows tables, text or series; see docs/architecture.md."""
