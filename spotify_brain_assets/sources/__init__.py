"""Where plays and audio features come from: Spotify + ReccoBeats, or the built-in demo listener."""
