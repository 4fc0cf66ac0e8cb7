"""Where Spotify Brain keeps its state, and how it writes it without ever leaving half a file."""
