"""Reconstruction: frames in, IKE SAs, exchanges and ESP/AH flows out (one streaming pass)."""
