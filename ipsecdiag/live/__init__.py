"""`ipsecdiag live`: live capture, the analyze pipeline fed incrementally, a dashboard."""
