"""The privileged hosts helper. `root` is the only code copied into the root-owned tree (with the
few core/platform modules it imports); `install` puts it there."""
