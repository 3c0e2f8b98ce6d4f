"""Diagnosis: the checks (one module per failure family, ``checks/``), the helpers they share
(``base``, ``common``, ``natd``) and the finding catalogue (``knowledge``)."""
