"""The shipped calibration (versioned): what the node and the gateway use unless config pushes another.

PLACEHOLDER until the calibration is fitted on the FDA clinical data (see docs/screening.md once written).
The format is documented in screening.py.
"""

CALIBRATION = {
    "id": "placeholder-0",
    "ambient_c": [16.0, 32.0],
    "skin_c": [30.0, 42.0],
    "modes": {
        "forehead": {"k": 0.19, "offset_c": 0.0, "threshold_c": 37.5},
        "canthus": {"k": 0.0, "offset_c": 0.3, "threshold_c": 37.5},
    },
}
