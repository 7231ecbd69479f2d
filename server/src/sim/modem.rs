//! Mock Hayes-style modem on a pseudo-terminal, with scripted outcomes and fault injection.
