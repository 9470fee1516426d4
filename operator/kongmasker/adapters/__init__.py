"""I/O boundaries: runtime (protocol), docker (the only docker importer), kube, probes."""
