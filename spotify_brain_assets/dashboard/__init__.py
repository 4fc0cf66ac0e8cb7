"""The dashboard: its JSON (the contract with the owner's website), the static page, and deployment."""
