"""Peer runners: each calls one outside library on the shared benchmark data."""
