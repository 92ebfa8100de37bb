"""纳税缴费信用: the yearly credit register and the public list of major tax violators (measures 115–121, 95)."""
