"""Decoding of stimulus files: images, audio, video."""
