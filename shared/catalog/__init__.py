"""Microsoft's licensing reference data: names, plan conflicts, data plans."""
