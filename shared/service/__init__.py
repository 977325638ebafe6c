"""The service layer: one function per job the triggers hand over, over our ports only."""
