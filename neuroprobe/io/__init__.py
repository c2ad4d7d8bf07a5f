"""Files only, no statistics: activation stores, brain images, RDM files."""
