"""Thin Dagster assets that wire the pure logic to the data root."""
