"""Model manager: manifest, cache, trusted downloads, verification, offline import."""
