"""The ledger (台账): assignments down the hierarchy, progress reports and their review, roll-up."""
