"""lrface: low-resolution face recognition by identity-preserving super-resolution.

Importing the package is cheap: it pulls in no orchestration (Prefect, DVC) and no Ray;
sub-modules import their heavy dependencies themselves.
"""

__version__ = "0.1.0"
