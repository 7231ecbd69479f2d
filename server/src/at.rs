//! AT command chat with a modem: init, dial, result codes, login script (sans-IO).
