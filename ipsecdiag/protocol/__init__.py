"""The protocol layer: IKE/IPsec decisions shared by the analyser and the endpoint engine.

Pure functions over wire types (proposal matching and the strongSwan/libreswan proposal
strings, traffic-selector algebra, NAT-D hashes, notify data). The diagnosis checks use them
to explain what happened; ``engine/`` uses the same functions to decide. Imports only
``wire/``, ``keys/`` and ``crypto/``; no I/O, no clock, no randomness.
"""
