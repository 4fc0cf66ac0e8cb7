"""Importing Spotify's personal data export: finding its files, parsing them, deduplicating, fetching
audio features resumably. Pure logic over files and DataFrames; the `spotify_export` asset wires it."""
