//! Output layout, platform detection, variant scanning and allocation, study names.
