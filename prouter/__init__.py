"""The app shell of PersonalizedRouter: the ``prouter`` command line and the HTTP API.

Commands are thin: each parses its options, calls ``graphdb`` / ``workloads`` /
``gnn`` and turns their errors into one-line messages.
"""
