//! Modem driver: the only code that opens a serial port.
