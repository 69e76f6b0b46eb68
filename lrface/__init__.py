"""lrface: low-resolution face recognition by identity-preserving super-resolution.

Importing the package is cheap: it pulls in no orchestration (Prefect, DVC) and no Ray;
sub-modules import their heavy dependencies themselves. It does set the stack's telemetry
switches to off (unless the user set them): nothing here phones home.
"""

import os as _os

__version__ = "0.1.0"

TELEMETRY_OFF = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "RAY_USAGE_STATS_ENABLED": "0",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DVC_NO_ANALYTICS": "1",
    "DO_NOT_TRACK": "true",
}
for _k, _v in TELEMETRY_OFF.items():
    _os.environ.setdefault(_k, _v)
