"""Graph-store backends; each module is the only importer of its database driver."""
