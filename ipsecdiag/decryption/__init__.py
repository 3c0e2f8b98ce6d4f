"""Decryption: the IKEv2 SK, IKEv1 and ESP decryptors and the ESP worker pool.

They are handed to the reconstructor, decrypt what it passes them with the user's key
material, and the reconstructor records the results.
"""
