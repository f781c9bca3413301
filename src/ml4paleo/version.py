"""The package's version, in a module of its own: every layer records or reports it (model
folders, the API, the CLI), and none of them may import the package root, which loads the
pipelines."""

__version__ = "0.1.0"
