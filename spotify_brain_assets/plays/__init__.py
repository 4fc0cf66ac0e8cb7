"""Pure functions over DataFrames of plays: parsing API payloads, sessions, merging. No Dagster here."""
