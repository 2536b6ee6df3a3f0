# Runs at boot on the ESP32 (MicroPython runs main.py, not main.mpy): everything else is in app.py.
import app

app.main()
